"""What Lambda does around the function, played locally: the context object and the SQS event
source. One of each, used by ``make run``, the CLI's ``--local``, the tests and the benchmark;
``deliver_until`` is the one delivery loop, each caller giving its own stop condition.

moto stores queues but does not run event source mappings usefully (PLATFORM_NOTES), so this
does what the mapping does: receive (a long poll, so a delayed message is taken as soon as it is
visible), invoke the handler with an SQS event, and delete what succeeded. Records the handler
reports in ``batchItemFailures`` stay on the queue and come back after its visibility timeout,
and after ``maxReceiveCount`` receives SQS moves them to the dead-letter queue, as in AWS.

The timings are the deployed ones, from one constant: the fake context counts down from the
template's function ``Timeout`` (``FUNCTION_TIMEOUT_SECONDS``) and the local retry queue hides a
received message for six of them (``QUEUE_VISIBILITY_TIMEOUT_SECONDS``, the template's
``VisibilityTimeout``). Powertools' in-progress record of an invocation lasts at most its
remaining time, so a message whose handler died holding it returns only after the record has
expired, and its next delivery runs the job instead of failing as already in progress.

A Ctrl-C (``KeyboardInterrupt``) while the handler runs is not a failure: the job worker drops
its in-progress record (``jobs.Interrupted``), and the event source puts a copy of each received
message back on the queue at once and deletes the original (so an interrupt does not count
towards ``maxReceiveCount``), then lets the interrupt go on: a later delivery exports the day.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

Invoke = Callable[[dict[str, Any]], Mapping[str, Any]]
#: SQS's longest long poll.
LONG_POLL_SECONDS = 20
#: The deployed function's ``Timeout`` (template.yaml): what the fake context counts down from.
FUNCTION_TIMEOUT_SECONDS = 300
#: The local retry queue's visibility timeout: six function timeouts, as the template's
#: ``VisibilityTimeout`` (so an in-progress record has always expired when its message returns).
QUEUE_VISIBILITY_TIMEOUT_SECONDS = 6 * FUNCTION_TIMEOUT_SECONDS
#: How ``deliver_until`` ended: the caller's condition held (``stopped``), a receive found nothing
#: and the caller called that the end (``idle``), or its time ran out (``timeout``).
Ended = Literal["stopped", "idle", "timeout"]


@dataclass
class FakeLambdaContext:
    """The attributes Powertools reads from Lambda's context object; the remaining time counts
    down from ``timeout_seconds`` like the real one."""

    function_name: str = "seq-export-local"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:seq-export-local"
    aws_request_id: str = field(default_factory=lambda: f"local-{uuid.uuid4()}")
    timeout_seconds: float = FUNCTION_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source builds from received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {k: str(v) for k, v in m.get("Attributes", {}).items()},
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


@dataclass(frozen=True)
class Delivery:
    """One batch delivered: the messages received and the handler's answer."""

    messages: list[dict[str, Any]]
    response: dict[str, Any]

    @property
    def failed(self) -> int:
        """Records the handler reported in ``batchItemFailures`` (they stay on the queue)."""
        return len(self.response.get("batchItemFailures", []))


class SqsEventSource:
    """The event source mapping of one queue, one batch at a time."""

    def __init__(self, sqs: SQSClient, queue_url: str, *, batch_size: int = 10) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._batch_size = batch_size
        self._arn: str | None = None

    @property
    def queue_arn(self) -> str:
        if self._arn is None:
            attributes = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])
            self._arn = attributes["Attributes"]["QueueArn"]
        return self._arn

    def event_for(self, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The SQS event of received messages (tests hand the same batch to the handler twice)."""
        return sqs_event(messages, self.queue_arn, self._sqs.meta.region_name)

    def receive(self, *, wait_seconds: int = LONG_POLL_SECONDS) -> list[dict[str, Any]]:
        answer = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
        )
        return [dict(message) for message in answer.get("Messages", [])]

    def deliver_once(
        self, invoke: Invoke, *, wait_seconds: int = LONG_POLL_SECONDS, retry_failed_at_once: bool = False
    ) -> dict[str, Any] | None:
        """Receive, invoke, delete what succeeded. Returns the handler's answer, or None when no
        message became visible within ``wait_seconds``. Failed records come back after the
        queue's visibility timeout, or at once with ``retry_failed_at_once`` (each receive still
        counts towards ``maxReceiveCount``, so a test reaches the dead-letter queue without waiting)."""
        delivery = self.deliver(invoke, wait_seconds=wait_seconds, retry_failed_at_once=retry_failed_at_once)
        return None if delivery is None else delivery.response

    def deliver(
        self, invoke: Invoke, *, wait_seconds: int = LONG_POLL_SECONDS, retry_failed_at_once: bool = False
    ) -> Delivery | None:
        """As ``deliver_once``, returning the messages delivered with the handler's answer."""
        messages = self.receive(wait_seconds=wait_seconds)
        if not messages:
            return None
        try:
            response = dict(invoke(self.event_for(messages)))
        except KeyboardInterrupt:
            self.put_back(messages)
            raise
        failed = {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
        for message in messages:
            handle = message["ReceiptHandle"]
            if message["MessageId"] not in failed:
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=handle)
            elif retry_failed_at_once:
                self._sqs.change_message_visibility(QueueUrl=self._queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
        return Delivery(messages, response)

    def put_back(self, messages: Sequence[Mapping[str, Any]]) -> None:
        """Return received messages to the queue at once, each as a copy (sent first, so none is
        ever lost) with a fresh receive count, the received one deleted."""
        for message in messages:
            self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=message["Body"])
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

    def waiting(self) -> dict[str, int]:
        """Messages on the queue: ``visible``, ``delayed`` and ``in_flight`` (received, not deleted)."""
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesDelayed",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return {
            "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
            "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
            "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        }

    def is_empty(self) -> bool:
        return not any(self.waiting().values())


def deliver_until(
    source: SqsEventSource,
    invoke: Invoke,
    *,
    stop: Callable[[], bool] = lambda: False,
    on_delivery: Callable[[Delivery], bool | None] = lambda _delivery: None,
    idle: Callable[[], bool] = lambda: True,
    wait_seconds: int | Callable[[], int] = LONG_POLL_SECONDS,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    retry_failed_at_once: bool = False,
) -> Ended:
    """Deliver ``source``'s queue to ``invoke`` as Lambda's SQS event source mapping would, batch
    after batch (receive, invoke, delete what succeeded), until a condition of the caller's
    holds: ``stop()`` before each receive; ``on_delivery(delivery)`` after each batch (True
    stops: it is also where a caller follows the deliveries); ``idle()`` after a receive that
    found nothing within its wait (by default nothing visible is the end; False receives again).
    Each receive long-polls ``wait_seconds`` (or what it returns, asked before each receive),
    within the ``timeout`` on ``clock`` when there is one; failed records return as
    ``SqsEventSource.deliver`` says."""
    deadline = None if timeout is None else clock() + timeout
    while True:
        if stop():
            return "stopped"
        wait = wait_seconds() if callable(wait_seconds) else wait_seconds
        if deadline is not None:
            remaining = deadline - clock()
            if remaining <= 0:
                return "timeout"
            wait = min(wait, math.ceil(remaining))
        delivery = source.deliver(invoke, wait_seconds=wait, retry_failed_at_once=retry_failed_at_once)
        if delivery is None:
            if idle():
                return "idle"
        elif on_delivery(delivery):
            return "stopped"


def move_messages(sqs: SQSClient, source_url: str, destination_url: str) -> list[str]:
    """Move every message from one queue to another with its body unchanged, as
    ``aws sqs start-message-move-task`` does for a dead-letter queue (moto has no move task).
    Returns the bodies moved."""
    moved: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=source_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return moved
        for message in messages:
            sqs.send_message(QueueUrl=destination_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=source_url, ReceiptHandle=message["ReceiptHandle"])
            moved.append(message["Body"])
