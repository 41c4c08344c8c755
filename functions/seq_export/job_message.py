"""The job message: what one export to do carries through the job queue, with its one typed
identity (``JobId``: source, kind, day), the counters it has gathered so far and, for a day cut
short by the Lambda time limit, the checkpoint a fresh invocation continues from.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from typing import Any

from seq_export.dates import parse_day
from seq_export.errors import InvalidEventError
from seq_export.key_ranges import KeyRange, SplitSampler
from seq_export.models import KINDS, SOURCE_NAME, SUBUSERS, Movers


@dataclass(frozen=True, slots=True)
class Counters:
    """What an export of a day has done so far: carried by a checkpoint from one invocation to
    the next, reported by the result. One type, so nothing copies the numbers field by field.

    Beside the counts a caller is told (``reported``), the day's fleet health rides along until
    its last invocation: scored subusers per band (``score_bands``), the exact sum of their
    scores, and the moves of at least the min step the write path saw (drops and rises, and the
    biggest of each for the daily digest).
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
    movers: Movers = field(default_factory=Movers)

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

    def to_dict(self) -> dict[str, Any]:
        """Flat and JSON-ready, for a checkpoint: the score sum (and the movers' scores) as exact
        decimal text."""
        return {**asdict(self), "score_sum": str(self.score_sum), "movers": self.movers.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Counters:
        """The counters among ``data`` (a checkpoint's fields; absent ones are 0)."""
        values = {name: data[name] for name in COUNTER_NAMES if name in data}
        if "score_sum" in values:
            try:
                values["score_sum"] = Decimal(str(values["score_sum"]))
            except ArithmeticError:  # decimal.InvalidOperation
                raise ValueError(f"score_sum is not a decimal number: {values['score_sum']!r}") from None
        if "movers" in values:
            values["movers"] = Movers.from_dict(values["movers"])
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
    #: A day fetched in key ranges: every range and how far it got (empty: fetched sequentially).
    ranges: tuple[KeyRange, ...] = ()
    #: The split points gathered so far, for the next day.
    split_sample: SplitSampler = field(default_factory=SplitSampler)

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__ if name != "counts"}
        data["parts"] = [list(part) for part in self.parts]
        data["ranges"] = [key_range.to_dict() for key_range in self.ranges]
        data["split_sample"] = self.split_sample.to_dict()
        return {**data, **self.counts.to_dict()}

    @classmethod
    def from_dict(cls, data: object, *, what: str = "queued job") -> Checkpoint:
        if not isinstance(data, dict):
            raise InvalidEventError(f"{what} 'checkpoint' must be an object")
        try:
            parts = tuple((int(number), str(etag)) for number, etag in data.get("parts", []))
            counts = Counters.from_dict(data)
            rest = {name: value for name, value in data.items() if name not in COUNTER_NAMES}
            ranges = tuple(KeyRange.from_dict(key_range) for key_range in data.get("ranges", []))
            sample = SplitSampler.from_dict(data.get("split_sample", {}))
            checkpoint = cls(**{**rest, "parts": parts, "counts": counts, "ranges": ranges, "split_sample": sample})
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
    #: On a give-up (a new job of its own, under a fresh ``run``): the run it ends, so whoever
    #: follows that request (``seq-export ... --wait``) recognises its dead letter.
    gave_up_run: str | None = None

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
        if self.gave_up_run is not None:
            data["gave_up_run"] = self.gave_up_run
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
        """``what`` names the shape the caller sent (a queued job, a direct date event) in errors.

        A message without ``source`` was queued before sources existed: it is ``default_source``'s,
        and a checkpoint it carries points at lines without ``source`` under the old key, so the
        day starts again from its first page instead (the abandoned upload expires by the
        bucket's lifecycle rule)."""
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
            checkpoint=None
            if checkpoint is None or "source" not in data
            else Checkpoint.from_dict(checkpoint, what=what),
            run=None if data.get("run") is None else str(data["run"]),
            gave_up_run=None if data.get("gave_up_run") is None else str(data["gave_up_run"]),
        )
