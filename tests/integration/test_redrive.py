"""The README's dead-letter runbook: fix the cause, move the messages back, the day exports.

`aws sqs start-message-move-task` moves bodies unchanged; moto has no move task, so the tests
move them the same way (``local.lambda_runtime.move_messages``).
"""

from __future__ import annotations

import json

import pytest

from local.lambda_runtime import move_messages
from local.seq_simulator import Fault, Scenario
from tests.support import Stack, days_ago

pytestmark = pytest.mark.integration


def redrive(stack: Stack) -> list[str]:
    return move_messages(stack.sqs, stack.resources.dlq_url, stack.resources.queue_url)


def test_a_day_given_up_after_202s_exports_when_its_message_is_moved_back(stack: Stack) -> None:
    day = days_ago(1)
    stack.configure(NOT_READY_DELAY_SECONDS="0", MAX_NOT_READY_ATTEMPTS="2", EXPORT_ACCOUNT_SCORES="false")
    stack.simulator.reset(Scenario(subusers=1_200, not_ready=2))  # SendGrid is ready from the third ask
    assert stack.invoke({"date": day})["status"] == "not_ready"
    assert stack.deliver(wait_seconds=2) == {"batchItemFailures": []}  # attempt 2: 202, gives up
    assert stack.object_keys() == []

    moved = redrive(stack)
    response = stack.deliver(wait_seconds=2)

    assert len(moved) == 1
    assert response == {"batchItemFailures": []}
    assert len(stack.lines(day)) == 1_200
    assert stack.metrics["GaveUp"] == 1
    assert stack.metrics["RecordsExported"] == 1_200


def test_a_moved_back_give_up_gets_the_full_budget_of_202_attempts(stack: Stack) -> None:
    day = days_ago(1)
    stack.configure(NOT_READY_DELAY_SECONDS="0", MAX_NOT_READY_ATTEMPTS="2", EXPORT_ACCOUNT_SCORES="false")
    stack.simulator.reset(Scenario(subusers=10, not_ready=100))
    stack.invoke({"date": day})
    stack.deliver(wait_seconds=2)  # gives up

    redrive(stack)
    first = stack.deliver(wait_seconds=2)  # the redriven job, attempt 1: 202, re-scheduled
    second = stack.deliver(wait_seconds=2)  # attempt 2: 202, gives up again

    assert (first, second) == ({"batchItemFailures": []}, {"batchItemFailures": []})
    assert [r["status"] for r in stack.simulator.requests] == [202] * 4
    assert stack.metrics["GaveUp"] == 2
    assert [body["attempt"] for body in stack.dlq_bodies()] == [1]


def test_a_moved_back_message_delivered_twice_still_exports_once(stack: Stack) -> None:
    day = days_ago(1)
    stack.configure(NOT_READY_DELAY_SECONDS="0", MAX_NOT_READY_ATTEMPTS="1", EXPORT_ACCOUNT_SCORES="false")
    stack.simulator.reset(Scenario(subusers=30, not_ready=1))
    assert stack.invoke({"date": day})["status"] == "gave_up"
    (body,) = redrive(stack)
    stack.sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=body)  # SQS delivers it twice

    while stack.deliver(wait_seconds=1) is not None:
        pass

    asked = [r for r in stack.simulator.requests if r["status"] == 200]
    assert len(asked) == 1  # one export; the copy was answered from the idempotency record
    assert len(stack.lines(day)) == 30


def test_a_job_dead_lettered_after_failed_receives_exports_when_moved_back(stack: Stack) -> None:
    day = days_ago(1)
    stack.configure(EXPORT_ACCOUNT_SCORES="false")
    # every receive fails: five answers of 500 per try of the page, three receives
    stack.simulator.reset(Scenario(subusers=50, faults=[Fault(page=1, status=500, times=15)]))
    stack.sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=json.dumps({"date": day, "attempt": 1}))
    for _ in range(3):
        response = stack.deliver(wait_seconds=1, retry_failed_at_once=True)
        assert response is not None
        assert len(response["batchItemFailures"]) == 1
    assert stack.deliver(wait_seconds=1) is None  # SQS moved it to the dead-letter queue

    moved = redrive(stack)
    response = stack.deliver(wait_seconds=1)

    assert [json.loads(body) for body in moved] == [{"date": day, "attempt": 1}]
    assert response == {"batchItemFailures": []}
    assert len(stack.lines(day)) == 50
    assert stack.metrics["ExportFailed"] == 3
