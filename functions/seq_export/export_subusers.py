"""Use case: export one subusers' day. No Lambda and no environment in here.

Pages are validated and streamed to a temporary file (the spool) as they arrive, so memory holds
one page at a time whatever the subuser count; the S3 object is put only after the last page, so
a run that fails part-way publishes nothing. Each page's scored records go to DynamoDB while the
next page is fetched (``WriteBehind``): those writes are idempotent and guarded by date, so a
failed run leaves only true scores behind and a re-run converges. A 202 goes to the not-ready
policy; a day that nears the Lambda time limit is checkpointed and continued through the queue,
with a reserve measured from this invocation's own page costs (``page_costs``). With score-change
events on, the invocation that completes the day also sends its daily digest.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import IO, TypeVar

from seq_export import record_codec
from seq_export.dates import iso_timestamp, parse_instant
from seq_export.errors import ScoresNotReady, SeqProtocolError, StagedDataGoneError
from seq_export.events_publisher import PublishCounts, ScoreChangePublisher
from seq_export.job_message import Checkpoint, Counters, Job
from seq_export.job_queue import JobQueue
from seq_export.latest_store import DayWriter, LatestStore
from seq_export.models import ScoreRecord, validate_page
from seq_export.not_ready import NotReadyPolicy
from seq_export.observability import logger
from seq_export.page_costs import CONTINUE_FLOOR_SECONDS, PageCosts
from seq_export.progress import PageFetched, Progress
from seq_export.results import ExportResult
from seq_export.s3_sink import S3Sink
from seq_export.saved_lines import SavedLines
from seq_export.score_bands import DailyDigest, ScoreMoves, tally
from seq_export.seq_client import SeqClient

TimeLeft = Callable[[], float]


@dataclass(frozen=True)
class ScoreChangeRule:
    """Where score moves of at least ``min_step`` go (score-change events are optional)."""

    publisher: ScoreChangePublisher
    min_step: Decimal = Decimal(1)


class SubuserDayExport:
    def __init__(
        self,
        client: SeqClient,
        sink: S3Sink,
        store: LatestStore,
        queue: JobQueue,
        not_ready: NotReadyPolicy,
        *,
        score_changes: ScoreChangeRule | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        spool_dir: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        reserve_floor: float = CONTINUE_FLOOR_SECONDS,
        progress: Progress | None = None,
    ) -> None:
        self._client = client
        self._sink = sink
        self._store = store
        self._queue = queue
        self._not_ready = not_ready
        self._score_changes = score_changes
        self._clock = clock
        self._spool_dir = spool_dir
        self._monotonic = monotonic
        self._reserve_floor = reserve_floor
        self._progress = progress or Progress()  # who follows the pages (nobody in Lambda)

    def run(self, job: Job, time_left: TimeLeft | None = None) -> ExportResult:
        """Export ``job``'s day (from its checkpoint if any); ``time_left`` is seconds this run has."""
        logger.append_keys(source=job.source, kind=job.kind, date=job.date, attempt=job.attempt)
        try:
            try:
                result = self._export(job, time_left)
            except ScoresNotReady:
                return self._not_ready.handle(job)
            except SeqProtocolError as exc:
                self._sink.keep_aside(job.date, exc)
                raise
            except StagedDataGoneError as exc:
                if not self._published_since_export_began(job):
                    raise
                logger.warning("Day already completed by a duplicate of this continuation", problem=str(exc))
                return ExportResult(status="superseded", job=job.id, attempt=job.attempt, counts=_carried(job))
            logger.remove_keys(["page"])
            if result.status == "exported":
                result = self._send_digest(result)
            logger.info("Day exported" if result.status == "exported" else "Day continues", **result.summary())
            return result
        finally:
            logger.remove_keys(["source", "kind", "date", "attempt", "page"])

    def _export(self, job: Job, time_left: TimeLeft | None) -> ExportResult:
        day = job.date
        state = job.checkpoint or Checkpoint(after_key="", next_page=1, exported_at=iso_timestamp(self._clock()))
        saved = SavedLines.of(state)
        counts = state.counts
        seen: set[str] = set()
        events = PublishCounts()
        moves = ScoreMoves()
        costs = PageCosts(self._monotonic, floor=self._reserve_floor)
        with (
            tempfile.TemporaryFile(dir=self._spool_dir) as spool,
            self._store.open_day(day, state.exported_at) as writer,
            WriteBehind() as behind,
        ):
            saved.read_tail(self._sink, spool)
            costs.fetch_started()
            for page in self._client.iter_pages(day, after_key=state.after_key or None, first_page=state.next_page):
                costs.fetch_ended()
                logger.append_keys(page=page.number)
                batch = validate_page(page, source=job.source, day=job.date, what=str(job.id))
                for record in batch:
                    if record.user_id in seen:
                        raise SeqProtocolError(
                            f"{day} page {page.number}: user_id {record.user_id} was already returned on an "
                            "earlier page; refusing to write it twice",
                            raw=page.raw,
                        )
                    seen.add(record.user_id)
                spool.write(record_codec.encode(batch, state.exported_at))
                # written beside the next fetch, and timed for the reserve
                behind.submit(costs.timed(partial(self._write_page, writer, events=events, moves=moves)), batch)
                page_counts = tally(batch)
                counts += page_counts
                logger.info("Page fetched", records=len(batch), ineligible=page_counts.ineligible, total=counts.records)
                self._progress.page_fetched(PageFetched(job.id, page.number, counts.records))
                if page.next_after_key is not None and time_left is not None and _out_of_time(time_left, costs, behind):
                    behind.wait()
                    following = replace(
                        state,
                        after_key=page.next_after_key,
                        next_page=page.number + 1,
                        counts=counts + _written(writer, moves),
                    )
                    return replace(
                        self._continue_later(job, spool, saved, following),
                        score_change_events=events.sent,
                        score_change_events_failed=events.failed,
                    )
                costs.fetch_started()
            behind.wait()
            key, size = saved.publish(self._sink, day, spool, records=counts.records, exported_at=state.exported_at)
        saved.delete_tail(self._sink)
        return ExportResult(
            status="exported",
            job=job.id,
            attempt=job.attempt,
            counts=counts + _written(writer, moves),
            s3_key=key,
            bytes=size,
            score_change_events=events.sent,
            score_change_events_failed=events.failed,
            score_moves_counted=self._score_changes is not None and self._store.tracks_changes,
        )

    def _send_digest(self, result: ExportResult) -> ExportResult:
        """Send the exported day's digest beside its score-change events (when they are on): once
        per exported day, by the invocation that completes it."""
        rule = self._score_changes
        digest = None if rule is None else DailyDigest.of(result, rule.min_step)
        if rule is None or digest is None:
            return result
        sent = rule.publisher.publish_digest(digest)
        return replace(result, daily_digest="sent" if sent else "failed")

    def _published_since_export_began(self, job: Job) -> bool:
        """A continuation whose upload or tail is gone is harmless when the day's object was
        published since the run began: a duplicate delivery of the same continuation (a crash
        between its send and its idempotency record) completed it. Otherwise the error stands."""
        if job.checkpoint is None:
            return False
        published = self._sink.published_at(job.date)
        started = parse_instant(job.checkpoint.exported_at).replace(microsecond=0)
        return published is not None and published >= started

    def _write_page(
        self, writer: DayWriter, batch: list[ScoreRecord], *, events: PublishCounts, moves: ScoreMoves
    ) -> None:
        """Upsert a page; count and publish the score moves of at least the configured step."""
        changes = writer.write(batch)
        rule = self._score_changes
        if rule is None or not changes:
            return
        moved = moves.add(changes, rule.min_step)
        if moved:
            counts = rule.publisher.publish(moved)
            events.sent += counts.sent
            events.failed += counts.failed

    def _continue_later(self, job: Job, spool: IO[bytes], saved: SavedLines, following: Checkpoint) -> ExportResult:
        """Save the lines so far and hand the rest of the day to a fresh invocation.

        Order matters for redelivery: the new part or tail is written and the continuation sent
        before the previous tail is deleted, so a crash at any point leaves a message whose
        checkpoint still points at data that exists.
        """
        saved_now = saved.save(self._sink, job.date, spool)
        following = saved_now.into(following)
        self._queue.continue_later(
            Job(job.id, attempt=job.attempt, reason="continue", checkpoint=following, run=job.run)
        )
        saved.delete_tail(self._sink)
        return ExportResult(
            status="continued",
            job=job.id,
            attempt=job.attempt,
            counts=following.counts,
            bytes=saved_now.uploaded_bytes,
        )


def _out_of_time(time_left: TimeLeft, costs: PageCosts, behind: WriteBehind) -> bool:
    """True when another page (its fetch, then its writes) might not fit before the deadline.

    Until one page's writes have been timed, wait for them: a reserve without them is a guess.
    """
    if not costs.writes_measured:
        behind.wait()
    left, reserve = time_left(), costs.reserve()
    if left >= reserve:
        return False
    logger.info(
        "Checkpointing before the deadline",
        seconds_left=round(left, 1),
        reserve_seconds=round(reserve, 1),
        slowest_fetch_seconds=round(costs.slowest_fetch(), 2),
        slowest_write_seconds=round(costs.slowest_write(), 2),
    )
    return True


def _carried(job: Job) -> Counters:
    return Counters() if job.checkpoint is None else job.checkpoint.counts


def _written(writer: DayWriter, moves: ScoreMoves) -> Counters:
    """This invocation's DynamoDB writes and the score moves they saw, to add to the checkpoint's."""
    written = Counters(latest_written=writer.counts.written, latest_kept_newer=writer.counts.kept_newer)
    return written + moves.counters()


_T = TypeVar("_T")


class WriteBehind:
    """Runs one write at a time beside the caller, so fetching page k+1 overlaps writing page k.

    ``submit`` first waits for the previous write (at most one page is in flight, so memory
    stays flat) and re-raises its error; ``wait`` does the same before anything that needs the
    writes done (the checkpoint, the publish). Leaving the block waits too, so no write outlives
    the day's export.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="page-writer")
        self._pending: Future[None] | None = None

    def submit(self, write: Callable[[_T], None], batch: _T) -> None:
        self.wait()
        self._pending = self._pool.submit(write, batch)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.wait()
            elif self._pending is not None:
                self._pending.exception()  # let it finish; the day's own error is the one reported
        finally:
            self._pool.shutdown(wait=True)
