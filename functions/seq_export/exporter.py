"""Export one day: fetch every page, then publish. No Lambda and no environment in here.

Pages are validated and streamed to a temporary file as they arrive, so memory holds one page
at a time whatever the subuser count; the S3 object is put only after the last page, so a run
that fails part-way publishes nothing. Each page's scored records go to DynamoDB as the page
arrives: those writes are idempotent and guarded by date, so a failed run leaves only true
scores behind and a re-run converges. A 202 becomes a delayed retry message, or, after
``max_not_ready_attempts``, a visible give-up.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from seq_export.errors import ScoresNotReady, SeqProtocolError, StorageError
from seq_export.latest_store import LatestStore
from seq_export.models import RetryMessage, validate_record
from seq_export.observability import logger
from seq_export.retry_scheduler import RetryScheduler
from seq_export.s3_sink import S3Sink
from seq_export.seq_client import SeqClient

Status = Literal["exported", "not_ready", "gave_up"]


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
    ) -> None:
        self._client = client
        self._sink = sink
        self._store = store
        self._scheduler = scheduler
        self._max_not_ready_attempts = max_not_ready_attempts
        self._clock = clock
        self._spool_dir = spool_dir

    def export_day(self, day: str, *, attempt: int = 1) -> ExportResult:
        logger.append_keys(date=day, attempt=attempt)
        try:
            try:
                result = self._export(day, attempt)
            except ScoresNotReady:
                return self._not_ready(day, attempt)
            except SeqProtocolError as exc:
                self._keep_aside(day, exc)
                raise
            logger.remove_keys(["page"])
            logger.info("Day exported", **result.summary())
            return result
        finally:
            logger.remove_keys(["date", "attempt", "page"])

    def _export(self, day: str, attempt: int) -> ExportResult:
        exported_at = self._clock().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        pages = records = ineligible = 0
        seen: set[str] = set()
        with (
            tempfile.TemporaryFile(dir=self._spool_dir) as spool,
            self._store.open_day(day, exported_at) as writer,
        ):
            for page in self._client.iter_pages(day):
                logger.append_keys(page=page.number)
                try:
                    batch = [
                        validate_record(raw, day=day, where=f"{day} page {page.number} record {index}")
                        for index, raw in enumerate(page.records, start=1)
                    ]
                except SeqProtocolError as exc:
                    exc.raw = page.raw
                    raise
                for record in batch:
                    if record.user_id in seen:
                        raise SeqProtocolError(
                            f"{day} page {page.number}: user_id {record.user_id} was already returned on an "
                            "earlier page; refusing to write it twice",
                            raw=page.raw,
                        )
                    seen.add(record.user_id)
                spool.write("".join(record.to_json_line(exported_at) for record in batch).encode())
                writer.write(batch)
                pages += 1
                records += len(batch)
                page_ineligible = sum(1 for record in batch if not record.eligible)
                ineligible += page_ineligible
                logger.info("Page fetched", records=len(batch), ineligible=page_ineligible, total=records)
            size = spool.tell()
            spool.seek(0)
            published = self._sink.publish(day, spool, size=size, records=records, exported_at=exported_at)
        return ExportResult(
            status="exported",
            date=day,
            attempt=attempt,
            pages=pages,
            records=records,
            ineligible=ineligible,
            latest_written=writer.counts.written,
            latest_kept_newer=writer.counts.kept_newer,
            s3_key=published.key,
            bytes=size,
        )

    def _keep_aside(self, day: str, error: SeqProtocolError) -> None:
        """Save the offending answer so that nothing SendGrid sent is silently lost."""
        if not error.raw:
            return
        stamp = self._clock().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        try:
            key = self._sink.quarantine(day, f"{stamp}-{uuid.uuid4().hex[:8]}.body", error.raw)
        except StorageError as exc:
            logger.error("Could not keep the bad answer aside", problem=str(exc), excerpt=_excerpt(error.raw))
            return
        error.args = (f"{error.args[0]} [answer kept at {key}]",)
        logger.error("Bad answer kept aside", s3_key=key, size=len(error.raw), excerpt=_excerpt(error.raw))

    def _not_ready(self, day: str, attempt: int) -> ExportResult:
        if attempt >= self._max_not_ready_attempts:
            self._scheduler.give_up(RetryMessage(date=day, attempt=attempt, reason="gave_up_not_ready"))
            logger.error(
                "Gave up: SendGrid still computing scores",
                limit=self._max_not_ready_attempts,
                action="message sent to the dead-letter queue",
            )
            return ExportResult(status="gave_up", date=day, attempt=attempt)
        message = RetryMessage(date=day, attempt=attempt + 1)
        delay = self._scheduler.schedule(message)
        logger.info("Scores not ready, re-scheduled", next_attempt=message.attempt, delay_seconds=delay)
        return ExportResult(
            status="not_ready",
            date=day,
            attempt=attempt,
            next_attempt=message.attempt,
            next_attempt_delay_seconds=delay,
        )


def _excerpt(raw: bytes, limit: int = 300) -> str:
    """The start of a body for a log line (SendGrid answers carry no credentials)."""
    return raw[:limit].decode("utf-8", errors="replace")
