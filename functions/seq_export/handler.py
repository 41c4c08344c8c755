"""Lambda entry point: parse the event into a typed request, make one call into its use case.

Which events are accepted and what each becomes: ``invocations.py``. The flow, the module map and
the guarantees: docs/architecture.md.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from seq_export import wiring
from seq_export.backfill import run_backfill
from seq_export.daily import run_daily
from seq_export.dates import today_utc
from seq_export.errors import InvalidEventError
from seq_export.invocations import Backfill, DailyRun, ExportDay, QueuedJobs, Request, parse_event
from seq_export.jobs import run_now, time_left_of
from seq_export.observability import MetricName, emit, logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        sources = wiring.dependencies().settings.source_names
        return handle(parse_event(event, today=today_utc(), sources=sources), context)
    except InvalidEventError as exc:
        emit({MetricName.INVALID_EVENTS: 1})
        logger.error("Invalid event", reason=str(exc))
        raise


def handle(request: Request, context: LambdaContext | None) -> dict[str, Any]:
    """The one use case a request asks for, with this container's dependencies."""
    deps = wiring.dependencies()
    match request:
        case QueuedJobs(event):
            return deps.job_worker().handle(event, context)
        case DailyRun(day):
            return run_daily(deps.exports, deps.queue, deps.queued_days, day, time_left_of(context)).summary()
        case ExportDay(job):
            return run_now(deps.exports, job, deps.queued_days, time_left_of(context)).summary()
        case Backfill():
            return run_backfill(request, deps.exports, deps.queue, deps.queued_days, today_utc()).summary()
