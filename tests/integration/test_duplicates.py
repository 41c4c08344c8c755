"""At-least-once delivery: duplicates export once, and concurrent runs of a day converge.

Which mechanism holds where:
* SQS retry messages are handled once per (source, kind, date, attempt) through Powertools Idempotency
  (DynamoDB table), so a duplicate delivery neither exports again nor starts a second chain
  of 202 re-schedules;
* direct and scheduled invocations are *naturally* idempotent: the S3 key is a function of the
  day and is replaced whole, and DynamoDB writes carry the day's values guarded by date, so two
  runs at once end in the same single object and the same items.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest

from local.seq_simulator import Fault, Scenario, expected_records
from seq_export.layout import DEFAULT_SOURCE
from seq_export.wiring import Dependencies, build_dependencies
from tests.support import Stack, days_ago, job
from tests.support.builders import day_metrics
from tests.support.stack import at_once

pytestmark = pytest.mark.integration


def send(stack: Stack, body: dict[str, Any], copies: int = 1) -> None:
    for _ in range(copies):
        stack.sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=json.dumps(body))


def drain(stack: Stack) -> list[dict[str, Any]]:
    responses = []
    while (response := stack.deliver(wait_seconds=1)) is not None:
        responses.append(response)
    return responses


def test_the_same_retry_message_delivered_twice_exports_once(stack: Stack) -> None:
    day = days_ago(1)
    send(stack, job(day, attempt=2).to_dict(), copies=2)

    responses = drain(stack)

    assert all(r == {"batchItemFailures": []} for r in responses)
    assert [r["params"].get("after_key") for r in stack.simulator.requests] == [None, "101000", "102000"]
    assert stack.data_keys() == [stack.key(day)]
    assert len(stack.lines(day)) == 2_500
    exported = day_metrics(records=2_500, pages=3, ineligible=2_500 // 7)
    assert dict(stack.metrics) == exported  # counted once: the duplicate is answered from the idempotency record
    assert dict(stack.source_metrics(DEFAULT_SOURCE)) == {**exported, **stack.band_counts(day)}


def test_a_duplicated_202_message_does_not_start_a_second_chain(stack: Stack) -> None:
    day = days_ago(1)
    stack.configure(NOT_READY_DELAY_SECONDS="0")
    stack.simulator.reset(Scenario(subusers=10, not_ready=1_000))
    send(stack, job(day, attempt=2).to_dict(), copies=2)

    first = stack.sqs.receive_message(QueueUrl=stack.resources.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert len(first["Messages"]) == 2
    # the event source batches both copies into one event
    response = stack.invoke(stack.queue.event_for(first["Messages"]))
    for message in first["Messages"]:
        stack.sqs.delete_message(QueueUrl=stack.resources.queue_url, ReceiptHandle=message["ReceiptHandle"])

    assert response == {"batchItemFailures": []}
    assert [r["status"] for r in stack.simulator.requests] == [202]  # asked SendGrid once
    queued = stack.sqs.receive_message(QueueUrl=stack.resources.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert [json.loads(m["Body"]) for m in queued["Messages"]] == [  # one chain
        {"source": DEFAULT_SOURCE, "kind": "subusers", "date": day, "attempt": 3, "reason": "not_ready"}
    ]
    assert dict(stack.metrics) == {"NotReadyRescheduled": 1}


def test_a_message_whose_export_failed_runs_again_when_redelivered(stack: Stack) -> None:
    day = days_ago(1)
    stack.simulator.reset(Scenario(subusers=1_500, faults=[Fault(page=1, status=502, times=5)]))
    send(stack, job(day).to_dict())

    failed = stack.deliver(wait_seconds=1)
    assert failed is not None
    assert len(failed["batchItemFailures"]) == 1
    send(stack, job(day).to_dict())
    assert stack.deliver(wait_seconds=1) == {"batchItemFailures": []}

    assert len(stack.lines(day)) == 1_500
    assert stack.metrics["ExportFailed"] == 1
    assert stack.metrics["RecordsExported"] == 1_500


def test_two_exports_of_the_same_day_at_once_end_in_one_identical_object(stack: Stack) -> None:
    day = days_ago(1)
    runs = [build_dependencies(stack.settings, sleep=stack.sleeps.append) for _ in range(2)]

    def export(run: Dependencies) -> dict[str, Any]:
        return run.exports.of(DEFAULT_SOURCE).subusers.run(job(day, attempt=1)).summary()

    results = at_once([partial(export, run) for run in runs])

    assert [r["records"] for r in results] == [2_500, 2_500]
    assert stack.data_keys() == [stack.key(day)]
    lines = stack.lines(day)
    assert [line["user_id"] for line in lines] == [
        r["user_id"] for r in expected_records(day, stack.simulator.scenario)
    ]
    assert len({line["exported_at"] for line in lines}) == 1  # one run's object, whole, not a mix
    written = {r["latest_written"] for r in results}
    assert max(written) == sum(1 for r in expected_records(day, stack.simulator.scenario) if "score" in r)


def test_a_forced_backfill_exports_again_although_the_day_ran_minutes_ago(stack: Stack) -> None:
    day = days_ago(2)
    stack.configure(EXPORT_ACCOUNT_SCORES="false")
    stack.simulator.reset(Scenario(subusers=30))
    stack.invoke({"from": day, "to": day})
    drain(stack)
    first = stack.lines(day)[0]["exported_at"]

    again = stack.invoke({"from": day, "to": day, "force": True})
    drain(stack)

    assert again["enqueued"] == [{"source": DEFAULT_SOURCE, "kind": "subusers", "date": day}]
    assert stack.lines(day)[0]["exported_at"] != first  # not answered from the idempotency record
    assert stack.metrics["BackfillDaysEnqueued"] == 2
    assert stack.metrics["RecordsExported"] == 2 * 30
