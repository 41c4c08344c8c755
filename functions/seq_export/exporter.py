"""Export one day: fetch every page, then publish. No Lambda and no environment in here.

Pages are validated and streamed to a temporary file as they arrive, so memory holds one page
at a time whatever the subuser count; the S3 object is put only after the last page, so a run
that fails part-way publishes nothing. Each page's scored records go to DynamoDB as the page
arrives: those writes are idempotent and guarded by date, so a failed run leaves only true
scores behind and a re-run converges. A 202 becomes a delayed retry message, or, after
``max_not_ready_attempts``, a visible give-up.
"""

from __future__ import annotations

import io
import secrets
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Any, Literal, TypeVar

from seq_export.errors import ConfigError, ScoresNotReady, SeqProtocolError, StorageError
from seq_export.events_publisher import PublishCounts, ScoreChangePublisher
from seq_export.latest_store import DayWriter, LatestStore
from seq_export.models import ACCOUNT, SUBUSERS, Checkpoint, Page, RetryMessage, ScoreRecord, validate_record
from seq_export.observability import logger
from seq_export.retry_scheduler import RetryScheduler
from seq_export.s3_sink import MIN_PART_BYTES, S3Sink
from seq_export.seq_client import SeqClient

Status = Literal["exported", "continued", "not_ready", "gave_up"]
#: Stop fetching when less than this is left of the invocation: enough for one more page with
#: its retries, the checkpoint upload and the continuation message.
CONTINUE_RESERVE_SECONDS = 90.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ExportResult:
    status: Status
    date: str
    attempt: int
    pages: int = 0
    records: int = 0
    ineligible: int = 0
    latest_written: int = 0
    latest_kept_newer: int = 0
    s3_key: str | None = None
    bytes: int = 0
    next_attempt: int | None = None
    next_attempt_delay_seconds: int | None = None
    kind: str = SUBUSERS
    score_change_events: int = 0
    score_change_events_failed: int = 0

    def summary(self) -> dict[str, Any]:
        return asdict(self)


class Exporter:
    def __init__(
        self,
        client: SeqClient,
        sink: S3Sink,
        store: LatestStore,
        scheduler: RetryScheduler,
        *,
        max_not_ready_attempts: int,
        clock: Callable[[], datetime] = utc_now,
        spool_dir: str | None = None,
        reserve_seconds: float = CONTINUE_RESERVE_SECONDS,
        account_sink: S3Sink | None = None,
        publisher: ScoreChangePublisher | None = None,
        min_step: Decimal = Decimal(1),
    ) -> None:
        self._client = client
        self._sink = sink
        self._store = store
        self._scheduler = scheduler
        self._max_not_ready_attempts = max_not_ready_attempts
        self._clock = clock
        self._spool_dir = spool_dir
        self._reserve = reserve_seconds
        self._account_sink = account_sink
        self._publisher = publisher
        self._min_step = min_step

    def export_day(
        self,
        day: str,
        *,
        attempt: int = 1,
        checkpoint: Checkpoint | None = None,
        time_left: Callable[[], float] | None = None,
        run: str | None = None,
    ) -> ExportResult:
        """Export ``day`` (from ``checkpoint`` if given); ``time_left`` is seconds this run has."""
        logger.append_keys(date=day, attempt=attempt)
        try:
            try:
                result = self._export(day, attempt, checkpoint, time_left, run)
            except ScoresNotReady:
                return self._not_ready(day, attempt, SUBUSERS, run)
            except SeqProtocolError as exc:
                self._keep_aside(day, exc)
                raise
            logger.remove_keys(["page"])
            logger.info("Day exported" if result.status == "exported" else "Day continues", **result.summary())
            return result
        finally:
            logger.remove_keys(["date", "attempt", "page"])

    def _export(
        self,
        day: str,
        attempt: int,
        checkpoint: Checkpoint | None,
        time_left: Callable[[], float] | None,
        run: str | None,
    ) -> ExportResult:
        state = checkpoint or Checkpoint(after_key="", next_page=1, exported_at=self._timestamp())
        exported_at = state.exported_at
        pages, records, ineligible = state.pages, state.records, state.ineligible
        seen: set[str] = set()
        events = PublishCounts()
        with (
            tempfile.TemporaryFile(dir=self._spool_dir) as spool,
            self._store.open_day(day, exported_at) as writer,
            _Overlap() as overlap,
        ):
            if state.tail_key:
                self._sink.read_staged(state.tail_key, spool)
            for page in self._client.iter_pages(day, after_key=state.after_key or None, first_page=state.next_page):
                logger.append_keys(page=page.number)
                batch = self._validate(day, page)
                for record in batch:
                    if record.user_id in seen:
                        raise SeqProtocolError(
                            f"{day} page {page.number}: user_id {record.user_id} was already returned on an "
                            "earlier page; refusing to write it twice",
                            raw=page.raw,
                        )
                    seen.add(record.user_id)
                spool.write("".join(record.to_json_line(exported_at) for record in batch).encode())
                overlap.submit(lambda b: self._write_page(writer, b, events), batch)  # beside the next fetch
                pages += 1
                records += len(batch)
                page_ineligible = sum(1 for record in batch if not record.eligible)
                ineligible += page_ineligible
                logger.info("Page fetched", records=len(batch), ineligible=page_ineligible, total=records)
                if page.next_after_key is not None and time_left is not None and time_left() < self._reserve:
                    overlap.wait()
                    following = replace(
                        state,
                        after_key=page.next_after_key,
                        next_page=page.number + 1,
                        pages=pages,
                        records=records,
                        ineligible=ineligible,
                        latest_written=state.latest_written + writer.counts.written,
                        latest_kept_newer=state.latest_kept_newer + writer.counts.kept_newer,
                    )
                    return replace(
                        self._continue_later(day, attempt, spool, state, following, run=run),
                        score_change_events=events.sent,
                        score_change_events_failed=events.failed,
                    )
            overlap.wait()
            size = spool.tell()
            spool.seek(0)
            if state.upload_id is None:
                published = self._sink.publish(day, spool, size=size, records=records, exported_at=exported_at)
            else:
                parts = state.parts
                if size:
                    etag = self._sink.upload_part(day, state.upload_id, len(parts) + 1, spool, size)
                    parts = (*parts, (len(parts) + 1, etag))
                published = self._sink.complete_upload(day, state.upload_id, parts)
        if state.tail_key:
            self._sink.delete_staged(state.tail_key)
        return ExportResult(
            status="exported",
            date=day,
            attempt=attempt,
            pages=pages,
            records=records,
            ineligible=ineligible,
            latest_written=state.latest_written + writer.counts.written,
            latest_kept_newer=state.latest_kept_newer + writer.counts.kept_newer,
            s3_key=published.key,
            bytes=state.uploaded_bytes + size,
            score_change_events=events.sent,
            score_change_events_failed=events.failed,
        )

    def _write_page(self, writer: DayWriter, batch: list[ScoreRecord], events: PublishCounts) -> None:
        """Upsert a page; publish the score moves of at least the configured step."""
        changes = writer.write(batch)
        if self._publisher is None or not changes:
            return
        moved = [change for change in changes if abs(change.change) >= self._min_step]
        if moved:
            counts = self._publisher.publish(moved)
            events.sent += counts.sent
            events.failed += counts.failed

    def _validate(self, day: str, page: Page) -> list[ScoreRecord]:
        try:
            return [
                validate_record(raw, day=day, where=f"{day} page {page.number} record {index}")
                for index, raw in enumerate(page.records, start=1)
            ]
        except SeqProtocolError as exc:
            exc.raw = page.raw
            raise

    def _continue_later(
        self, day: str, attempt: int, spool: IO[bytes], state: Checkpoint, following: Checkpoint, *, run: str | None
    ) -> ExportResult:
        """Save the lines so far and hand the rest of the day to a fresh invocation.

        Order matters for redelivery: the new part or tail is written and the continuation sent
        before the previous tail is deleted, so a crash at any point leaves a message whose
        checkpoint still points at data that exists.
        """
        size = spool.tell()
        spool.seek(0)
        if size >= MIN_PART_BYTES:
            upload_id = state.upload_id or self._sink.start_upload(day)
            number = len(state.parts) + 1
            etag = self._sink.upload_part(day, upload_id, number, spool, size)
            following = replace(
                following,
                upload_id=upload_id,
                parts=(*state.parts, (number, etag)),
                uploaded_bytes=state.uploaded_bytes + size,
                tail_key=None,
            )
        else:
            following = replace(following, tail_key=self._sink.stage(day, spool, size) if size else None)
        self._scheduler.continue_later(
            RetryMessage(date=day, attempt=attempt, reason="continue", checkpoint=following, run=run)
        )
        if state.tail_key:
            self._sink.delete_staged(state.tail_key)
        return ExportResult(
            status="continued",
            date=day,
            attempt=attempt,
            pages=following.pages,
            records=following.records,
            ineligible=following.ineligible,
            latest_written=following.latest_written,
            latest_kept_newer=following.latest_kept_newer,
            bytes=following.uploaded_bytes,
        )

    def _timestamp(self) -> str:
        return self._clock().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def export_account_day(self, day: str, *, attempt: int = 1, run: str | None = None) -> ExportResult:
        """Export the parent account's own score of ``day`` beside the subusers' (no DynamoDB)."""
        if self._account_sink is None:
            raise ConfigError("account scores are not exported here (EXPORT_ACCOUNT_SCORES is false)")
        logger.append_keys(date=day, attempt=attempt, kind=ACCOUNT)
        try:
            try:
                page = self._client.account_scores(day)
                records = self._validate(day, page)
            except ScoresNotReady:
                return self._not_ready(day, attempt, ACCOUNT, run)
            except SeqProtocolError as exc:
                self._keep_aside(day, exc, self._account_sink)
                raise
            exported_at = self._timestamp()
            body = "".join(record.to_json_line(exported_at) for record in records).encode()
            published = self._account_sink.publish(
                day, io.BytesIO(body), size=len(body), records=len(records), exported_at=exported_at
            )
            result = ExportResult(
                status="exported",
                date=day,
                attempt=attempt,
                kind=ACCOUNT,
                pages=1,
                records=len(records),
                ineligible=sum(1 for record in records if not record.eligible),
                s3_key=published.key,
                bytes=len(body),
            )
            logger.info("Account scores exported", **result.summary())
            return result
        finally:
            logger.remove_keys(["date", "attempt", "kind"])

    def _keep_aside(self, day: str, error: SeqProtocolError, sink: S3Sink | None = None) -> None:
        """Save the offending answer so that nothing SendGrid sent is silently lost."""
        if not error.raw:
            return
        stamp = self._clock().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")  # sortable, unique enough
        try:
            key = (sink or self._sink).quarantine(day, f"{stamp}-{secrets.token_hex(4)}.body", error.raw)
        except StorageError as exc:
            logger.error("Could not keep the bad answer aside", problem=str(exc), excerpt=_excerpt(error.raw))
            return
        error.args = (f"{error.args[0]} [answer kept at {key}]",)
        logger.error("Bad answer kept aside", s3_key=key, size=len(error.raw), excerpt=_excerpt(error.raw))

    def _not_ready(self, day: str, attempt: int, kind: str, run: str | None) -> ExportResult:
        if attempt >= self._max_not_ready_attempts:
            self._scheduler.give_up(
                RetryMessage(date=day, attempt=attempt, reason="gave_up_not_ready", kind=kind, run=run)
            )
            logger.error(
                "Gave up: SendGrid still computing scores",
                limit=self._max_not_ready_attempts,
                action="message sent to the dead-letter queue",
            )
            return ExportResult(status="gave_up", date=day, attempt=attempt, kind=kind)
        message = RetryMessage(date=day, attempt=attempt + 1, kind=kind, run=run)
        delay = self._scheduler.schedule(message)
        logger.info("Scores not ready, re-scheduled", next_attempt=message.attempt, delay_seconds=delay)
        return ExportResult(
            status="not_ready",
            date=day,
            attempt=attempt,
            kind=kind,
            next_attempt=message.attempt,
            next_attempt_delay_seconds=delay,
        )


def _excerpt(raw: bytes, limit: int = 300) -> str:
    """The start of a body for a log line (SendGrid answers carry no credentials)."""
    return raw[:limit].decode("utf-8", errors="replace")


_T = TypeVar("_T")


class _Overlap:
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

    def __enter__(self) -> _Overlap:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.wait()
            elif self._pending is not None:
                self._pending.exception()  # let it finish; the day's own error is the one reported
        finally:
            self._pool.shutdown(wait=True)
