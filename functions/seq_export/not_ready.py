"""What a day's export does when SendGrid answers 202 (scores still being computed).

One rule for the subusers' day and the account's day: re-schedule the same job through the job
queue with a growing delay (``JobQueue.delay_for``), or, once ``max_attempts`` answers of 202
were seen, give up visibly by sending the job to the dead-letter queue.

The give-up message is a new job of its own: attempt 1 under a fresh run id. Idempotency keys
on (source, kind, date, attempt, run), so when an operator moves it back to the retry queue (the
dead-letter runbook, docs/operations.md) it is new work with the full budget of ``max_attempts``, not a replay of the
stored "gave up" result; a duplicate delivery of the moved message is still handled once. It
names the run it ends (``gave_up_run``), so a caller following that run knows its dead letter.
"""

from __future__ import annotations

from seq_export.job_message import Job, new_run
from seq_export.job_queue import JobQueue
from seq_export.observability import logger
from seq_export.results import ExportResult


class NotReadyPolicy:
    def __init__(self, queue: JobQueue, *, max_attempts: int) -> None:
        self._queue = queue
        self._max_attempts = max_attempts

    def longest_wait_seconds(self) -> int:
        """How long a day can stay re-scheduled by 202s before it is given up: the sum of every
        delay up to ``max_attempts`` (about 3.5 hours with the defaults)."""
        return sum(self._queue.delay_for(attempt) for attempt in range(2, self._max_attempts + 1))

    def handle(self, job: Job) -> ExportResult:
        if job.attempt >= self._max_attempts:
            redrive = Job(job.id, attempt=1, reason="gave_up_not_ready", run=new_run(), gave_up_run=job.run)
            self._queue.give_up(redrive)
            logger.error(
                "Gave up: SendGrid still computing scores",
                limit=self._max_attempts,
                action="message sent to the dead-letter queue; moved back, it runs the day again",
                redrive_run=redrive.run,
            )
            return ExportResult(status="gave_up", job=job.id, attempt=job.attempt)
        following = Job(job.id, attempt=job.attempt + 1, run=job.run)
        delay = self._queue.schedule(following)
        logger.info("Scores not ready, re-scheduled", next_attempt=following.attempt, delay_seconds=delay)
        return ExportResult(
            status="not_ready",
            job=job.id,
            attempt=job.attempt,
            next_attempt=following.attempt,
            next_attempt_delay_seconds=delay,
        )
