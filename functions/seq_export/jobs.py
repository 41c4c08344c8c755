"""Use case: run queued jobs. One job is one export of a day, of the subusers or the account.

``run_job`` is the one place an export runs and its outcome becomes metrics, whoever asked: the
daily run, a direct ``{"date": D}``, or a message of the job queue. ``JobWorker`` consumes SQS
events with Powertools Batch (partial batch failures) and runs each job once with Powertools
Idempotency: SQS delivers at least once, and a duplicate 202 message must not start a second
chain of re-schedules. Both are imported when the first SQS event arrives, so the daily
(scheduled) path does not pay for them at cold start.

A job that ends (its day published, or given up to the dead-letter queue) releases its marker
of ``queued_days`` so the day may be queued again; ``run_now`` marks an export asked for now (the
daily run's first day, a direct export) as running while it runs and while its 202s keep it queued.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from seq_export.config import unknown_source
from seq_export.dates import check_exportable, parse_day, today_utc
from seq_export.errors import ConfigError, InvalidEventError, SeqExportError
from seq_export.export_account import AccountDayExport
from seq_export.export_subusers import SubuserDayExport, TimeLeft
from seq_export.job_message import Job, new_run
from seq_export.job_queue import JobQueue
from seq_export.models import ACCOUNT
from seq_export.observability import MetricName, emit, emit_day_metrics, logger
from seq_export.progress import JobEnded, Progress
from seq_export.queued_days import QueuedDays
from seq_export.results import ExportResult, Status
from seq_export.s3_sink import S3Sink

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb import DynamoDBClient

#: A job (source, kind, date, attempt, run, checkpoint cursor, or the pages of each key range) is
#: handled once. An hour covers every redelivery and the longest delay; a later backfill of the
#: same day runs again.
IDEMPOTENCY_EXPIRY_SECONDS = 3600
IDEMPOTENCY_KEY = "[source, kind, date, attempt, run, checkpoint.after_key, checkpoint.ranges[*].pages]"
IDEMPOTENCY_KEY_PREFIX = "seq-export#retry-message"
#: The outcomes that end a job: nothing of it stays queued.
ENDED: frozenset[Status] = frozenset({"exported", "gave_up", "superseded"})


@dataclass(frozen=True)
class SourceExports:
    """What one source's jobs run: its subusers' day and, unless its account scores are off, its
    account's day; ``sinks`` holds, by kind, where each exported kind of day is published."""

    subusers: SubuserDayExport
    account: AccountDayExport | None
    sinks: Mapping[str, S3Sink]


@dataclass
class Exports:
    """Every configured source's exports, each built on its first job (``build``), so a run
    pays for the SendGrid client and key of the sources it touches only."""

    sources: tuple[str, ...]  # the first is the default of a request that names none
    build: Callable[[str], SourceExports]
    #: The kinds of day each source exports, known from its settings without building anything.
    source_kinds: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    _built: dict[str, SourceExports] = field(default_factory=dict, repr=False)

    def of(self, source: str) -> SourceExports:
        """The exports of ``source``; an ``InvalidEventError`` listing the configured sources otherwise."""
        if source not in self.sources:
            raise InvalidEventError(unknown_source(source, self.sources))
        if source not in self._built:
            self._built[source] = self.build(source)
        return self._built[source]

    def kinds(self, source: str) -> tuple[str, ...]:
        """The kinds of day ``source`` exports (the daily run and a backfill ask this of every
        source; no SendGrid client or key is built for it)."""
        if source not in self.sources:
            raise InvalidEventError(unknown_source(source, self.sources))
        return self.source_kinds[source]


def run_job(
    exports: Exports, job: Job, time_left: TimeLeft | None = None, queued_days: QueuedDays | None = None
) -> ExportResult:
    """Run one job's export and emit its metrics, the stack's total and its source's series (an
    exported day's fleet metrics as their own point at the score day); a failure counts
    ``ExportFailed`` and propagates. A job that ended releases its ``queued_days`` marker."""
    try:
        chosen = exports.of(job.source)
        if job.kind == ACCOUNT:
            if chosen.account is None:
                raise ConfigError(f"source {job.source} does not export its account scores (account_scores is off)")
            result = chosen.account.run(job)
        else:
            result = chosen.subusers.run(job, time_left)
    except SeqExportError as exc:
        emit({MetricName.EXPORT_FAILED: 1}, source=job.source)
        logger.error(
            "Export failed",
            source=job.source,
            date=job.date,
            attempt=job.attempt,
            kind=job.kind,
            error=type(exc).__name__,
            reason=str(exc),
        )
        raise
    if queued_days is not None and result.status in ENDED:
        queued_days.release(job.id, job.run)
    emit(result.metrics(), source=result.source)
    emit_day_metrics(result.source, result.date, result.fleet_metrics())
    return replace(result, run=job.run)


def enqueue_marked(queue: JobQueue, queued_days: QueuedDays, jobs: Sequence[Job]) -> None:
    """Queue ``jobs`` whose markers were just claimed; if queueing fails (or is interrupted), the
    markers are released, so the days need not wait for them to expire to be queued again."""
    try:
        queue.enqueue(jobs)
    except BaseException:
        for job in jobs:
            queued_days.release(job.id, job.run)
        raise


def run_now(exports: Exports, job: Job, queued_days: QueuedDays, time_left: TimeLeft | None = None) -> ExportResult:
    """An export asked for now (not from the queue): marked as running under its run (a direct
    export without one gets a fresh run, so its 202 re-schedules are its own and its caller can
    follow them), so a backfill meanwhile does not queue it again; released unless its 202s or a
    continuation leave it queued, or if it does not run to an answer. It runs whether or not
    another run holds the day: it was asked for."""
    run = job.run or new_run()
    job = replace(job, run=run)
    claimed = False
    try:
        holder = queued_days.claim(job.id, run)
    except SeqExportError as exc:  # a missing marker costs at worst a doubled backfill day
        logger.warning("Could not mark the day as running", job=str(job.id), problem=str(exc))
    else:
        claimed = holder is None
        if holder is not None:
            logger.info("Day already queued by another run; exporting it now anyway", job=str(job.id), holder=holder)
    try:
        return run_job(exports, job, time_left, queued_days)
    except BaseException:
        if claimed:
            queued_days.release(job.id, job.run)
        raise


class Interrupted(Exception):
    """A job cut short by ``KeyboardInterrupt`` (Ctrl-C of a local delivery; Lambda sends none).

    Powertools Idempotency deletes a job's in-progress record on an ``Exception`` only, and a
    record left behind would fail the message's redelivery as already in progress until the
    invocation's time is up; so the worker turns the interrupt into this inside the idempotent
    call and back into ``KeyboardInterrupt`` outside it."""


class JobWorker:
    """Consumes an SQS event of jobs; built once per container, on the first SQS event. What
    became of each message's job is told to ``progress`` (nobody follows in Lambda)."""

    def __init__(
        self,
        exports: Exports,
        dynamodb: DynamoDBClient,
        idempotency_table: str,
        queued_days: QueuedDays,
        progress: Progress | None = None,
    ) -> None:
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType  # noqa: PLC0415
        from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        self._exports = exports
        self._queued_days = queued_days
        self._progress = progress or Progress()
        self._processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self._config = IdempotencyConfig(
            event_key_jmespath=IDEMPOTENCY_KEY,
            raise_on_no_idempotency_key=True,
            expires_after_seconds=IDEMPOTENCY_EXPIRY_SECONDS,
        )
        persistence: DynamoDBPersistenceLayer = DynamoDBPersistenceLayer(
            table_name=idempotency_table, boto3_client=dynamodb
        )
        self._run_once: Callable[..., dict[str, Any]] = idempotent_function(
            data_keyword_argument="message",
            persistence_store=persistence,
            config=self._config,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )(self._run)

    def handle(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        """Run every record's job; failed records are reported for SQS to deliver again."""
        from aws_lambda_powertools.utilities.batch import process_partial_response  # noqa: PLC0415

        if context is not None:
            self._config.register_lambda_context(context)
        time_left = time_left_of(context)

        def record_handler(record: SQSRecord) -> dict[str, Any]:
            try:
                job = Job.from_json(record.body, default_source=self._exports.sources[0])
                self._exports.of(job.source)
                check_exportable(parse_day(job.date), today_utc(), what="queued job 'date'")
            except InvalidEventError as exc:  # the record fails; SQS redelivers, then dead-letters it
                emit({MetricName.INVALID_EVENTS: 1})
                logger.error("Invalid queued job", message_id=record.message_id, reason=str(exc))
                self._progress.job_ended(JobEnded(record.message_id, error=exc, refused=True))
                raise
            # only ``message`` is part of the idempotency key; the time left and message id ride along
            try:
                return self._run_once(message=job.to_dict(), time_left=time_left, message_id=record.message_id)
            except Interrupted:
                raise KeyboardInterrupt from None  # Batch catches Exception only: the interrupt stops the batch

        response = process_partial_response(
            event=event, record_handler=record_handler, processor=self._processor, context=context
        )
        return dict(response)

    def _run(self, message: dict[str, Any], time_left: TimeLeft | None, message_id: str) -> dict[str, Any]:
        job = Job.from_dict(message, default_source=self._exports.sources[0])
        try:
            result = run_job(self._exports, job, time_left, self._queued_days)
        except KeyboardInterrupt:
            raise Interrupted(str(job.id)) from None
        except Exception as exc:
            self._progress.job_ended(JobEnded(message_id, error=exc))
            raise
        self._progress.job_ended(JobEnded(message_id, result=result))
        return result.summary()


def time_left_of(context: LambdaContext | None) -> TimeLeft | None:
    """Seconds the invocation has left, read when asked (None outside Lambda: no time limit)."""
    if context is None:
        return None
    return lambda: context.get_remaining_time_in_millis() / 1000
