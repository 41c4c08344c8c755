"""The events the function accepts, parsed into typed requests (samples in ``events/``).

* scheduled: EventBridge Scheduler input ``{"scheduled_time": "<aws.scheduler.scheduled-time>"}``
  or a classic EventBridge "Scheduled Event" (its ``time``): the daily run of the UTC day before;
* SQS: records whose body is a queued job ``{"date": ..., "attempt": n, ...}`` (partial batch
  failures, so one bad record does not fail the others); each body is parsed by the worker;
* direct: ``{"date": "YYYY-MM-DD"[, "kind": "account"][, "source": NAME]}`` exports that day of
  one source (the first configured unless named) and returns a summary;
  ``{"from": ..., "to": ...[, "force": true][, "kind": ...][, "source": NAME]}`` enqueues one job
  per source, kind and day (a backfill; every source and every exported kind unless named).

Every day must be exportable (``dates.check_exportable``: finished, within SendGrid's 90 days)
before anything reaches SendGrid. Errors name the shape the caller sent and the field; anything
else is an ``InvalidEventError`` that lists every accepted shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from seq_export.config import unknown_source
from seq_export.dates import backfill_days, check_exportable, day_before, parse_day, today_utc
from seq_export.errors import InvalidEventError
from seq_export.job_message import Job, check_source_name
from seq_export.layout import DEFAULT_SOURCE
from seq_export.models import KINDS

ACCEPTED_EVENTS = (
    'expected one of: {"scheduled_time": "<ISO-8601>"} (EventBridge Scheduler), an EventBridge '
    '"Scheduled Event", an SQS event of retry messages {"date": "YYYY-MM-DD", "attempt": n}, '
    '{"date": "YYYY-MM-DD"[, "kind": "account"][, "source": NAME]}, or '
    '{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"[, "force": true][, "kind": "subusers"|"account"][, "source": NAME]}'
)
DIRECT_KEYS = {"date", "attempt", "kind", "source"}
BACKFILL_KEYS = {"from", "to", "force", "kind", "source"}


@dataclass(frozen=True)
class DailyRun:
    """The schedule fired: export ``day`` (the UTC day before the scheduled time)."""

    day: str


@dataclass(frozen=True)
class ExportDay:
    """A direct ``{"date": D}``: export one day now and answer with its summary."""

    job: Job


@dataclass(frozen=True)
class Backfill:
    """A direct ``{"from": D1, "to": D2}``: queue one job per source, kind and day (``source``,
    ``kind``: only that one)."""

    first: date
    last: date
    force: bool = False
    kind: str | None = None
    source: str | None = None

    def days(self, today: date) -> list[str]:
        """The range's days, once checked against SendGrid's window and finished days."""
        return backfill_days(self.first, self.last, today)


@dataclass(frozen=True)
class QueuedJobs:
    """An SQS event from the job queue, handed whole to Powertools Batch."""

    event: dict[str, Any]


Request = DailyRun | ExportDay | Backfill | QueuedJobs


def parse_event(event: object, *, today: date | None = None, sources: tuple[str, ...] = (DEFAULT_SOURCE,)) -> Request:
    """The request an event stands for; raises ``InvalidEventError`` naming the accepted shapes.
    ``today`` (UTC) bounds the days that may be exported; ``sources`` are the configured names,
    the first being the one a direct date event exports unless it names one; queued jobs are
    checked by the worker."""
    today = today or today_utc()
    if not isinstance(event, dict):
        raise InvalidEventError(f"event must be a JSON object; {ACCEPTED_EVENTS}")
    if _is_sqs(event):
        return QueuedJobs(event)
    if "scheduled_time" in event:
        what = "scheduled event 'scheduled_time'"
        return DailyRun(_exportable(day_before(event["scheduled_time"], what=what), today, what=f"{what}: the day"))
    if event.get("detail-type") == "Scheduled Event" and event.get("source") == "aws.events":
        what = "EventBridge Scheduled Event 'time'"
        return DailyRun(_exportable(day_before(event.get("time", ""), what=what), today, what=f"{what}: the day"))
    if "date" in event and set(event) <= DIRECT_KEYS:
        what = "direct date event"
        job = Job.from_dict(event, default_source=sources[0], what=what)
        _configured(job.source, sources)
        _exportable(parse_day(job.date), today, what=f"{what} 'date'")
        return ExportDay(job)
    if {"from", "to"} <= set(event) <= BACKFILL_KEYS:
        force = event.get("force", False)
        if not isinstance(force, bool):
            raise InvalidEventError(f"backfill event 'force' must be true or false, got {force!r}")
        kind = event.get("kind")
        if kind is not None and kind not in KINDS:
            raise InvalidEventError(f"backfill event 'kind' must be one of {list(KINDS)}, got {kind!r}")
        source = event.get("source")
        if source is not None:
            _configured(check_source_name(source, what="backfill event"), sources)
        first = parse_day(event["from"], what="backfill event 'from'")
        last = parse_day(event["to"], what="backfill event 'to'")
        backfill_days(first, last, today)  # the range is checked before anything is queued
        return Backfill(first, last, force, kind, source)
    raise InvalidEventError(f"unrecognised event with keys {sorted(event)[:10]}; {ACCEPTED_EVENTS}")


def _configured(source: str, sources: tuple[str, ...]) -> None:
    if source not in sources:
        raise InvalidEventError(unknown_source(source, sources))


def _exportable(day: date, today: date, *, what: str) -> str:
    check_exportable(day, today, what=what)
    return day.isoformat()


def _is_sqs(event: dict[str, Any]) -> bool:
    records = event.get("Records")
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(record, dict) and record.get("eventSource") == "aws:sqs" for record in records)
    )
