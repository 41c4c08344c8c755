"""Records, pages and score changes, with the validation that guards the data contract (the
job message and its identity are in ``job_message``).

Numbers are kept exactly as SendGrid sent them: JSON is parsed with ``parse_float=Decimal``,
and lines (``record_codec``) and DynamoDB values are written from the same text, so ``3.75``
never becomes ``3.7499999``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from seq_export.errors import InvalidRecordError, SeqProtocolError

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


def validate_page(page: Page, *, source: str, day: str, what: str) -> list[ScoreRecord]:
    """Every record of a page of ``what`` (a job, as its errors name it), checked; a bad one
    fails the page with the body attached."""
    try:
        return [
            validate_record(raw, source=source, day=day, where=f"{what} page {page.number} record {index}")
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
                "old_score": json_number(self.old_score),
                "new_score": json_number(self.new_score),
                "change": json_number(self.change),
                "old_metrics": _numbers(self.old_metrics),
                "new_metrics": _numbers(self.new_metrics),
            }
        )


def json_number(value: Number) -> int | float:
    """A number as a JSON document carries it: integral values as ``int``, others as ``float``
    (SEQ values are 1..5 with a few decimals, exact enough in a double). Events use it, for
    EventBridge's numeric matching, and so do the CLI's answers (``scores.json_ready``); the day's
    lines keep the exact text instead (``record_codec``)."""
    return int(value) if Decimal(value) == Decimal(value).to_integral_value() else float(value)


def _numbers(metrics: dict[str, Number] | None) -> dict[str, int | float] | None:
    return None if metrics is None else {name: json_number(value) for name, value in metrics.items()}


#: How many of a day's biggest drops, and of its biggest rises, its daily digest names.
DIGEST_MOVERS = 5


@dataclass(frozen=True, slots=True)
class Mover:
    """A subuser whose score moved by at least the min step, as a daily digest names it."""

    user_id: str
    username: str | None
    previous_date: str
    before: Number
    after: Number

    @classmethod
    def of(cls, change: ScoreChange) -> Mover:
        return cls(change.user_id, change.username, change.previous_date, change.old_score, change.new_score)

    @property
    def change(self) -> Decimal:
        return Decimal(self.after) - Decimal(self.before)

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready for a checkpoint: the scores as their exact decimal text."""
        return {
            "user_id": self.user_id,
            "username": self.username,
            "previous_date": self.previous_date,
            "before": str(self.before),
            "after": str(self.after),
        }

    @classmethod
    def from_dict(cls, data: object) -> Mover:
        """A mover as ``to_dict`` wrote it; ``TypeError`` or ``ValueError`` naming what is wrong otherwise."""
        if not isinstance(data, dict):
            raise TypeError(f"a mover must be an object, got {data!r}")
        try:
            username = data.get("username")
            return cls(
                user_id=str(data["user_id"]),
                username=None if username is None else str(username),
                previous_date=str(data["previous_date"]),
                before=Decimal(str(data["before"])),
                after=Decimal(str(data["after"])),
            )
        except (KeyError, ArithmeticError):  # decimal.InvalidOperation is an ArithmeticError
            raise ValueError(f"a mover needs user_id, previous_date, before and after (numbers): {data!r}") from None

    def detail(self) -> dict[str, Any]:
        """As the digest event carries it (JSON numbers, for EventBridge's numeric matching)."""
        return {
            "user_id": self.user_id,
            "username": self.username,
            "previous_date": self.previous_date,
            "before": json_number(self.before),
            "after": json_number(self.after),
            "change": json_number(self.change),
        }


@dataclass(frozen=True, slots=True)
class Movers:
    """The biggest drops and rises of a day so far, at most ``DIGEST_MOVERS`` of each, biggest
    first and ties by ``user_id``: adding pages or invocations in any order gives the same list,
    so a checkpoint can carry it and the day's last invocation name the day's biggest movers."""

    drops: tuple[Mover, ...] = ()
    rises: tuple[Mover, ...] = ()

    @classmethod
    def of(cls, changes: Sequence[ScoreChange]) -> Movers:
        movers = [Mover.of(change) for change in changes]
        return cls(
            tuple(mover for mover in movers if mover.change < 0), tuple(mover for mover in movers if mover.change > 0)
        ).biggest()

    def __add__(self, other: Movers) -> Movers:
        return Movers(self.drops + other.drops, self.rises + other.rises).biggest()

    def biggest(self) -> Movers:
        """Only the biggest ``DIGEST_MOVERS`` of each, one per subuser."""
        drops = {mover.user_id: mover for mover in self.drops}.values()
        rises = {mover.user_id: mover for mover in self.rises}.values()
        return Movers(
            drops=tuple(sorted(drops, key=lambda mover: (mover.change, mover.user_id))[:DIGEST_MOVERS]),
            rises=tuple(sorted(rises, key=lambda mover: (-mover.change, mover.user_id))[:DIGEST_MOVERS]),
        )

    def to_dict(self) -> dict[str, list[dict[str, str | None]]]:
        return {"drops": [mover.to_dict() for mover in self.drops], "rises": [mover.to_dict() for mover in self.rises]}

    @classmethod
    def from_dict(cls, data: object) -> Movers:
        if not isinstance(data, dict):
            raise TypeError(f"movers must be an object of drops and rises, got {data!r}")
        return cls(
            drops=tuple(Mover.from_dict(mover) for mover in data.get("drops", [])),
            rises=tuple(Mover.from_dict(mover) for mover in data.get("rises", [])),
        ).biggest()


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
