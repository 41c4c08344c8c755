"""Use case: the daily run. Every source's day starts here: the first source's subusers' day is
exported here and now (as a single-source stack always did); every other source's subusers' day
and every parent account's own day is queued as its own job first, so that one source's 202s,
retries and failures never hold up or fail another's day, nor the account's the subusers'.

Each job is marked queued (``queued_days``) under the run ``daily-DAY`` before it is queued, so a
backfill over the same day meanwhile does not queue it again; a job a backfill already holds is
not queued twice. The marks never stop the daily run: a marker table that cannot be reached
queues every job unmarked."""

from __future__ import annotations

from seq_export.errors import SeqExportError
from seq_export.export_subusers import TimeLeft
from seq_export.job_message import Job, JobId
from seq_export.job_queue import JobQueue
from seq_export.jobs import Exports, enqueue_marked, run_now
from seq_export.models import SUBUSERS
from seq_export.observability import logger
from seq_export.queued_days import QueuedDays
from seq_export.results import ExportResult


def run_daily(
    exports: Exports, queue: JobQueue, queued_days: QueuedDays, day: str, time_left: TimeLeft | None = None
) -> ExportResult:
    first = exports.sources[0]
    # one run per scheduled day: a retried scheduled invocation queues the same jobs again (its
    # markers are its own), and the job worker's idempotency runs each of them once
    run = f"daily-{day}"
    jobs = [
        Job(JobId(source, kind, day), attempt=1, reason="scheduled", run=run)
        for source in exports.sources
        for kind in exports.kinds(source)
        if (source, kind) != (first, SUBUSERS)
    ]
    queued = [job for job in jobs if _claimed(queued_days, job.id, run)]
    if queued:
        enqueue_marked(queue, queued_days, queued)
        logger.info("Daily run queued", date=day, jobs=[str(job.id) for job in queued])
    return run_now(exports, Job(JobId(first, SUBUSERS, day), attempt=1, run=run), queued_days, time_left)


def _claimed(queued_days: QueuedDays, job: JobId, run: str) -> bool:
    """Whether to queue ``job``: its marker taken by ``run``, or the markers out of reach."""
    try:
        holder = queued_days.claim(job, run)
    except SeqExportError as exc:
        logger.warning("Could not mark the day as queued; queueing it anyway", job=str(job), problem=str(exc))
        return True
    if holder is not None:
        logger.info("Day already queued by another run", job=str(job), holder=holder)
    return holder is None
