"""`SEQ Score Changed` events: from the upsert's old values, batched, to EventBridge (moto) and on to SQS."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from local.aws_fault_proxy import AwsFault, AwsFaultProxy
from local.seq_simulator import Scenario, expected_records
from tests.support import Stack, days_ago

pytestmark = pytest.mark.integration
BUS = "seq-scores"


@pytest.fixture
def events_queue(stack: Stack) -> str:
    """A bus with a rule sending every score change to an SQS queue the test reads; calls counted."""
    events = stack.session.client("events")
    events.create_event_bus(Name=BUS)
    queue_url = stack.sqs.create_queue(QueueName="score-changes")["QueueUrl"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["seq-export"], "detail-type": ["SEQ Score Changed"]}
    events.put_rule(Name="all-changes", EventBusName=BUS, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="all-changes", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": arn}])
    return queue_url


def received(stack: Stack, queue_url: str) -> list[dict[str, Any]]:
    details: list[dict[str, Any]] = []
    while True:
        answer = stack.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = answer.get("Messages", [])
        if not messages:
            return details
        for message in messages:
            details.append(json.loads(message["Body"])["detail"])
            stack.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def moves(old_day: str, new_day: str, scenario: Scenario, step: int = 1) -> dict[str, tuple[int, int]]:
    before = {r["user_id"]: r for r in expected_records(old_day, scenario) if "score" in r}
    return {
        r["user_id"]: (before[r["user_id"]]["score"], r["score"])
        for r in expected_records(new_day, scenario)
        if "score" in r and r["user_id"] in before and abs(r["score"] - before[r["user_id"]]["score"]) >= step
    }


def test_score_moves_become_events_with_old_and_new_values(stack: Stack, events_queue: str) -> None:
    scenario = Scenario(subusers=300, ineligible_every=9)
    stack.simulator.reset(scenario)
    stack.configure(SCORE_CHANGE_EVENT_BUS=BUS)
    old_day, new_day = days_ago(3), days_ago(2)

    first = stack.invoke({"date": old_day})
    assert first["score_change_events"] == 0  # nothing known before: nothing moved
    summary = stack.invoke({"date": new_day})

    details = received(stack, events_queue)
    expected = moves(old_day, new_day, scenario)
    assert summary["score_change_events"] == len(details) == len(expected) > 0
    assert {d["user_id"]: (d["old_score"], d["new_score"]) for d in details} == expected
    sample = details[0]
    assert (sample["date"], sample["previous_date"]) == (new_day, old_day)
    assert sample["change"] == sample["new_score"] - sample["old_score"]
    truth = {r["user_id"]: r for r in expected_records(new_day, scenario)}
    assert sample["new_metrics"] == truth[sample["user_id"]]["metrics"]
    assert set(sample["old_metrics"]) == set(sample["new_metrics"])
    assert stack.metrics["ScoreChangeEvents"] == len(details)
    assert "ScoreChangeEventsFailed" not in stack.metrics


def test_events_go_ten_to_a_put_events_call(
    stack: Stack, events_queue: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = Scenario(subusers=300, ineligible_every=0)
    stack.simulator.reset(scenario)
    proxy = AwsFaultProxy(moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.start())
    try:
        stack.configure(SCORE_CHANGE_EVENT_BUS=BUS)
        stack.invoke({"date": days_ago(3)})
        stack.invoke({"date": days_ago(2)})
    finally:
        proxy.stop()

    count = len(moves(days_ago(3), days_ago(2), scenario))
    assert proxy.calls.count("Events.PutEvents") == math.ceil(count / 10)
    assert proxy.calls.count("DynamoDB.BatchWriteItem") == 0  # old values need UpdateItem's answer
    assert proxy.calls.count("DynamoDB.GetItem") == proxy.calls.count("DynamoDB.Query") == 0  # and no reads


def test_a_larger_step_sends_only_larger_moves(stack: Stack, events_queue: str) -> None:
    scenario = Scenario(subusers=300, ineligible_every=0)
    stack.simulator.reset(scenario)
    stack.configure(SCORE_CHANGE_EVENT_BUS=BUS, SCORE_CHANGE_MIN_STEP="2")

    stack.invoke({"date": days_ago(3)})
    stack.invoke({"date": days_ago(2)})

    details = received(stack, events_queue)
    assert {d["user_id"] for d in details} == set(moves(days_ago(3), days_ago(2), scenario, step=2))
    assert all(abs(d["change"]) >= 2 for d in details)


def test_older_days_and_reruns_send_no_events(stack: Stack, events_queue: str) -> None:
    stack.simulator.reset(Scenario(subusers=200, ineligible_every=0))
    stack.configure(SCORE_CHANGE_EVENT_BUS=BUS)
    stack.invoke({"date": days_ago(2)})
    received(stack, events_queue)

    rerun = stack.invoke({"date": days_ago(2)})
    older = stack.invoke({"date": days_ago(6)})

    assert rerun["score_change_events"] == older["score_change_events"] == 0
    assert older["latest_kept_newer"] == 200
    assert received(stack, events_queue) == []
    assert "ScoreChangeEvents" not in stack.metrics


def test_events_are_off_unless_configured(stack: Stack, events_queue: str) -> None:
    stack.simulator.reset(Scenario(subusers=200, ineligible_every=0))

    stack.invoke({"date": days_ago(3)})
    summary = stack.invoke({"date": days_ago(2)})

    assert summary["score_change_events"] == 0
    assert received(stack, events_queue) == []
    assert "ScoreChangeEvents" not in stack.metrics
    assert "ScoreChangeEventsFailed" not in stack.metrics


def test_events_that_eventbridge_keeps_refusing_are_counted_as_failed_and_the_day_still_exports(
    stack: Stack, events_queue: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = Scenario(subusers=100, ineligible_every=0)
    stack.simulator.reset(scenario)
    proxy = AwsFaultProxy(moto_endpoint)
    proxy.faults = [AwsFault("Events.PutEvents", "AccessDeniedException", times=1_000)]
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.start())
    try:
        stack.configure(SCORE_CHANGE_EVENT_BUS=BUS)
        stack.invoke({"date": days_ago(3)})
        summary = stack.invoke({"date": days_ago(2)})
    finally:
        proxy.stop()
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)

    count = len(moves(days_ago(3), days_ago(2), scenario))
    assert count > 0
    assert summary == summary | {"status": "exported", "score_change_events": 0, "score_change_events_failed": count}
    assert proxy.faults[0].fired == 4 * math.ceil(count / 10)  # every batch tried four times, then counted
    assert received(stack, events_queue) == []
    assert stack.data_keys() == [stack.key(days_ago(3)), stack.key(days_ago(2))]
    assert stack.metrics["ScoreChangeEventsFailed"] == count
    assert "ScoreChangeEvents" not in stack.metrics
