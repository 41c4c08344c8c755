"""Use case: backfill. A range of days becomes one queued job per source, kind and day, which the
job worker exports one by one (the event source's maximum concurrency caps how many at once, so
a 90-day backfill stays within SendGrid's rate limits).

The range must lie within SendGrid's 90-day window and end at yesterday (UTC) at the newest
(``dates.backfill_days``). Every source is backfilled unless the request names one, and every
kind a source exports unless it names one. Days whose object is already published are skipped,
and so are jobs already queued or running (their ``queued_days`` marker held by another run:
another backfill, the daily run, a direct export's 202s), so a repeated backfill queues nothing
twice; ``force`` queues every job regardless, taking their markers over. Each backfill gets a
fresh run id, so the idempotency record of an earlier run of the same day does not swallow it.
"""

from __future__ import annotations

from datetime import date

from seq_export.errors import InvalidEventError
from seq_export.invocations import Backfill
from seq_export.job_message import Job, JobId, new_run
from seq_export.job_queue import JobQueue
from seq_export.jobs import Exports, enqueue_marked
from seq_export.observability import emit, logger
from seq_export.queued_days import QueuedDays
from seq_export.results import BackfillResult


def run_backfill(
    request: Backfill, exports: Exports, queue: JobQueue, queued_days: QueuedDays, today: date
) -> BackfillResult:
    days = request.days(today)
    sources = [request.source] if request.source is not None else list(exports.sources)
    wanted = [
        JobId(source, kind, day)
        for day in days
        for source in sources
        for kind in exports.kinds(source)
        if request.kind in (None, kind)
    ]
    if not wanted:
        who = f"source {request.source} does not export it" if request.source else "no source exports it"
        raise InvalidEventError(f"backfill event 'kind' {request.kind!r}: {who} (account_scores is off)")
    skipped = (
        [] if request.force else [job for job in wanted if exports.of(job.source).sinks[job.kind].exists(job.date)]
    )
    exported = set(skipped)
    run = new_run()
    already_queued: dict[JobId, str] = {}
    jobs: list[Job] = []
    try:
        for job in wanted:
            if job in exported:
                continue
            holder = queued_days.claim(job, run, force=request.force)
            if holder is None:
                jobs.append(Job(job, attempt=1, reason="backfill", run=run))
            else:
                already_queued[job] = holder
    except BaseException:  # nothing is queued yet: the claims made so far are given back
        for claimed in jobs:
            queued_days.release(claimed.id, run)
        raise
    enqueue_marked(queue, queued_days, jobs)
    result = BackfillResult(
        first=request.first.isoformat(),
        last=request.last.isoformat(),
        days=len(days),
        enqueued=jobs,
        skipped=skipped,
        already_queued=already_queued,
        run=run,
    )
    emit(result.metrics())
    logger.info(
        "Backfill enqueued",
        first=result.first,
        last=result.last,
        sources=sources,
        enqueued=len(jobs),
        already_queued=len(already_queued),
        run=run,
    )
    return result
