"""Records and messages, with the validation that guards the data contract.

Numbers are kept exactly as SendGrid sent them: JSON is parsed with ``parse_float=Decimal``,
and lines and DynamoDB values are written from the same text, so ``3.75`` never becomes
``3.7499999``. Serialisation is hand-written for the fixed schema because ``json`` cannot emit
a ``Decimal`` without going through ``float``.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from typing import Any

from seq_export.dates import parse_day
from seq_export.errors import InvalidEventError, InvalidRecordError, SeqProtocolError

Number = int | Decimal

METRIC_NAMES: tuple[str, ...] = (
    "engagement_recency",
    "open_rate",
    "bounce_classification",
    "bounce_rate",
    "spam_rate",
)
#: Every line of the S3 object has exactly these keys, in this order (the data contract).
RECORD_KEYS: tuple[str, ...] = ("source", "date", "user_id", "username", "score", "metrics", "exported_at")
SCORE_MIN = 1
SCORE_MAX = 5

#: What a day's export covers: every subuser's scores, or the parent account's own.
SUBUSERS = "subusers"
ACCOUNT = "account"
KINDS = (SUBUSERS, ACCOUNT)
#: A source's name: it appears in keys (``source=NAME``), metric dimensions and job messages.
SOURCE_NAME = re.compile(r"[a-z0-9-]{1,32}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def loads_exact(text: str | bytes) -> Any:
    """Parse JSON keeping fractional numbers as ``Decimal`` and refusing NaN/Infinity."""
    return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)


def _json_number(value: Number) -> str:
    return str(value)


def _json_str(value: str | None) -> str:
    return "null" if value is None else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    """One subuser's score for one day, as one source returned it; ``score`` and ``metrics``
    are None when ineligible."""

    source: str
    date: str
    user_id: str
    username: str | None
    score: Number | None
    metrics: dict[str, Number] | None

    @property
    def eligible(self) -> bool:
        """Has a score; only these reach the latest-score table (no score never erases one)."""
        return self.score is not None

    def to_json_line(self, exported_at: str) -> str:
        if self.metrics is None:
            metrics = "null"
        else:
            metrics = "{" + ", ".join(f'"{k}": {_json_number(self.metrics[k])}' for k in METRIC_NAMES) + "}"
        score = "null" if self.score is None else _json_number(self.score)
        return (
            f'{{"source": "{self.source}", "date": "{self.date}", "user_id": {_json_str(self.user_id)}, '
            f'"username": {_json_str(self.username)}, "score": {score}, '
            f'"metrics": {metrics}, "exported_at": "{exported_at}"}}\n'
        )


def _check_number(value: object, *, field: str, where: str) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidRecordError(f"{where}: {field} must be a number, got {value!r}")
    if not SCORE_MIN <= value <= SCORE_MAX:
        raise InvalidRecordError(f"{where}: {field} must be within {SCORE_MIN}..{SCORE_MAX}, got {value}")
    return value


def validate_record(raw: object, *, source: str, day: str, where: str) -> ScoreRecord:
    """Check one API record against the spec; ``where`` (page and position) goes into errors.

    Extra fields are tolerated and not exported, so SendGrid adding a field never breaks a
    day, while a field changing meaning (out of range, wrong type, other date) stops it.
    """
    if not isinstance(raw, dict):
        raise InvalidRecordError(f"{where}: a record must be a JSON object, got {type(raw).__name__}")
    user_id = raw.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not user_id:
        raise InvalidRecordError(f"{where}: user_id must be a non-empty string, got {user_id!r}")
    where = f"{where} (user_id {user_id})"
    username = raw.get("username")
    if username is not None and not isinstance(username, str):
        raise InvalidRecordError(f"{where}: username must be a string, got {username!r}")
    record_date = raw.get("date")
    if record_date is not None and record_date != day:
        raise InvalidRecordError(f"{where}: date is {record_date!r} but {day} was requested")
    score_raw = raw.get("score")
    score = None if score_raw is None else _check_number(score_raw, field="score", where=where)
    metrics_raw = raw.get("metrics")
    metrics: dict[str, Number] | None = None
    if metrics_raw is not None:
        if not isinstance(metrics_raw, dict):
            raise InvalidRecordError(f"{where}: metrics must be an object, got {metrics_raw!r}")
        missing = [name for name in METRIC_NAMES if name not in metrics_raw]
        if missing:
            raise InvalidRecordError(f"{where}: metrics lacks {', '.join(missing)}")
        metrics = {
            name: _check_number(metrics_raw[name], field=f"metrics.{name}", where=where) for name in METRIC_NAMES
        }
    return ScoreRecord(source=source, date=day, user_id=user_id, username=username, score=score, metrics=metrics)


def validate_page(job: JobId, page: Page) -> list[ScoreRecord]:
    """Every record of a page, checked; a bad one fails the page with the body attached."""
    try:
        return [
            validate_record(raw, source=job.source, day=job.date, where=f"{job} page {page.number} record {index}")
            for index, raw in enumerate(page.records, start=1)
        ]
    except SeqProtocolError as exc:
        exc.raw = page.raw
        raise


@dataclass(frozen=True, slots=True)
class ScoreChange:
    """A subuser's newest score against the one the table held before this day was written."""

    source: str
    user_id: str
    username: str | None
    date: str
    previous_date: str
    old_score: Number
    new_score: Number
    old_metrics: dict[str, Number] | None
    new_metrics: dict[str, Number] | None

    @property
    def change(self) -> Decimal:
        return Decimal(self.new_score) - Decimal(self.old_score)

    def detail(self) -> str:
        return json.dumps(
            {
                "source": self.source,
                "user_id": self.user_id,
                "username": self.username,
                "date": self.date,
                "previous_date": self.previous_date,
                "old_score": _number(self.old_score),
                "new_score": _number(self.new_score),
                "change": _number(self.change),
                "old_metrics": _numbers(self.old_metrics),
                "new_metrics": _numbers(self.new_metrics),
            }
        )


def _number(value: Number) -> int | float:
    """JSON number for EventBridge's numeric matching (SEQ values are 1..5, a few decimals)."""
    return int(value) if Decimal(value) == Decimal(value).to_integral_value() else float(value)


def _numbers(metrics: dict[str, Number] | None) -> dict[str, int | float] | None:
    return None if metrics is None else {name: _number(value) for name, value in metrics.items()}


@dataclass(frozen=True, slots=True)
class Page:
    """One 200 answer: its raw records and the cursor for the next page (None on the last)."""

    number: int
    records: list[Any]
    next_after_key: str | None
    raw: bytes = b""  # the body as received, kept aside if the page turns out to be bad


def parse_page(body: Any, *, number: int, where: str | None = None, raw: bytes = b"") -> Page:
    """Check the envelope of a 200 answer (``result`` list, optional ``_metadata``)."""
    where = where or f"page {number}"
    if not isinstance(body, dict):
        raise SeqProtocolError(f"{where}: expected a JSON object, got {type(body).__name__}", raw=raw)
    result = body.get("result")
    if not isinstance(result, list):
        raise SeqProtocolError(f"{where}: 'result' must be a list, got {type(result).__name__}", raw=raw)
    metadata = body.get("_metadata") or {}
    next_params = metadata.get("next_params") if isinstance(metadata, dict) else None
    after_key = next_params.get("after_key") if isinstance(next_params, dict) else None
    if isinstance(after_key, bool) or (after_key is not None and not isinstance(after_key, str | int)):
        raise SeqProtocolError(f"{where}: _metadata.next_params.after_key must be a string, got {after_key!r}", raw=raw)
    cursor = None if after_key in (None, "") else str(after_key)
    return Page(number=number, records=result, next_after_key=cursor, raw=raw)


@dataclass(frozen=True, slots=True)
class Counters:
    """What an export of a day has done so far: carried by a checkpoint from one invocation to
    the next, reported by the result. One type, so nothing copies the numbers field by field.

    Beside the counts a caller is told (``reported``), the day's fleet health rides along until
    its last invocation: scored subusers per band (``score_bands``), the exact sum of their
    scores, and the moves of at least the min step the write path saw (drops and rises).
    """

    pages: int = 0
    records: int = 0
    ineligible: int = 0
    latest_written: int = 0
    latest_kept_newer: int = 0
    band_1: int = 0
    band_2: int = 0
    band_3: int = 0
    band_4: int = 0
    band_5: int = 0
    score_sum: Decimal = Decimal(0)
    score_drops: int = 0
    score_rises: int = 0

    def __add__(self, other: Counters) -> Counters:
        return Counters(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def bands(self) -> tuple[int, int, int, int, int]:
        """Scored subusers in bands 1 to 5."""
        return (self.band_1, self.band_2, self.band_3, self.band_4, self.band_5)

    @property
    def scored(self) -> int:
        return sum(self.bands)

    def reported(self) -> dict[str, int]:
        """The counts a caller's summary shows."""
        return {name: getattr(self, name) for name in REPORTED_COUNTERS}

    def to_dict(self) -> dict[str, int | str]:
        """Flat and JSON-ready, for a checkpoint: the score sum as its exact decimal text."""
        return {**asdict(self), "score_sum": str(self.score_sum)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Counters:
        """The counters among ``data`` (a checkpoint's fields; absent ones are 0)."""
        values = {name: data[name] for name in COUNTER_NAMES if name in data}
        if "score_sum" in values:
            try:
                values["score_sum"] = Decimal(str(values["score_sum"]))
            except ArithmeticError:  # decimal.InvalidOperation
                raise ValueError(f"score_sum is not a decimal number: {values['score_sum']!r}") from None
        return cls(**values)


COUNTER_NAMES = tuple(f.name for f in fields(Counters))
REPORTED_COUNTERS = ("pages", "records", "ineligible", "latest_written", "latest_kept_newer")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a day stopped when the Lambda ran short of time, so a fresh invocation continues.

    The lines so far are either parts of an S3 multipart upload of the day's object (when at
    least 5 MiB) or a small staged object (``tail_key``) the next invocation reads back; the
    day's object appears only when the last invocation completes it. In a message the counters
    stand flat beside the other fields.
    """

    after_key: str
    next_page: int
    exported_at: str
    counts: Counters = field(default_factory=Counters)
    uploaded_bytes: int = 0
    upload_id: str | None = None
    parts: tuple[tuple[int, str], ...] = ()
    tail_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__ if name != "counts"}
        data["parts"] = [list(part) for part in self.parts]
        return {**data, **self.counts.to_dict()}

    @classmethod
    def from_dict(cls, data: object, *, what: str = "queued job") -> Checkpoint:
        if not isinstance(data, dict):
            raise InvalidEventError(f"{what} 'checkpoint' must be an object")
        try:
            parts = tuple((int(number), str(etag)) for number, etag in data.get("parts", []))
            counts = Counters.from_dict(data)
            rest = {name: value for name, value in data.items() if name not in COUNTER_NAMES}
            checkpoint = cls(**{**rest, "parts": parts, "counts": counts})
        except (TypeError, ValueError) as exc:
            raise InvalidEventError(f"{what} 'checkpoint' is malformed: {exc}") from None
        if not isinstance(checkpoint.after_key, str) or not isinstance(checkpoint.next_page, int):
            raise InvalidEventError(f"{what} 'checkpoint' needs after_key (string) and next_page (integer)")
        return checkpoint


def new_run() -> str:
    """A fresh run id: names one request (a daily run, a backfill) through its re-schedules."""
    return secrets.token_hex(8)


def check_source_name(name: object, *, what: str) -> str:
    """A source name as a job or event may carry it (the configured names are checked by the caller)."""
    if not isinstance(name, str) or not SOURCE_NAME.fullmatch(name):
        raise InvalidEventError(f"{what} 'source' must be a source name (a-z, 0-9 and -, 1 to 32), got {name!r}")
    return name


@dataclass(frozen=True, slots=True, order=True)
class JobId:
    """What one job exports: ``kind`` of ``date`` from ``source``. The one identity of a job from
    the event to the adapters: messages carry its three fields, results and answers name it."""

    source: str
    kind: str
    date: str

    def __str__(self) -> str:
        return f"{self.source} {self.kind} {self.date}"

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "kind": self.kind, "date": self.date}


@dataclass(frozen=True, slots=True)
class Job:
    """One export to do, as the job queue carries it (the SQS retry message of the contract):
    export ``id`` (source, kind, day), this being try number ``attempt``.

    ``checkpoint`` is set when the message continues a day cut short by the Lambda time limit.
    """

    id: JobId
    attempt: int
    reason: str = "not_ready"
    checkpoint: Checkpoint | None = None
    #: Names one request (a backfill, a daily run) through its re-schedules: part of the
    #: idempotency key, so a duplicate delivery is recognised but a later forced backfill is not.
    run: str | None = None

    @property
    def date(self) -> str:
        return self.id.date

    @property
    def kind(self) -> str:
        return self.id.kind

    @property
    def source(self) -> str:
        return self.id.source

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {**self.id.to_dict(), "attempt": self.attempt, "reason": self.reason}
        if self.run is not None:
            data["run"] = self.run
        if self.checkpoint is not None:
            data["checkpoint"] = self.checkpoint.to_dict()
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, body: str, *, default_source: str) -> Job:
        """A queued job from an SQS message body."""
        try:
            data = json.loads(body)
        except (TypeError, ValueError):
            raise InvalidEventError(f"queued job body is not JSON: {body[:200]!r}") from None
        return cls.from_dict(data, default_source=default_source)

    @classmethod
    def from_dict(cls, data: object, *, default_source: str, what: str = "queued job") -> Job:
        """``what`` names the shape the caller sent (a queued job, a direct date event) in errors;
        a message without ``source`` (queued before sources existed) is ``default_source``'s."""
        if not isinstance(data, dict):
            raise InvalidEventError(f'{what} must be a JSON object {{"date": "YYYY-MM-DD", "attempt": n}}')
        day = parse_day(data.get("date"), what=f"{what} 'date'").isoformat()
        attempt = data.get("attempt", 1)
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise InvalidEventError(f"{what} 'attempt' must be a positive integer, got {attempt!r}")
        reason = data.get("reason", "not_ready")
        checkpoint = data.get("checkpoint")
        kind = data.get("kind", SUBUSERS)
        if kind not in KINDS:
            raise InvalidEventError(f"{what} 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
        source = check_source_name(data.get("source", default_source), what=what)
        return cls(
            id=JobId(source=source, kind=kind, date=day),
            attempt=attempt,
            reason=str(reason),
            checkpoint=None if checkpoint is None else Checkpoint.from_dict(checkpoint, what=what),
            run=None if data.get("run") is None else str(data["run"]),
        )
