"""A day's object as bytes: the one codec between records and the lines of a day.

The data contract's format is JSON lines: UTF-8, one JSON object per line, each line ending in
``\\n``, the keys of ``models.RECORD_KEYS`` in that order. Every writer (``export_subusers``,
``export_account``, ``seq-export migrate-lake``, the benchmark) encodes here; every reader (the
CLI's ``status``, ``report`` and ``lookup``, ``local/``'s report, the tests) decodes and counts
here. A second output format is a change of this module (with the Glue tables' SerDe in the
template), not of its callers: ``layout.OBJECT_NAME`` takes its extension from here.

Numbers are written from their exact decimal text and read back as ``Decimal`` (never through
``float``), so ``3.75`` stays ``3.75``. ``json`` cannot emit a ``Decimal`` without ``float``, so
the encoder is hand-written for the fixed schema. Pure standard library: the CLI imports it
without the function's dependencies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from seq_export.models import METRIC_NAMES, Number, ScoreRecord, loads_exact

#: What a day's object is: the extension of its name (``layout.OBJECT_NAME``) and its content type.
EXTENSION = ".jsonl"
CONTENT_TYPE = "application/x-ndjson; charset=utf-8"
NEWLINE = b"\n"

#: A decoded line: the record's fields and ``exported_at``, numbers exact (``int`` or ``Decimal``).
Line = dict[str, Any]


def _number(value: Number) -> str:
    return str(value)


def _string(value: str | None) -> str:
    """A string as a line writes it: JSON, with non-ASCII characters as themselves."""
    return "null" if value is None else json.dumps(value, ensure_ascii=False)


def encode_line(record: ScoreRecord, exported_at: str) -> str:
    """One record as its line, newline included."""
    if record.metrics is None:
        metrics = "null"
    else:
        metrics = "{" + ", ".join(f'"{k}": {_number(record.metrics[k])}' for k in METRIC_NAMES) + "}"
    score = "null" if record.score is None else _number(record.score)
    return (
        f'{{"source": "{record.source}", "date": "{record.date}", "user_id": {_string(record.user_id)}, '
        f'"username": {_string(record.username)}, "score": {score}, '
        f'"metrics": {metrics}, "exported_at": "{exported_at}"}}\n'
    )


def encode(records: Iterable[ScoreRecord], exported_at: str) -> bytes:
    """Records as the bytes of their lines (a whole day's body, or the next part of one)."""
    return "".join(encode_line(record, exported_at) for record in records).encode()


class NotAnObjectError(ValueError):
    """A line that is JSON, but not an object."""


def decode_line(raw: str | bytes) -> Line:
    """One line as its fields: ``UnicodeDecodeError`` or ``ValueError`` when it is not JSON (NaN
    and Infinity are not numbers here either), ``NotAnObjectError`` when it is not an object."""
    data = loads_exact(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    if not isinstance(data, dict):
        raise NotAnObjectError(f"not a JSON object but {type(data).__name__}")
    return data


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Each line of a body streamed in chunks, without its newline; a last line without one too."""
    pending = b""
    for chunk in chunks:
        if not chunk:
            continue
        *lines, pending = (pending + chunk).split(NEWLINE)
        yield from lines
    if pending:
        yield pending


def decode_stream(chunks: Iterable[bytes], *, only: tuple[str, str] | None = None) -> Iterator[Line]:
    """Every line of a body streamed in chunks, decoded; blank lines are skipped. With ``only``
    (a field and a string value), only the lines where that field has that value: lines that
    do not hold the value's text are not even parsed (a lookup in a day of 100,000 lines)."""
    needle = None if only is None else _string(only[1]).encode()
    for raw in split_lines(chunks):
        if not raw.strip() or (needle is not None and needle not in raw):
            continue
        line = decode_line(raw)
        if only is None or line.get(only[0]) == only[1]:
            yield line


def decode(body: bytes) -> list[Line]:
    """A whole day's body, decoded."""
    return list(decode_stream([body]))


def count_lines(chunks: Iterable[bytes]) -> int:
    """Lines of a body streamed in chunks, without parsing them; a last line without ``\\n`` counts too."""
    lines = 0
    last = b""
    for chunk in chunks:
        if chunk:
            lines += chunk.count(NEWLINE)
            last = chunk[-1:]
    return lines + (1 if last not in (b"", NEWLINE) else 0)
