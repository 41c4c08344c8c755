"""Use case: export one subusers' day. No Lambda and no environment in here.

Pages are validated and streamed to a temporary file (the spool) as they arrive, so memory holds
one page at a time whatever the subuser count; the S3 object is put only after the last page, so
a run that fails part-way publishes nothing. Each page's scored records go to DynamoDB while the
next page is fetched (``WriteBehind``): those writes are idempotent and guarded by date, so a
failed run leaves only true scores behind and a re-run converges. A 202 goes to the not-ready
policy; a day that nears the Lambda time limit is checkpointed and continued through the queue,
with a reserve measured from this invocation's own page costs (``page_costs``). With score-change
events on, the invocation that completes the day also sends its daily digest.

Where the source's last day left split points (``key_ranges``), the day is fetched as key ranges
at once (``ranged_fetch``) into the same bytes; any doubt about the cursor gives way to the
in-order fetch from the day's start, in the same invocation. Either path leaves the day's split
points for the next one, sampled from the pages as they pass.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import IO

from seq_export import record_codec
from seq_export.dates import iso_timestamp, parse_instant
from seq_export.errors import (
    ScoresNotReady,
    SeqBadRequestError,
    SeqNotFoundError,
    SeqProtocolError,
    StagedDataGoneError,
)
from seq_export.events_publisher import PublishCounts, ScoreChangePublisher
from seq_export.job_message import Checkpoint, Counters, Job
from seq_export.job_queue import JobQueue
from seq_export.key_ranges import KeyRange, SplitSampler, UntrustedCursor, plan, resume_after
from seq_export.latest_store import DayWriter, LatestStore
from seq_export.models import ScoreRecord, validate_page
from seq_export.not_ready import NotReadyPolicy
from seq_export.observability import logger
from seq_export.page_costs import CONTINUE_FLOOR_SECONDS, PageCosts
from seq_export.progress import PageFetched, Progress
from seq_export.ranged_fetch import MAX_STAGED_CHUNKS, RangedFetch
from seq_export.results import ExportResult
from seq_export.s3_sink import S3Sink
from seq_export.saved_lines import SavedLines
from seq_export.score_bands import DailyDigest, ScoreMoves, tally
from seq_export.seq_client import SeqClient
from seq_export.write_behind import WriteBehind

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
        ranged_fetch: RangedFetch | None = None,
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
        self._ranged_fetch = ranged_fetch  # None: key ranges are off, every day follows the cursor

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
        state = job.checkpoint or Checkpoint(after_key="", next_page=1, exported_at=iso_timestamp(self._clock()))
        sent = _Sent()
        planned = state.ranges or (self._plan() if job.checkpoint is None else ())
        if not planned:
            return self._export_in_order(job, state, time_left, sent=sent)
        try:
            return self._export_ranges(self._ranged_fetch, job, replace(state, ranges=planned), time_left, sent=sent)
        except (UntrustedCursor, *RANGE_REFUSALS) as exc:
            sent.abandoned = self._abandon(job, exc)
        result = self._export_in_order(job, _restarted(state), time_left, sent=sent)
        # only now: until the in-order fetch has got this far, a redelivery of the ranged message
        # still finds every range's lines
        self._delete_chunks(planned)
        return result

    def _abandon(self, job: Job, reason: Exception) -> str:
        """Give up the key ranges (why, for the result): a bad answer is kept aside first."""
        if isinstance(reason, SeqProtocolError):
            self._sink.keep_aside(job.date, reason)
        logger.warning("Key ranges abandoned; fetching the day in order from its start", reason=str(reason))
        return str(reason)

    def _plan(self) -> tuple[KeyRange, ...]:
        """Key ranges from the split points the source's last day left; none when ranges are off."""
        if self._ranged_fetch is None:
            return ()
        split_ids = self._sink.split_points()
        return plan(split_ids) if split_ids else ()

    def _export_in_order(self, job: Job, state: Checkpoint, time_left: TimeLeft | None, *, sent: _Sent) -> ExportResult:
        """The day page after page along SendGrid's cursor, watching whether it could be cut in ranges."""
        day = job.date
        saved = SavedLines.of(state)
        counts = state.counts
        sample = state.split_sample
        last_id = resume_after(state.after_key)
        seen: set[str] = set()
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
                sample, last_id = sample.watch(batch, page.next_after_key, last_id, where=f"{day} page {page.number}")
                spool.write(record_codec.encode(batch, state.exported_at))
                # written beside the next fetch, and timed for the reserve
                behind.submit(costs.timed(partial(self._write_page, writer, sent=sent)), batch)
                page_counts = tally(batch)
                counts += page_counts
                logger.info("Page fetched", records=len(batch), ineligible=page_counts.ineligible, total=counts.records)
                self._progress.page_fetched(PageFetched(job.id, page.number, counts.records))
                if (
                    page.next_after_key is not None
                    and time_left is not None
                    and costs.out_of_time(time_left, behind.wait)
                ):
                    behind.wait()
                    following = replace(
                        state,
                        after_key=page.next_after_key,
                        next_page=page.number + 1,
                        counts=counts + _written(writer, sent.moves),
                        split_sample=sample,
                    )
                    return sent.into(self._continue_later(job, spool, saved, following))
                costs.fetch_started()
            behind.wait()
            key, size = saved.publish(self._sink, day, spool, records=counts.records, exported_at=state.exported_at)
        saved.delete_tail(self._sink)
        return self._exported(job, counts + _written(writer, sent.moves), (key, size), sample=sample, sent=sent)

    def _export_ranges(
        self, fetcher: RangedFetch | None, job: Job, state: Checkpoint, time_left: TimeLeft | None, *, sent: _Sent
    ) -> ExportResult:
        """The day as key ranges fetched at once (``ranged_fetch``), joined in order when all are
        done; a continuation carries every range's state and staged lines."""
        if fetcher is None:  # turned off while the day was under way in ranges
            raise UntrustedCursor("key ranges were turned off")
        day = job.date
        counts, sample = state.counts, state.split_sample
        lock = threading.Lock()  # pages arrive from several threads
        costs = PageCosts(self._monotonic, floor=self._reserve_floor)
        with (
            tempfile.TemporaryFile(dir=self._spool_dir) as spool,
            self._store.open_day(day, state.exported_at) as writer,
            WriteBehind() as behind,
        ):

            def on_page(kept: list[ScoreRecord], fetch_seconds: float, day_ended: bool) -> None:
                nonlocal counts, sample
                with lock:
                    costs.fetched(fetch_seconds)
                    behind.submit(costs.timed(partial(self._write_page, writer, sent=sent)), kept)
                    counts += tally(kept)
                    sample = sample.observe(int(kept[-1].user_id) if kept and not day_ended else None)
                    self._progress.page_fetched(PageFetched(job.id, counts.pages, counts.records))

            stopping = False  # once out of time, every range stops (and the reason is logged once)

            def out_of_time() -> bool:
                nonlocal stopping
                with lock:
                    stopping = stopping or (
                        time_left is not None and costs.out_of_time(time_left, behind.wait, parallel=fetcher.workers)
                    )
                    return stopping

            ranged = fetcher.fetch(
                job, state.ranges, exported_at=state.exported_at, on_page=on_page, out_of_time=out_of_time
            )
            try:
                behind.wait()
                if not ranged.finished:
                    if ranged.staged_chunks >= MAX_STAGED_CHUNKS:  # the message would outgrow SQS's 256 KB
                        raise UntrustedCursor(f"{ranged.staged_chunks} staged chunks are too many to carry on")
                    following = replace(
                        state,
                        ranges=ranged.save(self._sink, day),
                        counts=counts + _written(writer, sent.moves),
                        split_sample=sample,
                    )
                    self._queue.continue_later(
                        Job(job.id, attempt=job.attempt, reason="continue", checkpoint=following, run=job.run)
                    )
                    unfinished = sum(1 for key_range in following.ranges if not key_range.done)
                    logger.info("Key ranges continue later", unfinished_ranges=unfinished)
                    return sent.into(
                        ExportResult(
                            status="continued",
                            job=job.id,
                            attempt=job.attempt,
                            counts=following.counts,
                            key_ranges=len(following.ranges),
                        )
                    )
                ranged.join(self._sink, spool)
            finally:
                ranged.close()
            # nothing was uploaded: the joined spool is the whole day, put as one object
            whole_day = SavedLines()
            key, size = whole_day.publish(self._sink, day, spool, records=counts.records, exported_at=state.exported_at)
        self._delete_chunks(state.ranges)
        exported = self._exported(job, counts + _written(writer, sent.moves), (key, size), sample=sample, sent=sent)
        return replace(exported, key_ranges=len(state.ranges))

    def _exported(
        self, job: Job, counts: Counters, published: tuple[str, int], *, sample: SplitSampler, sent: _Sent
    ) -> ExportResult:
        """The published day's result, once its split points are left for the next day."""
        if not sample.trusted:
            logger.info(
                "The cursor does not allow key ranges; the next day is fetched in order", reason=sample.distrust_reason
            )
        self._sink.save_split_points(job.date, sample.split_points())
        return sent.into(
            ExportResult(
                status="exported",
                job=job.id,
                attempt=job.attempt,
                counts=counts,
                s3_key=published[0],
                bytes=published[1],
                score_moves_counted=self._score_changes is not None and self._store.tracks_changes,
            )
        )

    def _delete_chunks(self, ranges: tuple[KeyRange, ...]) -> None:
        for key_range in ranges:
            for chunk in key_range.chunks:
                self._sink.delete_staged(chunk)

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

    def _write_page(self, writer: DayWriter, batch: list[ScoreRecord], *, sent: _Sent) -> None:
        """Upsert a page; count and publish the score moves of at least the configured step."""
        changes = writer.write(batch)
        rule = self._score_changes
        if rule is None or not changes:
            return
        moved = sent.moves.add(changes, rule.min_step)
        if moved:
            counts = rule.publisher.publish(moved)
            sent.events.sent += counts.sent
            sent.events.failed += counts.failed

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


@dataclass
class _Sent:
    """What a day's writes have sent and seen so far (kept when key ranges give way to the cursor,
    since those events are out)."""

    events: PublishCounts = field(default_factory=PublishCounts)
    moves: ScoreMoves = field(default_factory=ScoreMoves)
    abandoned: str | None = None  # why key ranges gave way to the in-order fetch

    def into(self, result: ExportResult) -> ExportResult:
        return replace(
            result,
            score_change_events=self.events.sent,
            score_change_events_failed=self.events.failed,
            key_ranges_abandoned=self.abandoned,
        )


#: What SendGrid may answer to a range's request alone (an ``after_key`` it did not hand out, an
#: answer that does not parse): the in-order fetch decides, and a real fault shows there too.
RANGE_REFUSALS = (SeqBadRequestError, SeqNotFoundError, SeqProtocolError)


def _restarted(state: Checkpoint) -> Checkpoint:
    """The day from its start in order, at the same ``exported_at``, keeping the score moves
    earlier invocations saw (the in-order fetch cannot see them again: the table has the day)."""
    counts = state.counts
    moves = Counters(score_drops=counts.score_drops, score_rises=counts.score_rises, movers=counts.movers)
    return Checkpoint(after_key="", next_page=1, exported_at=state.exported_at, counts=moves)


def _carried(job: Job) -> Counters:
    return Counters() if job.checkpoint is None else job.checkpoint.counts


def _written(writer: DayWriter, moves: ScoreMoves) -> Counters:
    """This invocation's DynamoDB writes and the score moves they saw, to add to the checkpoint's."""
    written = Counters(latest_written=writer.counts.written, latest_kept_newer=writer.counts.kept_newer)
    return written + moves.counters()
