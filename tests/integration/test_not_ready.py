"""202 answers: delayed re-schedule through SQS, completion from the SQS event, give-up."""

from __future__ import annotations

import io
import json

import pytest

from local.seq_simulator import Scenario
from seq_export.layout import DEFAULT_SOURCE
from tests.support import Stack, days_ago
from tests.support.builders import day_metrics

pytestmark = pytest.mark.integration


def test_202_schedules_a_delayed_retry_and_the_sqs_event_completes_the_day(stack: Stack) -> None:
    day = days_ago(1)
    stack.simulator.reset(Scenario(subusers=1_500, not_ready=1))

    first = stack.invoke({"date": day})

    assert first["status"] == "not_ready"
    assert (first["source"], first["kind"], first["date"]) == (DEFAULT_SOURCE, "subusers", day)
    assert first["next_attempt"] == 2
    assert first["next_attempt_delay_seconds"] == 1
    assert stack.queue_counts() == {"visible": 0, "delayed": 1}
    assert stack.object_keys() == []
    assert dict(stack.metrics) == {"NotReadyRescheduled": 1}  # nothing exported, nothing given up

    response = stack.deliver(wait_seconds=10)  # long poll: returns when the delay has passed

    assert response == {"batchItemFailures": []}
    assert len(stack.lines(day)) == 1_500
    assert stack.queue_counts() == {"visible": 0, "delayed": 0}
    assert [r["status"] for r in stack.simulator.requests] == [202, 200, 200]
    exported = day_metrics(records=1_500, pages=2, ineligible=1_500 // 7, NotReadyRescheduled=1)
    assert dict(stack.metrics) == exported
    assert dict(stack.source_metrics(DEFAULT_SOURCE)) == {**exported, **stack.band_counts(day)}


def test_the_retry_message_carries_source_kind_date_and_next_attempt(stack: Stack) -> None:
    day = days_ago(1)
    stack.configure(NOT_READY_DELAY_SECONDS="0")
    stack.simulator.reset(Scenario(subusers=10, not_ready=5))

    summary = stack.invoke({"date": day})

    messages = stack.sqs.receive_message(QueueUrl=stack.resources.queue_url, WaitTimeSeconds=1)["Messages"]
    assert len(summary["run"]) == 16  # a direct export's own run, which its re-schedules carry
    assert [m["Body"] for m in messages] == [
        json.dumps(
            {
                "source": DEFAULT_SOURCE,
                "kind": "subusers",
                "date": day,
                "attempt": 2,
                "reason": "not_ready",
                "run": summary["run"],
            }
        )
    ]


def test_202_without_a_body_is_still_not_ready(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=10, not_ready=1, not_ready_body=False))

    assert stack.invoke({"date": days_ago(1)})["status"] == "not_ready"
    assert dict(stack.metrics) == {"NotReadyRescheduled": 1}


def test_gives_up_after_the_limit_into_the_dead_letter_queue(stack: Stack, log_output: io.StringIO) -> None:
    day = days_ago(1)
    stack.configure(NOT_READY_DELAY_SECONDS="0", MAX_NOT_READY_ATTEMPTS="3")
    stack.simulator.reset(Scenario(subusers=10, not_ready=100))

    first = stack.invoke({"date": day})
    assert first["status"] == "not_ready"
    assert stack.deliver(wait_seconds=5) == {"batchItemFailures": []}  # attempt 2: 202 again
    assert stack.deliver(wait_seconds=5) == {"batchItemFailures": []}  # attempt 3: gives up

    assert stack.queue_counts() == {"visible": 0, "delayed": 0}
    (given_up,) = stack.dlq_bodies()
    # a new job of its own (attempt 1, a fresh run), so that moved back it runs the day again;
    # it names the run it ends, so whoever follows that run knows its dead letter
    assert given_up == {
        "source": DEFAULT_SOURCE,
        "kind": "subusers",
        "date": day,
        "attempt": 1,
        "reason": "gave_up_not_ready",
        "run": given_up["run"],
        "gave_up_run": first["run"],
    }
    assert len(given_up["run"]) == 16
    assert given_up["run"] != first["run"]
    assert stack.object_keys() == []
    assert [r["status"] for r in stack.simulator.requests] == [202, 202, 202]
    assert stack.metrics["GaveUp"] == 1
    assert stack.metrics["NotReadyRescheduled"] == 2
    assert dict(stack.metrics) == {"NotReadyRescheduled": 2, "GaveUp": 1}  # and no export counted
    gave_up = [json.loads(line) for line in log_output.getvalue().splitlines() if "Gave up" in line]
    assert len(gave_up) == 1
    assert gave_up[0]["level"] == "ERROR"
    assert (gave_up[0]["source"], gave_up[0]["date"]) == (DEFAULT_SOURCE, day)


def test_a_direct_run_at_the_limit_gives_up_at_once(stack: Stack) -> None:
    day = days_ago(1)
    stack.configure(MAX_NOT_READY_ATTEMPTS="1")
    stack.simulator.reset(Scenario(subusers=10, not_ready=100))

    summary = stack.invoke({"date": day})

    assert summary["status"] == "gave_up"
    assert stack.queue_counts() == {"visible": 0, "delayed": 0}
    assert [(b["source"], b["kind"], b["date"], b["attempt"], b["reason"]) for b in stack.dlq_bodies()] == [
        (DEFAULT_SOURCE, "subusers", day, 1, "gave_up_not_ready")
    ]
    assert dict(stack.metrics) == {"GaveUp": 1}


def test_three_answers_of_202_then_200_give_exactly_one_complete_object(stack: Stack) -> None:
    day = days_ago(1)
    stack.configure(NOT_READY_DELAY_SECONDS="0", MAX_NOT_READY_ATTEMPTS="5")
    stack.simulator.reset(Scenario(subusers=2_500, not_ready=3))

    assert stack.invoke({"date": day})["status"] == "not_ready"
    deliveries = 0
    while stack.deliver(wait_seconds=2) is not None:
        deliveries += 1

    assert deliveries == 3
    assert [r["status"] for r in stack.simulator.requests] == [202, 202, 202, 200, 200, 200]
    assert stack.data_keys() == [stack.key(day)]
    lines = stack.lines(day)
    assert [line["user_id"] for line in lines] == [str(100_001 + i) for i in range(2_500)]
    assert stack.dlq_bodies() == []
    exported = day_metrics(records=2_500, pages=3, ineligible=2_500 // 7, NotReadyRescheduled=3)
    assert dict(stack.metrics) == exported
    assert dict(stack.source_metrics(DEFAULT_SOURCE)) == {**exported, **stack.band_counts(day)}
