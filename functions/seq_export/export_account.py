"""Use case: export the parent account's own scores of a day, beside the subusers' day.

One answer of SendGrid's account endpoint, validated like a subusers' page and published as the
day's object under the account prefix; no DynamoDB (the latest-score table is per subuser). A
202 follows the same not-ready policy as the subusers' day, as its own queued job, so it never
holds up or fails the subusers' export.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime

from seq_export import record_codec
from seq_export.dates import iso_timestamp
from seq_export.errors import ScoresNotReady, SeqProtocolError
from seq_export.job_message import Counters, Job
from seq_export.models import ACCOUNT, validate_page
from seq_export.not_ready import NotReadyPolicy
from seq_export.observability import logger
from seq_export.results import ExportResult
from seq_export.s3_sink import S3Sink
from seq_export.seq_client import SeqClient


class AccountDayExport:
    def __init__(
        self,
        client: SeqClient,
        sink: S3Sink,
        not_ready: NotReadyPolicy,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._sink = sink
        self._not_ready = not_ready
        self._clock = clock

    def run(self, job: Job) -> ExportResult:
        day = job.date
        logger.append_keys(source=job.source, date=day, attempt=job.attempt, kind=ACCOUNT)
        try:
            try:
                records = validate_page(
                    self._client.account_scores(day), source=job.source, day=job.date, what=str(job.id)
                )
            except ScoresNotReady:
                return self._not_ready.handle(job)
            except SeqProtocolError as exc:
                self._sink.keep_aside(day, exc)
                raise
            exported_at = iso_timestamp(self._clock())
            body = record_codec.encode(records, exported_at)
            key = self._sink.publish(
                day, io.BytesIO(body), size=len(body), records=len(records), exported_at=exported_at
            )
            result = ExportResult(
                status="exported",
                job=job.id,
                attempt=job.attempt,
                counts=Counters(
                    pages=1, records=len(records), ineligible=sum(1 for record in records if not record.eligible)
                ),
                s3_key=key,
                bytes=len(body),
            )
            logger.info("Account scores exported", **result.summary())
            return result
        finally:
            logger.remove_keys(["source", "date", "attempt", "kind"])
