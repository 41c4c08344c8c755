"""Use case: backfill. A range of days becomes one queued job per day and kind, which the job
worker exports one by one (the event source's maximum concurrency caps how many at once, so a
90-day backfill stays within SendGrid's rate limits).

The range must lie within SendGrid's 90-day window and end at yesterday (UTC) at the newest
(``dates.backfill_days``). Days whose object is already published are skipped unless ``force``;
a forced backfill gets a fresh run id, so the idempotency record of an earlier run of the same
day does not swallow it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from seq_export.errors import InvalidEventError
from seq_export.events import Backfill
from seq_export.job_queue import JobQueue
from seq_export.models import Job, new_run
from seq_export.observability import emit, logger
from seq_export.results import BackfillResult
from seq_export.s3_sink import S3Sink


def run_backfill(request: Backfill, sinks: Mapping[str, S3Sink], queue: JobQueue, today: date) -> BackfillResult:
    """``sinks`` holds, by kind, where each exported kind of day is published."""
    days = request.days(today)
    if request.kind is not None and request.kind not in sinks:
        raise InvalidEventError(
            f"backfill event 'kind' {request.kind!r}: this stack does not export it (EXPORT_ACCOUNT_SCORES is off)"
        )
    kinds = [request.kind] if request.kind is not None else list(sinks)
    run = new_run()
    wanted = [(day, kind) for day in days for kind in kinds]
    skipped = [] if request.force else [(day, kind) for day, kind in wanted if sinks[kind].exists(day)]
    jobs = [
        Job(date=day, attempt=1, reason="backfill", kind=kind, run=run)
        for day, kind in wanted
        if (day, kind) not in skipped
    ]
    queue.enqueue(jobs)
    result = BackfillResult(
        first=request.first.isoformat(), last=request.last.isoformat(), days=len(days), enqueued=jobs, skipped=skipped
    )
    emit(result.metrics())
    logger.info("Backfill enqueued", first=result.first, last=result.last, enqueued=len(jobs))
    return result
