"""SQS adapter: the job queue. Delayed re-runs of a day (202 answers), continuations, backfill
fan-out and the parent account's day, and the explicit give-up to the dead-letter queue.

A 202 can last hours, far longer than a Lambda should wait, so a not-ready day becomes a
message with ``DelaySeconds`` that the same function consumes later. The delay doubles per
attempt from ``first_delay`` and is capped at SQS's 900-second maximum (``backoff.Backoff``,
without jitter: the 202 budget is a sum of exact delays, ``NotReadyPolicy.longest_wait_seconds``). Giving up sends the
message to the dead-letter queue directly, so the operator sees it at once (with the reason)
rather than after ``maxReceiveCount`` redeliveries that would only ask SendGrid again.

Retries: botocore's standard mode (``config.aws_client_config``) is the only retry layer for SQS;
a refused entry of a batch send fails the call with the days it names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from seq_export.backoff import Backoff
from seq_export.config import SQS_MAX_DELAY_SECONDS
from seq_export.errors import StorageError, describe_aws_error
from seq_export.job_message import Job

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SEND_BATCH_LIMIT = 10  # SendMessageBatch's limit


class JobQueue:
    def __init__(self, client: SQSClient, queue_url: str, dead_letter_queue_url: str, *, first_delay: int) -> None:
        self._client = client
        self._queue_url = queue_url
        self._dead_letter_queue_url = dead_letter_queue_url
        self._delays = Backoff.exact(first_delay, SQS_MAX_DELAY_SECONDS)

    def delay_for(self, attempt: int) -> int:
        """Delay before try number ``attempt`` (2, 3, ...): first_delay, doubled each time, capped."""
        if attempt <= 1:
            return 0
        return int(self._delays.pause(attempt - 1))

    def schedule(self, message: Job) -> int:
        delay = self.delay_for(message.attempt)
        self._send(self._queue_url, message, delay)
        return delay

    def continue_later(self, message: Job) -> None:
        """Hand a day cut short by the time limit to a fresh invocation, at once."""
        self._send(self._queue_url, message, 0)

    def give_up(self, message: Job) -> None:
        self._send(self._dead_letter_queue_url, message, 0)

    def enqueue(self, messages: Sequence[Job]) -> None:
        """Send many messages (one per day of a backfill), ten per call, each with no delay."""
        for start in range(0, len(messages), SEND_BATCH_LIMIT):
            batch = messages[start : start + SEND_BATCH_LIMIT]
            try:
                answer = self._client.send_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[{"Id": str(i), "MessageBody": m.to_json()} for i, m in enumerate(batch)],
                )
            except (ClientError, BotoCoreError) as exc:
                raise StorageError(
                    f"SQS SendMessageBatch to {self._queue_url} failed: {describe_aws_error(exc)}"
                ) from None
            failed = answer.get("Failed", [])
            if failed:
                days = ", ".join(batch[int(f["Id"])].date for f in failed)
                reason = failed[0].get("Message", failed[0].get("Code"))
                raise StorageError(f"SQS refused messages for {days}: {reason}")

    def _send(self, queue_url: str, message: Job, delay: int) -> None:
        try:
            self._client.send_message(QueueUrl=queue_url, MessageBody=message.to_json(), DelaySeconds=delay)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(
                f"SQS SendMessage to {queue_url} for {message.date} failed: {describe_aws_error(exc)}"
            ) from None
