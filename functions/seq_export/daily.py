"""Use case: the daily run. The subusers' day is exported here and now; the parent account's
own day is queued as its own job, so that its 202s, retries and failures never hold up or fail
the subusers' day."""

from __future__ import annotations

from seq_export.export_day import TimeLeft
from seq_export.job_queue import JobQueue
from seq_export.jobs import Exports, run_job
from seq_export.models import ACCOUNT, Job, new_run
from seq_export.results import ExportResult


def run_daily(exports: Exports, queue: JobQueue, day: str, time_left: TimeLeft | None = None) -> ExportResult:
    if exports.account is not None:
        queue.enqueue([Job(date=day, attempt=1, reason="scheduled", kind=ACCOUNT, run=new_run())])
    return run_job(exports, Job(date=day, attempt=1), time_left)
