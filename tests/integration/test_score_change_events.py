"""`SEQ Score Changed` events: from the upsert's old values, batched, to EventBridge (moto) and on to SQS."""

from __future__ import annotations

import json
import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from local.aws_fault_proxy import AwsFault, AwsFaultProxy
from local.seq_simulator import Scenario, expected_records
from seq_export.layout import DEFAULT_SOURCE
from tests.support import Stack, days_ago, run_to_completion
from tests.support.template import load_template

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
    assert proxy.calls.count("Events.PutEvents") == math.ceil(count / 10) + 2  # and each day's digest
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


def test_events_are_off_unless_configured(stack: Stack, events_queue: str, digest_queue: str) -> None:
    stack.simulator.reset(Scenario(subusers=200, ineligible_every=0))

    stack.invoke({"date": days_ago(3)})
    summary = stack.invoke({"date": days_ago(2)})

    assert (summary["score_change_events"], summary["daily_digest"]) == (0, None)
    assert received(stack, events_queue) == []
    assert received(stack, digest_queue) == []  # no daily digest either
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
    assert summary == summary | {
        "status": "exported",
        "score_change_events": 0,
        "score_change_events_failed": count,
        "daily_digest": "failed",
    }
    # every batch, and each day's digest, tried four times, then counted
    assert proxy.faults[0].fired == 4 * (math.ceil(count / 10) + 2)
    assert received(stack, events_queue) == []
    assert stack.data_keys() == [stack.key(days_ago(3)), stack.key(days_ago(2))]
    assert stack.metrics["ScoreChangeEventsFailed"] == count
    assert stack.metrics["DailyDigestsFailed"] == 2
    assert "ScoreChangeEvents" not in stack.metrics


# -- the daily digest ----------------------------------------------------------------------------

SECOND = "brand-b"
SECOND_SCENARIO = Scenario(subusers=120, fractional=True, ineligible_every=5, first_user_id=500_001)


@pytest.fixture
def digest_queue(stack: Stack, events_queue: str) -> str:
    """A rule on the events' bus sending every daily digest to an SQS queue the test reads."""
    return route_to_queue(stack, "digests", {"source": ["seq-export"], "detail-type": ["SEQ Daily Digest"]})


def route_to_queue(stack: Stack, name: str, pattern: dict[str, Any], **target: Any) -> str:
    events = stack.session.client("events")
    queue_url = stack.sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=BUS, EventPattern=json.dumps(pattern))
    targets: list[Any] = [{"Id": "queue", "Arn": arn, **target}]
    events.put_targets(Rule=name, EventBusName=BUS, Targets=targets)
    return queue_url


def mover(user_id: str, before: Any, after: Any) -> tuple[str, str, float, float]:
    return (user_id, f"subuser-{user_id}", float(before), float(after))


def expected_digest(stack: Stack, source: str, day: str, previous_day: str | None, step: Decimal) -> dict[str, Any]:
    """A day's digest as its exported lines, and the day before's, call for it."""
    lines = stack.lines(day, source)
    scores = [line["score"] for line in lines if line["score"] is not None]
    before = (
        {} if previous_day is None else {line["user_id"]: line["score"] for line in stack.lines(previous_day, source)}
    )
    moved = [
        (line["user_id"], before[line["user_id"]], line["score"])
        for line in lines
        if line["score"] is not None
        and before.get(line["user_id"]) is not None
        and abs(line["score"] - before[line["user_id"]]) >= step
    ]
    drops = sorted((m for m in moved if m[2] < m[1]), key=lambda m: (m[2] - m[1], m[0]))
    rises = sorted((m for m in moved if m[2] > m[1]), key=lambda m: (m[1] - m[2], m[0]))
    mean = (sum(scores) / len(scores)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return {
        "source": source,
        "date": day,
        "subusers": len(lines),
        "bands": {f"score_{band}": sum(1 for score in scores if int(score) == band) for band in range(1, 6)},
        "ineligible": len(lines) - len(scores),
        "mean_score": float(mean),
        "drops": len(drops),
        "rises": len(rises),
        "biggest_drops": [mover(*m) for m in drops[:5]],
        "biggest_rises": [mover(*m) for m in rises[:5]],
    }


def as_expected(digest: dict[str, Any]) -> dict[str, Any]:
    """A received digest in ``expected_digest``'s terms (the movers as tuples)."""
    named = {key: digest[key] for key in ("source", "date", "subusers", "bands", "ineligible", "mean_score")}
    moves = {key: digest[key] for key in ("drops", "rises")}
    movers = {
        key: [(m["user_id"], m["username"], m["before"], m["after"]) for m in digest[key]]
        for key in ("biggest_drops", "biggest_rises")
    }
    return named | moves | movers


def test_each_exported_day_of_each_source_sends_one_digest_with_its_bands_moves_and_biggest_movers(
    stack: Stack, digest_queue: str
) -> None:
    stack.simulator.reset(Scenario(subusers=150, fractional=True, ineligible_every=9))
    stack.add_source(SECOND, SECOND_SCENARIO, SCORE_CHANGE_EVENT_BUS=BUS, SCORE_CHANGE_MIN_STEP="0.5")
    old_day, new_day = days_ago(3), days_ago(2)

    for day in (old_day, new_day):
        for source in (DEFAULT_SOURCE, SECOND):
            summary = stack.invoke({"date": day, "source": source})
            assert summary["daily_digest"] == "sent"

    digests = {(d["source"], d["date"]): d for d in received(stack, digest_queue)}
    assert sorted(digests) == sorted((s, d) for s in (DEFAULT_SOURCE, SECOND) for d in (old_day, new_day))
    step = Decimal("0.5")
    for source in (DEFAULT_SOURCE, SECOND):
        first, second = digests[(source, old_day)], digests[(source, new_day)]
        assert as_expected(first) == expected_digest(stack, source, old_day, None, step)  # nothing known before
        assert as_expected(second) == expected_digest(stack, source, new_day, old_day, step)
        assert second["drops"] > 5  # more drops than the digest names: only the 5 biggest
        assert second["min_step"] == 0.5
        assert second["biggest_drop"] == second["biggest_drops"][0]
        assert second["biggest_rise"] == second["biggest_rises"][0]
        drop = second["biggest_drop"]
        assert drop["change"] == pytest.approx(drop["after"] - drop["before"])
        assert drop["previous_date"] == old_day
    assert stack.metrics["ScoreChangeEvents"] == sum(d["drops"] + d["rises"] for d in digests.values())
    assert "DailyDigestsFailed" not in stack.metrics


def test_a_day_continued_across_invocations_sends_one_digest_naming_the_biggest_movers_of_all_its_pages(
    stack: Stack, digest_queue: str
) -> None:
    stack.simulator.reset(Scenario(subusers=150, fractional=True, ineligible_every=9))
    # in order, so that each invocation is cut after one page (ranges would fetch all three at once)
    stack.configure(SCORE_CHANGE_EVENT_BUS=BUS, SEQ_PAGE_SIZE="50", SEQ_RANGED_FETCH="false")
    old_day, new_day = days_ago(3), days_ago(2)
    stack.invoke({"date": old_day})
    received(stack, digest_queue)

    first, continuations = run_to_completion(stack, new_day, pages=1)

    assert (first["status"], len(continuations)) == ("continued", 2)
    (digest,) = received(stack, digest_queue)  # from the last invocation only
    assert as_expected(digest) == expected_digest(stack, DEFAULT_SOURCE, new_day, old_day, Decimal(1))


def test_a_rerun_sends_the_digest_again_without_moves_and_a_day_not_ready_sends_none(
    stack: Stack, digest_queue: str
) -> None:
    stack.simulator.reset(Scenario(subusers=100, fractional=True))
    stack.configure(SCORE_CHANGE_EVENT_BUS=BUS)
    stack.invoke({"date": days_ago(3)})
    stack.invoke({"date": days_ago(2)})
    (day,) = [digest for digest in received(stack, digest_queue) if digest["date"] == days_ago(2)]

    rerun = stack.invoke({"date": days_ago(2)})
    stack.simulator.reset(Scenario(subusers=100, fractional=True, not_ready=5))
    late = stack.invoke({"date": days_ago(1)})

    (again,) = received(stack, digest_queue)
    assert (rerun["daily_digest"], late["status"], late["daily_digest"]) == ("sent", "not_ready", None)
    assert (again["date"], again["bands"], again["mean_score"]) == (day["date"], day["bands"], day["mean_score"])
    assert day["drops"] + day["rises"] > 0  # the first run of the day saw the moves
    assert (again["drops"], again["rises"], again["biggest_drop"], again["biggest_drops"]) == (0, 0, None, [])


def test_the_example_rule_mails_one_short_message_per_source_and_day_on_which_scores_dropped(
    stack: Stack, digest_queue: str
) -> None:
    rule = load_template()["Resources"]["ScoreDropRule"]["Properties"]
    (target,) = rule["Targets"]
    messages = route_to_queue(
        stack, "score-drop-mails", rule["EventPattern"], InputTransformer=target["InputTransformer"]
    )
    stack.simulator.reset(Scenario(subusers=100, fractional=True, ineligible_every=9))
    stack.configure(SCORE_CHANGE_EVENT_BUS=BUS)

    stack.invoke({"date": days_ago(3)})  # nothing known before: no drop, no mail
    stack.invoke({"date": days_ago(2)})

    (digest,) = [d for d in received(stack, digest_queue) if d["drops"]]
    (mail,) = [json.loads(body) for body in received_bodies(stack, messages)]
    drop = digest["biggest_drop"]
    assert mail == (
        f"seq-export {DEFAULT_SOURCE} {days_ago(2)}: {digest['drops']} subusers' scores dropped by 1 or more, "
        f"{digest['rises']} rose; mean score {digest['mean_score']}. Biggest drop: {drop['username']} "
        f"({drop['user_id']}) {drop['before']} to {drop['after']}."
    )


def received_bodies(stack: Stack, queue_url: str) -> list[str]:
    """The raw bodies of the messages on ``queue_url`` (a rule's transformed input is no event)."""
    answer = stack.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [message["Body"] for message in answer.get("Messages", [])]
