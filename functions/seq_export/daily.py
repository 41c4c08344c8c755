"""Use case: the daily run. Every source's day starts here: the first source's subusers' day is
exported here and now (as a single-source stack always did); every other source's subusers' day
and every parent account's own day is queued as its own job first, so that one source's 202s,
retries and failures never hold up or fail another's day, nor the account's the subusers'."""

from __future__ import annotations

from seq_export.export_day import TimeLeft
from seq_export.job_message import Job, JobId
from seq_export.job_queue import JobQueue
from seq_export.jobs import Exports, run_job
from seq_export.models import SUBUSERS
from seq_export.observability import logger
from seq_export.results import ExportResult


def run_daily(exports: Exports, queue: JobQueue, day: str, time_left: TimeLeft | None = None) -> ExportResult:
    first = exports.sources[0]
    # one run per scheduled day: a retried scheduled invocation queues the same jobs again, and
    # the job worker's idempotency runs each of them once
    run = f"daily-{day}"
    queued = [
        Job(JobId(source, kind, day), attempt=1, reason="scheduled", run=run)
        for source in exports.sources
        for kind in exports.kinds(source)
        if (source, kind) != (first, SUBUSERS)
    ]
    if queued:
        queue.enqueue(queued)
        logger.info("Daily run queued", date=day, jobs=[str(job.id) for job in queued])
    return run_job(exports, Job(JobId(first, SUBUSERS, day), attempt=1), time_left)
