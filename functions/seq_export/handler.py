"""Lambda entry point: parse the event, build dependencies once per container, call the domain.

Accepted events (samples in ``events/``):

* scheduled: EventBridge Scheduler input ``{"scheduled_time": "<aws.scheduler.scheduled-time>"}``
  or a classic EventBridge "Scheduled Event" (its ``time``): exports the UTC day before;
* SQS: records whose body is a retry message ``{"date": ..., "attempt": n}`` (partial batch
  failures, so one bad record does not fail the others);
* direct: ``{"date": "YYYY-MM-DD"}`` returns a summary; ``{"from": ..., "to": ...}`` enqueues
  one message per day (a backfill).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from seq_export.api_key import ApiKeySource
from seq_export.config import Settings
from seq_export.errors import InvalidEventError, SeqExportError
from seq_export.events_publisher import ScoreChangePublisher
from seq_export.exporter import Exporter, ExportResult
from seq_export.latest_store import LatestStore
from seq_export.models import ACCOUNT, SUBUSERS, Checkpoint, RetryMessage, day_before, parse_day
from seq_export.observability import MetricName, logger, metrics, tracer
from seq_export.retry_scheduler import RetryScheduler
from seq_export.s3_sink import S3Sink
from seq_export.seq_client import SeqClient

if TYPE_CHECKING:  # imported where used: the daily (scheduled) path never needs them
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

#: SendGrid keeps 90 days of scores; older dates answer 400.
RETENTION_DAYS = 90
ACCEPTED_EVENTS = (
    'expected one of: {"scheduled_time": "<ISO-8601>"} (EventBridge Scheduler), an EventBridge '
    '"Scheduled Event", an SQS event of retry messages {"date": "YYYY-MM-DD", "attempt": n}, '
    '{"date": "YYYY-MM-DD"[, "kind": "account"]}, or '
    '{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"[, "force": true]}'
)
AWS_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=16,
)


#: A retry message (date, attempt) is handled once: SQS delivers at least once, and a
#: duplicate 202 message must not start a second chain of re-schedules. An hour covers every
#: redelivery and the longest delay; a later backfill of the same day runs again.
IDEMPOTENCY_EXPIRY_SECONDS = 3600


@dataclass
class Dependencies:
    settings: Settings
    exporter: Exporter
    scheduler: RetryScheduler
    sinks: dict[str, S3Sink]  # by kind: where each kind of day is published
    dynamodb: Any  # the one DynamoDB client, shared by the latest-score store and idempotency
    _idempotency: tuple[DynamoDBPersistenceLayer, IdempotencyConfig] | None = None

    def idempotency(self) -> tuple[DynamoDBPersistenceLayer, IdempotencyConfig]:
        """Built on the first SQS event: the daily path does not pay for the import."""
        if self._idempotency is None:
            from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415
                DynamoDBPersistenceLayer,
                IdempotencyConfig,
            )

            self._idempotency = (
                DynamoDBPersistenceLayer(table_name=self.settings.idempotency_table, boto3_client=self.dynamodb),
                IdempotencyConfig(
                    event_key_jmespath="[date, attempt, kind, run, checkpoint.after_key]",
                    raise_on_no_idempotency_key=True,
                    expires_after_seconds=IDEMPOTENCY_EXPIRY_SECONDS,
                ),
            )
        return self._idempotency


def build_dependencies(
    settings: Settings | None = None,
    *,
    session: boto3.session.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Dependencies:
    """Wire adapters to clients; tests and the local runner pass their own session or sleep."""
    settings = settings or Settings.from_env()
    session = session or boto3.session.Session()
    scheduler = RetryScheduler(
        session.client("sqs", config=AWS_CONFIG),
        settings.retry_queue_url,
        settings.dead_letter_queue_url,
        first_delay=settings.not_ready_delay_seconds,
    )
    api_key = ApiKeySource(session.client("secretsmanager", config=AWS_CONFIG), settings.api_key_secret_id)
    s3 = session.client("s3", config=AWS_CONFIG)
    sinks = {SUBUSERS: S3Sink(s3, settings.scores_bucket, settings.scores_prefix)}
    if settings.export_account_scores:
        sinks[ACCOUNT] = S3Sink(s3, settings.scores_bucket, settings.account_scores_prefix)
    dynamodb = session.client("dynamodb", config=AWS_CONFIG)
    exporter = Exporter(
        SeqClient(
            settings.api_base_url,
            api_key,
            page_size=settings.page_size,
            read_timeout=settings.read_timeout_seconds,
            sleep=sleep,
        ),
        sinks[SUBUSERS],
        LatestStore(
            dynamodb,
            settings.latest_scores_table,
            sleep=sleep,
            track_changes=settings.score_change_event_bus is not None,
        ),
        scheduler,
        max_not_ready_attempts=settings.max_not_ready_attempts,
        account_sink=sinks.get(ACCOUNT),
        publisher=None
        if settings.score_change_event_bus is None
        else ScoreChangePublisher(
            session.client("events", config=AWS_CONFIG), settings.score_change_event_bus, sleep=sleep
        ),
        min_step=settings.score_change_min_step,
    )
    return Dependencies(settings=settings, exporter=exporter, scheduler=scheduler, sinks=sinks, dynamodb=dynamodb)


_dependencies: Dependencies | None = None


def dependencies() -> Dependencies:
    """Built on first use and kept for the container's life (clients, HTTP session, secret cache)."""
    global _dependencies
    if _dependencies is None:
        _dependencies = build_dependencies()
    return _dependencies


def use_dependencies(deps: Dependencies | None) -> None:
    """Replace the container's dependencies (tests, local runner); None rebuilds from the env."""
    global _dependencies
    _dependencies = deps


@dataclass
class _Invocation:
    """The running invocation's context: Lambda runs one event at a time per container."""

    context: LambdaContext | None = None


_invocation = _Invocation()
_processor: BatchProcessor | None = None


def _batch_processor() -> BatchProcessor:
    """Powertools Batch, built on the first SQS event (the daily path never imports it)."""
    global _processor
    if _processor is None:
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType  # noqa: PLC0415

        _processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return _processor


def _export(
    day: str, attempt: int, checkpoint: Checkpoint | None = None, kind: str = SUBUSERS, run: str | None = None
) -> ExportResult:
    context = _invocation.context
    time_left = None if context is None else (lambda: context.get_remaining_time_in_millis() / 1000)
    exporter = dependencies().exporter
    try:
        if kind == ACCOUNT:
            result = exporter.export_account_day(day, attempt=attempt, run=run)
        else:
            result = exporter.export_day(day, attempt=attempt, checkpoint=checkpoint, time_left=time_left, run=run)
    except SeqExportError as exc:
        metrics.add_metric(name=MetricName.EXPORT_FAILED, unit=MetricUnit.Count, value=1)
        logger.error("Export failed", date=day, attempt=attempt, kind=kind, error=type(exc).__name__, reason=str(exc))
        raise
    _record_metrics(result)
    return result


def _record_metrics(result: ExportResult) -> None:
    if result.score_change_events:
        metrics.add_metric(name=MetricName.SCORE_CHANGE_EVENTS, unit=MetricUnit.Count, value=result.score_change_events)
    if result.score_change_events_failed:
        metrics.add_metric(
            name=MetricName.SCORE_CHANGE_EVENTS_FAILED, unit=MetricUnit.Count, value=result.score_change_events_failed
        )
    if result.status == "exported" and result.kind == ACCOUNT:
        metrics.add_metric(name=MetricName.ACCOUNT_SCORES_EXPORTED, unit=MetricUnit.Count, value=result.records)
    elif result.status == "exported":
        metrics.add_metric(name=MetricName.RECORDS_EXPORTED, unit=MetricUnit.Count, value=result.records)
        metrics.add_metric(name=MetricName.PAGES_FETCHED, unit=MetricUnit.Count, value=result.pages)
        metrics.add_metric(name=MetricName.INELIGIBLE_SUBUSERS, unit=MetricUnit.Count, value=result.ineligible)
        metrics.add_metric(name=MetricName.LATEST_SCORES_WRITTEN, unit=MetricUnit.Count, value=result.latest_written)
    elif result.status == "continued":
        metrics.add_metric(name=MetricName.CONTINUED, unit=MetricUnit.Count, value=1)
    elif result.status == "not_ready":
        metrics.add_metric(name=MetricName.NOT_READY_RESCHEDULED, unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name=MetricName.GAVE_UP, unit=MetricUnit.Count, value=1)


def _retry_record(record: SQSRecord) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.idempotency import idempotent_function  # noqa: PLC0415

    message = RetryMessage.from_json(record.body)
    persistence, config = dependencies().idempotency()
    once = idempotent_function(
        data_keyword_argument="message",
        persistence_store=persistence,
        config=config,
        key_prefix="seq-export#retry-message",
    )(_export_message)
    return once(message=message.to_dict())  # type: ignore[no-any-return]


def _export_message(message: dict[str, Any]) -> dict[str, Any]:
    parsed = RetryMessage.from_dict(message)
    return _export(parsed.date, parsed.attempt, parsed.checkpoint, parsed.kind, parsed.run).summary()


def _new_run() -> str:
    return secrets.token_hex(8)


def _scheduled(day: str) -> dict[str, Any]:
    """The daily run: subusers here and now; the account's own day as its own queued export,
    so that its 202s, retries and failures never hold up or fail the subusers' day."""
    deps = dependencies()
    if ACCOUNT in deps.sinks:
        deps.scheduler.enqueue([RetryMessage(date=day, attempt=1, reason="scheduled", kind=ACCOUNT, run=_new_run())])
    return _export(day, 1).summary()


def _backfill(first: date, last: date, today: date, *, force: bool) -> dict[str, Any]:
    oldest = today - timedelta(days=RETENTION_DAYS)
    newest = today - timedelta(days=1)
    if first > last:
        raise InvalidEventError(f"backfill 'from' {first} is after 'to' {last}")
    if first < oldest:
        raise InvalidEventError(
            f"backfill 'from' {first} is older than SendGrid's {RETENTION_DAYS}-day window ({oldest})"
        )
    if last > newest:
        raise InvalidEventError(f"backfill 'to' {last} is not a finished UTC day; the newest allowed is {newest}")
    days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    deps = dependencies()
    run = _new_run()
    wanted = [(day, kind) for day in days for kind in deps.sinks]
    skipped = [] if force else [(day, kind) for day, kind in wanted if deps.sinks[kind].exists(day)]
    messages = [
        RetryMessage(date=day, attempt=1, reason="backfill", kind=kind, run=run)
        for day, kind in wanted
        if (day, kind) not in skipped
    ]
    deps.scheduler.enqueue(messages)
    metrics.add_metric(name=MetricName.BACKFILL_DAYS_ENQUEUED, unit=MetricUnit.Count, value=len(messages))
    logger.info("Backfill enqueued", first=first.isoformat(), last=last.isoformat(), enqueued=len(messages))
    return {
        "status": "enqueued",
        "from": first.isoformat(),
        "to": last.isoformat(),
        "days": len(days),
        "enqueued": [f"{m.kind}:{m.date}" for m in messages],
        "skipped_already_exported": [f"{kind}:{day}" for day, kind in skipped],
    }


def route(event: Any, context: LambdaContext | None, today: date | None = None) -> dict[str, Any]:
    """Dispatch one event to the domain; raises ``InvalidEventError`` naming the accepted shapes."""
    _invocation.context = context
    if not isinstance(event, dict):
        raise InvalidEventError(f"event must be a JSON object; {ACCEPTED_EVENTS}")
    records = event.get("Records")
    if (
        isinstance(records, list)
        and records
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    ):
        from aws_lambda_powertools.utilities.batch import process_partial_response  # noqa: PLC0415

        if context is not None:
            dependencies().idempotency()[1].register_lambda_context(context)
        response = process_partial_response(
            event=event, record_handler=_retry_record, processor=_batch_processor(), context=context
        )
        return dict(response)
    if "scheduled_time" in event:
        return _scheduled(day_before(event["scheduled_time"], what="scheduled_time").isoformat())
    if event.get("detail-type") == "Scheduled Event" and event.get("source") == "aws.events":
        return _scheduled(day_before(event.get("time", ""), what="Scheduled Event 'time'").isoformat())
    if "date" in event and set(event) <= {"date", "attempt", "kind"}:
        message = RetryMessage.from_dict(event)
        return _export(message.date, message.attempt, kind=message.kind).summary()
    if {"from", "to"} <= set(event) <= {"from", "to", "force"}:
        force = event.get("force", False)
        if not isinstance(force, bool):
            raise InvalidEventError(f"backfill 'force' must be true or false, got {force!r}")
        today = today or datetime.now(UTC).date()
        first, last = parse_day(event["from"], what="from"), parse_day(event["to"], what="to")
        return _backfill(first, last, today, force=force)
    raise InvalidEventError(f"unrecognised event with keys {sorted(event)[:10]}; {ACCEPTED_EVENTS}")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        return route(event, context)
    except InvalidEventError as exc:
        metrics.add_metric(name=MetricName.INVALID_EVENTS, unit=MetricUnit.Count, value=1)
        logger.error("Invalid event", reason=str(exc))
        raise
