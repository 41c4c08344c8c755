"""The one delivery loop (``local_lambda.deliver_until``) that `make run`, the CLI's `--local --wait`
and the tests play Lambda's SQS event source with, on moto's queue: it delivers until its
caller's condition holds, and no longer than its timeout."""

from __future__ import annotations

import json
from typing import Any

import pytest

from seq_export_cli.local_lambda import Delivery, SqsEventSource, deliver_until
from tests.support import Stack

pytestmark = pytest.mark.integration


def queued(stack: Stack, count: int) -> SqsEventSource:
    """The retry queue with ``count`` messages ``{"n": 0}``, ``{"n": 1}``..., one per batch."""
    for n in range(count):
        stack.sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=json.dumps({"n": n}))
    return SqsEventSource(stack.sqs, stack.resources.queue_url, batch_size=1)


def handled(bodies: list[int]) -> Any:
    """A handler that notes each record's ``n`` and succeeds."""

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        bodies.extend(json.loads(record["body"])["n"] for record in event["Records"])
        return {"batchItemFailures": []}

    return invoke


def test_it_delivers_every_message_then_ends_idle_when_a_receive_finds_nothing(stack: Stack) -> None:
    source = queued(stack, 3)
    bodies: list[int] = []
    deliveries: list[Delivery] = []

    ended = deliver_until(source, handled(bodies), on_delivery=deliveries.append, wait_seconds=1)

    assert ended == "idle"
    assert sorted(bodies) == [0, 1, 2]
    assert [len(delivery.messages) for delivery in deliveries] == [1, 1, 1]
    assert [delivery.failed for delivery in deliveries] == [0, 0, 0]
    assert source.is_empty()  # each delivered message deleted


def test_a_delivery_that_says_stop_ends_the_loop_and_leaves_the_rest_on_the_queue(stack: Stack) -> None:
    source = queued(stack, 3)
    bodies: list[int] = []

    ended = deliver_until(source, handled(bodies), on_delivery=lambda _delivery: True, wait_seconds=1)

    assert ended == "stopped"
    assert len(bodies) == 1
    assert stack.queue_counts()["visible"] == 2


def test_the_stop_condition_is_asked_before_each_receive(stack: Stack) -> None:
    source = queued(stack, 3)
    bodies: list[int] = []
    asked: list[int] = []

    def stop() -> bool:
        asked.append(len(bodies))
        return len(bodies) == 2

    ended = deliver_until(source, handled(bodies), stop=stop, wait_seconds=1)

    assert ended == "stopped"
    assert asked == [0, 1, 2]
    assert stack.queue_counts()["visible"] == 1


def test_it_ends_at_its_timeout_while_messages_still_wait(stack: Stack) -> None:
    source = queued(stack, 3)
    bodies: list[int] = []
    now = [0.0]

    def slow(event: dict[str, Any]) -> dict[str, Any]:
        now[0] += 10  # each delivery takes ten seconds of the loop's clock
        return dict(handled(bodies)(event))

    ended = deliver_until(source, slow, timeout=15, clock=lambda: now[0], wait_seconds=1)

    assert ended == "timeout"
    assert len(bodies) == 2  # at 0 s and at 10 s; at 20 s the time is up
    assert stack.queue_counts()["visible"] == 1


def test_a_failed_record_stays_on_the_queue_and_the_delivery_counts_it(stack: Stack) -> None:
    source = queued(stack, 1)
    deliveries: list[Delivery] = []

    def failing(event: dict[str, Any]) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record in event["Records"]]}

    ended = deliver_until(
        source, failing, on_delivery=deliveries.append, idle=lambda: True, wait_seconds=1, retry_failed_at_once=True
    )

    assert ended == "idle"  # the failed record returned at once, and was received again until SQS moved it
    assert deliveries[0].failed == 1
    assert all(delivery.failed == 1 for delivery in deliveries)
    assert len(deliveries) == 3  # maxReceiveCount receives, then the dead-letter queue holds it
    assert len(stack.dlq_bodies()) == 1
