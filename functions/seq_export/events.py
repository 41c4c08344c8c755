"""The events the function accepts, parsed into typed requests (samples in ``events/``).

* scheduled: EventBridge Scheduler input ``{"scheduled_time": "<aws.scheduler.scheduled-time>"}``
  or a classic EventBridge "Scheduled Event" (its ``time``): the daily run of the UTC day before;
* SQS: records whose body is a queued job ``{"date": ..., "attempt": n, ...}`` (partial batch
  failures, so one bad record does not fail the others); each body is parsed by the worker;
* direct: ``{"date": "YYYY-MM-DD"[, "kind": "account"]}`` exports that day and returns a summary;
  ``{"from": ..., "to": ...[, "force": true]}`` enqueues one job per day and kind (a backfill).

Anything else is an ``InvalidEventError`` that lists every accepted shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from seq_export.dates import backfill_days, day_before, parse_day
from seq_export.errors import InvalidEventError
from seq_export.models import Job

ACCEPTED_EVENTS = (
    'expected one of: {"scheduled_time": "<ISO-8601>"} (EventBridge Scheduler), an EventBridge '
    '"Scheduled Event", an SQS event of retry messages {"date": "YYYY-MM-DD", "attempt": n}, '
    '{"date": "YYYY-MM-DD"[, "kind": "account"]}, or '
    '{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"[, "force": true]}'
)
DIRECT_KEYS = {"date", "attempt", "kind"}
BACKFILL_KEYS = {"from", "to", "force"}


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
    """A direct ``{"from": D1, "to": D2}``: queue one job per day and kind."""

    first: date
    last: date
    force: bool = False

    def days(self, today: date) -> list[str]:
        """The range's days, once checked against SendGrid's window and finished days."""
        return backfill_days(self.first, self.last, today)


@dataclass(frozen=True)
class QueuedJobs:
    """An SQS event from the job queue, handed whole to Powertools Batch."""

    event: dict[str, Any]


Request = DailyRun | ExportDay | Backfill | QueuedJobs


def parse_event(event: object) -> Request:
    """The request an event stands for; raises ``InvalidEventError`` naming the accepted shapes."""
    if not isinstance(event, dict):
        raise InvalidEventError(f"event must be a JSON object; {ACCEPTED_EVENTS}")
    if _is_sqs(event):
        return QueuedJobs(event)
    if "scheduled_time" in event:
        return DailyRun(day_before(event["scheduled_time"], what="scheduled_time").isoformat())
    if event.get("detail-type") == "Scheduled Event" and event.get("source") == "aws.events":
        return DailyRun(day_before(event.get("time", ""), what="Scheduled Event 'time'").isoformat())
    if "date" in event and set(event) <= DIRECT_KEYS:
        return ExportDay(Job.from_dict(event))
    if {"from", "to"} <= set(event) <= BACKFILL_KEYS:
        force = event.get("force", False)
        if not isinstance(force, bool):
            raise InvalidEventError(f"backfill 'force' must be true or false, got {force!r}")
        return Backfill(parse_day(event["from"], what="from"), parse_day(event["to"], what="to"), force)
    raise InvalidEventError(f"unrecognised event with keys {sorted(event)[:10]}; {ACCEPTED_EVENTS}")


def _is_sqs(event: dict[str, Any]) -> bool:
    records = event.get("Records")
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(record, dict) and record.get("eventSource") == "aws:sqs" for record in records)
    )
