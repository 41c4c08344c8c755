"""Wiring: settings -> AWS clients -> adapters -> use cases, built once per container.

The clients, the HTTP session and the secret cache live as long as the container, so a warm
invocation pays for none of them again. Tests, the local runner and the benchmark build their
own (``build_dependencies`` with a session, a sleep, a store, a clock or a ``progress`` follower of
their choice) and install it with ``use_dependencies``; nothing patches a private attribute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import boto3

from seq_export.api_key import ApiKeySource
from seq_export.config import Settings, aws_client_config
from seq_export.events_publisher import ScoreChangePublisher
from seq_export.export_account import AccountDayExport
from seq_export.export_subusers import ScoreChangeRule, SubuserDayExport
from seq_export.job_queue import JobQueue
from seq_export.jobs import Exports, JobWorker, SourceExports
from seq_export.latest_store import LatestStore
from seq_export.models import ACCOUNT, SUBUSERS
from seq_export.not_ready import NotReadyPolicy
from seq_export.progress import Progress
from seq_export.queued_days import QueuedDays, marker_lifetime
from seq_export.ranged_fetch import RangedFetch
from seq_export.s3_sink import S3Sink
from seq_export.seq_client import SeqClient

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass
class Dependencies:
    settings: Settings
    exports: Exports  # every source's, each built on its first job
    queue: JobQueue
    dynamodb: DynamoDBClient  # one client for the latest-score store, idempotency and the markers
    queued_days: QueuedDays  # which jobs are queued or running, in the idempotency table
    progress: Progress = field(default_factory=Progress)  # who follows pages and jobs (nobody in Lambda)
    _worker: JobWorker | None = field(default=None, repr=False)

    def job_worker(self) -> JobWorker:
        """Built on the first SQS event: the daily path does not import Batch or Idempotency."""
        if self._worker is None:
            self._worker = JobWorker(
                self.exports, self.dynamodb, self.settings.idempotency_table, self.queued_days, self.progress
            )
        return self._worker


def build_dependencies(
    settings: Settings | None = None,
    *,
    session: boto3.session.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    store: LatestStore | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    progress: Progress | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Dependencies:
    """Wire adapters to clients; callers may pass their own session, sleep, latest-score store,
    the clock that times pages (``monotonic``), who follows the pages and jobs (``progress``;
    nobody by default, as in Lambda), or the clock of the days' ``exported_at`` (``clock``: two
    exports of a day then write the same bytes). The AWS side (one bucket, table and queue) is
    shared by every source; each source's SendGrid client, key and sinks are built on its first
    job (``Exports.of``)."""
    settings = settings or Settings.from_env()
    session = session or boto3.session.Session()
    progress = progress or Progress()
    config = aws_client_config()
    queue = JobQueue(
        session.client("sqs", config=config),
        settings.retry_queue_url,
        settings.dead_letter_queue_url,
        first_delay=settings.not_ready_delay_seconds,
    )
    not_ready = NotReadyPolicy(queue, max_attempts=settings.max_not_ready_attempts)
    s3 = session.client("s3", config=config)
    secrets = session.client("secretsmanager", config=config)
    dynamodb = session.client("dynamodb", config=config)
    tracked = settings.score_change_event_bus is not None
    latest = store or LatestStore(dynamodb, settings.latest_scores_table, sleep=sleep, track_changes=tracked)
    score_changes = None
    if settings.score_change_event_bus is not None:
        publisher = ScoreChangePublisher(
            session.client("events", config=config), settings.score_change_event_bus, sleep=sleep
        )
        score_changes = ScoreChangeRule(publisher, settings.score_change_min_step)

    def build_source(name: str) -> SourceExports:
        source = settings.source(name)
        sinks = {SUBUSERS: S3Sink(s3, settings.scores_bucket, settings.scores_prefix, name)}
        if source.account_scores:
            sinks[ACCOUNT] = S3Sink(s3, settings.scores_bucket, settings.account_scores_prefix, name)
        api_key = ApiKeySource(secrets, source.secret_id, source=name)
        client = SeqClient(
            source.base_url,
            api_key,
            fresh_key=api_key.refresh,
            page_size=settings.page_size,
            max_in_flight=settings.max_in_flight,
            read_timeout=settings.read_timeout_seconds,
            sleep=sleep,
        )
        ranged_fetch = (
            RangedFetch(client, workers=settings.max_in_flight, monotonic=monotonic) if settings.key_ranges else None
        )
        subusers = SubuserDayExport(
            client,
            sinks[SUBUSERS],
            latest,
            queue,
            not_ready,
            score_changes=score_changes,
            monotonic=monotonic,
            progress=progress,
            ranged_fetch=ranged_fetch,
            clock=clock or (lambda: datetime.now(UTC)),
        )
        account = AccountDayExport(client, sinks[ACCOUNT], not_ready) if ACCOUNT in sinks else None
        return SourceExports(subusers=subusers, account=account, sinks=sinks)

    kinds = {source.name: (SUBUSERS, ACCOUNT) if source.account_scores else (SUBUSERS,) for source in settings.sources}
    exports = Exports(sources=settings.source_names, build=build_source, source_kinds=kinds)
    queued_days = QueuedDays(
        dynamodb, settings.idempotency_table, lifetime_seconds=marker_lifetime(not_ready.longest_wait_seconds())
    )
    return Dependencies(
        settings=settings, exports=exports, queue=queue, dynamodb=dynamodb, queued_days=queued_days, progress=progress
    )


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
