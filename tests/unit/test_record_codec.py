"""The record codec: a day's records to lines and back, streamed, searched and counted."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from seq_export.layout import OBJECT_NAME
from seq_export.models import METRIC_NAMES, RECORD_KEYS
from seq_export.record_codec import (
    EXTENSION,
    NotAnObjectError,
    count_lines,
    decode,
    decode_line,
    decode_stream,
    encode,
    encode_line,
    split_lines,
)
from tests.support import RECORD_DAY, record

EXPORTED_AT = "2026-11-23T06:00:00.000Z"
#: Three lines: a fractional score, a name with a line separator and non-ASCII, an ineligible subuser.
RECORDS = [
    record(1, score=Decimal("3.75000")),
    replace(record(2), username='a "quoted"\u2028name ü'),
    record(3, score=None, username=None),
]
BODY = encode(RECORDS, EXPORTED_AT)


def test_a_day_decodes_to_what_was_encoded_with_every_value_exact() -> None:
    lines = decode(BODY)

    assert [list(line) for line in lines] == [list(RECORD_KEYS)] * 3
    assert [line["user_id"] for line in lines] == ["1001", "1002", "1003"]
    assert isinstance(lines[0]["score"], Decimal)
    assert str(lines[0]["score"]) == "3.75000"  # trailing zeros kept
    assert lines[0]["metrics"] == dict.fromkeys(METRIC_NAMES, Decimal("2.5"))
    assert lines[1]["username"] == 'a "quoted"\u2028name ü'  # a line separator inside a value splits nothing
    assert (lines[2]["score"], lines[2]["metrics"], lines[2]["username"]) == (None, None, None)
    assert {line["date"] for line in lines} == {RECORD_DAY}
    assert {line["exported_at"] for line in lines} == {EXPORTED_AT}


def test_each_line_ends_in_a_newline_and_the_body_is_the_lines_in_order() -> None:
    lines = [encode_line(one, EXPORTED_AT) for one in RECORDS]

    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    assert "".join(lines).encode() == BODY


@pytest.mark.parametrize("cut", range(0, len(BODY) + 1, 7))
def test_a_body_streamed_in_chunks_cut_anywhere_decodes_to_the_same_lines(cut: int) -> None:
    assert list(decode_stream([BODY[:cut], b"", BODY[cut:]])) == decode(BODY)


def test_blank_lines_are_skipped_and_a_last_line_without_a_newline_is_read() -> None:
    body = b"\n" + BODY + b"\n" + BODY.rstrip(b"\n")

    assert [line["user_id"] for line in decode(body)] == ["1001", "1002", "1003"] * 2


@pytest.mark.parametrize(
    ("field", "value", "found"),
    [
        ("username", 'a "quoted"\u2028name ü', ["1002"]),  # matched as written: non-ASCII as itself
        ("user_id", "1003", ["1003"]),
        ("username", "user1", ["1001"]),
        ("user_id", "user1", []),  # the value in another field is no match
        ("username", "nobody", []),
    ],
)
def test_only_yields_the_lines_where_a_field_has_a_value(field: str, value: str, found: list[str]) -> None:
    lines = decode_stream([BODY], only=(field, value))

    assert [line["user_id"] for line in lines] == found


def test_split_lines_keeps_blank_lines_so_callers_can_number_them() -> None:
    assert list(split_lines([b"a\n\nb"])) == [b"a", b"", b"b"]
    assert list(split_lines([b"a\n", b"b\n"])) == [b"a", b"b"]
    assert list(split_lines([b""])) == []


@pytest.mark.parametrize("body", [b"", b"\n", BODY, BODY.rstrip(b"\n"), b"a\n\nb", b"a\n\n"])
def test_counting_the_lines_agrees_with_splitting_them(body: bytes) -> None:
    chunks = [body[:5], body[5:]]

    assert count_lines(chunks) == len(list(split_lines(chunks)))


def test_a_line_that_is_json_but_not_an_object_is_refused_as_such() -> None:
    with pytest.raises(NotAnObjectError, match="not a JSON object but list"):
        decode_line(b"[1, 2]")
    with pytest.raises(ValueError, match="is not a number JSON allows"):
        decode_line(b'{"score": NaN}')


def test_the_days_object_is_named_for_the_codecs_format() -> None:
    assert OBJECT_NAME.endswith(EXTENSION)
