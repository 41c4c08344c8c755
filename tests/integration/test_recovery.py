"""Recovery paths an operator relies on.

* The dead-letter runbook (docs/operations.md): fix the cause, move the messages back, the day exports.
  `aws sqs start-message-move-task` moves bodies unchanged; moto has no move task, so the tests
  move them the same way (``seq_export_cli.local_lambda.move_messages``).
* API-key rotation: a warm function whose cached key was revoked reads the secret again.
* A continuation delivered twice (a crash between its work and its idempotency record) finds its
  day completed by its twin and finishes quietly.
"""

from __future__ import annotations

import io
import json

import pytest

from local.seq_simulator import Fault, Scenario
from local.stack import new_api_key
from seq_export.errors import SeqAuthError
from seq_export_cli.local_lambda import SqsEventSource, move_messages
from tests.support import Stack, days_ago, invoke_short

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


def test_a_warm_function_picks_up_a_rotated_key_at_the_first_refusal(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, log_output: io.StringIO
) -> None:
    stack.configure(EXPORT_ACCOUNT_SCORES="false")
    stack.simulator.reset(Scenario(subusers=30))
    old_key = stack.simulator.api_key
    assert stack.invoke({"date": days_ago(2)})["status"] == "exported"  # the key is now cached
    new_key = new_api_key()
    stack.session.client("secretsmanager").put_secret_value(
        SecretId=stack.resources.secret_id, SecretString=json.dumps({"api_key": new_key})
    )
    monkeypatch.setattr(stack.simulator, "api_key", new_key)  # the old key is revoked at SendGrid

    summary = stack.invoke({"date": days_ago(1)})

    assert summary["status"] == "exported"
    assert [r["status"] for r in stack.simulator.requests] == [200, 401, 200]
    logged = log_output.getvalue()
    assert "trying once with a fresh read of the secret" in logged
    assert old_key not in logged
    assert new_key not in logged


def test_a_key_revoked_without_rotation_fails_with_the_clear_message(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.configure(EXPORT_ACCOUNT_SCORES="false")
    stack.simulator.reset(Scenario(subusers=30))
    monkeypatch.setattr(stack.simulator, "api_key", new_api_key())  # SendGrid no longer knows ours

    with pytest.raises(SeqAuthError, match="401 Unauthorized"):
        stack.invoke({"date": days_ago(1)})

    assert [r["status"] for r in stack.simulator.requests] == [401]  # one fresh read, same key: no retry
    assert stack.metrics["ExportFailed"] == 1


def lose_idempotency_records(stack: Stack) -> None:
    """What a crash after the work and before Powertools saved its record leaves behind."""
    table = stack.session.resource("dynamodb").Table(stack.resources.idempotency_table)
    for item in table.scan()["Items"]:
        table.delete_item(Key={"id": item["id"]})


def final_continuation(stack: Stack, day: str, pages: int) -> dict[str, object]:
    """Start ``day`` with an invocation cut short after ``pages`` pages; the SQS event of the
    continuation that will complete it."""
    assert invoke_short(stack, {"date": day}, pages)["status"] == "continued"
    queue = SqsEventSource(stack.sqs, stack.resources.queue_url, batch_size=1)
    return queue.event_for(queue.receive(wait_seconds=1))


def test_a_continuation_delivered_again_after_completing_its_day_finishes_quietly(
    stack: Stack, log_output: io.StringIO
) -> None:
    # The staged-tail case. The multipart case takes the same path (S3 answers NoSuchUpload,
    # see tests/unit/test_s3_sink.py), but moto answers UploadPart on a completed upload with a
    # 500 instead of NoSuchUpload, so it cannot be played here.
    day = days_ago(1)
    subusers = 2_500
    stack.configure(EXPORT_ACCOUNT_SCORES="false")
    stack.simulator.reset(Scenario(subusers=subusers))
    event = final_continuation(stack, day, pages=2)
    assert stack.invoke(event) == {"batchItemFailures": []}  # completes the day
    lose_idempotency_records(stack)

    again = stack.invoke(event)  # SQS delivers the same continuation again

    assert again == {"batchItemFailures": []}  # no dead letter
    assert stack.metrics["DuplicateContinuations"] == 1
    assert stack.metrics["ExportFailed"] == 0
    assert stack.data_keys() == [stack.key(day)]
    assert len(stack.lines(day)) == subusers
    assert "Day already completed by a duplicate of this continuation" in log_output.getvalue()
