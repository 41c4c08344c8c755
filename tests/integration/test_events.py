"""Every event shape the function accepts, from the samples in events/, through the handler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.metrics.provider import cold_start

from local.seq_simulator import Scenario
from seq_export.errors import InvalidEventError
from seq_export.layout import DEFAULT_SOURCE
from tests.support import Stack, days_ago, job
from tests.support.builders import day_metrics

pytestmark = pytest.mark.integration
EVENTS = Path(__file__).parents[2] / "events"


def sample(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def test_scheduler_input_exports_the_utc_day_before_the_scheduled_time(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=50))
    event = sample("scheduled.json")
    event["scheduled_time"] = f"{days_ago(3)}T00:05:00Z"

    summary = stack.invoke(event)

    assert (summary["source"], summary["date"]) == (DEFAULT_SOURCE, days_ago(4))  # not the wall clock's yesterday
    assert stack.data_keys() == [stack.key(days_ago(4))]


def test_a_scheduled_run_emits_the_days_metrics_and_none_for_the_account_day_it_queues(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=50, ineligible_every=5))

    summary = stack.invoke({"scheduled_time": f"{days_ago(0)}T06:00:00Z"})

    assert summary == summary | {
        "status": "exported",
        "source": DEFAULT_SOURCE,
        "records": 50,
        "pages": 1,
        "ineligible": 10,
    }
    assert stack.queue_counts() == {"visible": 1, "delayed": 0}  # the account's day, not run yet
    exported = day_metrics(records=50, pages=1, ineligible=10, written=40)
    assert dict(stack.metrics) == exported
    assert dict(stack.source_metrics(DEFAULT_SOURCE)) == {**exported, **stack.band_counts(summary["date"])}


def test_only_the_first_invocation_of_a_container_counts_a_cold_start(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cold_start, "is_cold_start", True)  # a fresh container
    stack.simulator.reset(Scenario(subusers=5))

    stack.invoke({"date": days_ago(1)})
    stack.invoke({"date": days_ago(2)})

    assert stack.metrics["ColdStart"] == 1
    assert stack.metrics["RecordsExported"] == 10


def test_scheduler_time_with_an_offset_is_read_in_utc(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=5))
    # 23:30 at -02:00 is 01:30 UTC the next day
    summary = stack.invoke({"scheduled_time": f"{days_ago(4)}T23:30:00-02:00"})

    assert summary["date"] == days_ago(4)


def test_classic_eventbridge_scheduled_event_uses_its_time(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=50))
    event = sample("eventbridge-scheduled.json")
    event["time"] = f"{days_ago(2)}T06:00:00Z"

    assert stack.invoke(event)["date"] == days_ago(3)


def test_direct_date_returns_the_summary(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=1_200))
    event = sample("direct-date.json") | {"date": days_ago(1)}

    summary = stack.invoke(event)

    assert {"status", "source", "date", "pages", "records", "s3_key"} <= set(summary)
    assert (summary["status"], summary["source"], summary["pages"], summary["records"]) == (
        "exported",
        DEFAULT_SOURCE,
        2,
        1_200,
    )
    assert summary["s3_key"] == stack.key(days_ago(1))


def test_sqs_retry_event_exports_its_day(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=30))
    event = sample("sqs-retry.json")
    event["Records"][0]["body"] = job(days_ago(6), attempt=2).to_json()

    assert stack.invoke(event) == {"batchItemFailures": []}
    assert len(stack.lines(days_ago(6))) == 30
    exported = day_metrics(records=30, pages=1, ineligible=30 // 7)
    assert dict(stack.metrics) == exported
    assert dict(stack.source_metrics(DEFAULT_SOURCE)) == {**exported, **stack.band_counts(days_ago(6))}


def test_one_bad_sqs_record_does_not_fail_the_others(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=30))
    good = sample("sqs-retry.json")["Records"][0] | {"messageId": "good", "body": job(days_ago(1)).to_json()}
    bad = good | {"messageId": "bad", "body": '{"date": "yesterday"}'}

    response = stack.invoke({"Records": [bad, good]})

    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert len(stack.lines(days_ago(1))) == 30
    assert stack.metrics["RecordsExported"] == 30  # the good record's export still counts


def test_backfill_enqueues_one_message_per_day(stack: Stack) -> None:
    event = sample("backfill.json") | {"from": days_ago(12), "to": days_ago(1)}

    summary = stack.invoke(event)

    assert summary == summary | {"status": "enqueued", "from": days_ago(12), "to": days_ago(1), "days": 12}
    assert summary["enqueued"] == [  # subusers and the account's own scores, per day
        {"source": DEFAULT_SOURCE, "kind": kind, "date": days_ago(n)}
        for n in range(12, 0, -1)
        for kind in ("subusers", "account")
    ]
    assert dict(stack.metrics) == {"BackfillDaysEnqueued": 24}  # one per job; nothing exported yet
    assert summary["skipped_already_exported"] == []
    bodies = []
    while True:
        batch = stack.sqs.receive_message(QueueUrl=stack.resources.queue_url, MaxNumberOfMessages=10)
        if not batch.get("Messages"):
            break
        bodies += [json.loads(m["Body"]) for m in batch["Messages"]]
    subusers = [b["date"] for b in bodies if b["kind"] == "subusers"]
    account = [b["date"] for b in bodies if b["kind"] == "account"]
    assert sorted(subusers) == sorted(account) == [days_ago(n) for n in range(12, 0, -1)]
    assert len(bodies) == 24
    assert {b["source"] for b in bodies} == {DEFAULT_SOURCE}
    assert {b["attempt"] for b in bodies} == {1}
    assert {b["reason"] for b in bodies} == {"backfill"}
    assert len({b["run"] for b in bodies}) == 1  # one request, one run
    assert all(set(b) == {"source", "kind", "date", "attempt", "reason", "run"} for b in bodies)


def test_backfill_skips_days_already_exported_unless_forced(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=20))
    stack.invoke({"date": days_ago(2)})

    summary = stack.invoke({"from": days_ago(3), "to": days_ago(1)})
    forced = stack.invoke({"from": days_ago(3), "to": days_ago(1), "force": True})

    exported = {"source": DEFAULT_SOURCE, "kind": "subusers", "date": days_ago(2)}
    assert summary["skipped_already_exported"] == [exported]
    assert exported not in summary["enqueued"]
    assert exported in forced["enqueued"]
    assert len(summary["enqueued"]) == 5
    assert forced["skipped_already_exported"] == []
    assert len(forced["enqueued"]) == 6
    assert stack.metrics["BackfillDaysEnqueued"] == 5 + 6  # skipped days are not counted


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (sample("invalid.json"), "unrecognised event with keys \\['day'\\]; expected one of"),
        ({"date": "2026-02-30"}, "is not a calendar date"),
        ({"date": "20261101"}, "direct date event 'date' must be a day YYYY-MM-DD"),
        ({"date": "yesterday"}, "direct date event 'date' must be a day YYYY-MM-DD, got 'yesterday'"),
        ({"date": days_ago(0)}, f"direct date event 'date' {days_ago(0)} is not a finished UTC day"),
        ({"date": days_ago(0), "kind": "account"}, "is not a finished UTC day"),
        ({"date": days_ago(91)}, "is older than SendGrid's 90-day window"),
        ({"scheduled_time": "tomorrow"}, "scheduled event 'scheduled_time' must be an ISO-8601 timestamp"),
        ({"scheduled_time": "2026-11-01T06:00:00"}, "must carry a UTC offset"),
        ({"from": "2026-11-05", "to": "2026-11-01"}, "is after 'to'"),
        ([1, 2], "event must be a JSON object"),
    ],
)
def test_invalid_events_are_rejected_naming_what_was_expected(stack: Stack, event: Any, message: str) -> None:
    with pytest.raises(InvalidEventError, match=message):
        stack.invoke(event)

    assert stack.simulator.requests == []
    assert dict(stack.metrics) == {"InvalidEvents": 1}


def test_a_queued_job_for_an_unfinished_day_fails_before_reaching_sendgrid(stack: Stack, log_output: Any) -> None:
    stack.sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=job(days_ago(0)).to_json())

    response = stack.deliver(wait_seconds=1)

    assert response is not None
    assert len(response["batchItemFailures"]) == 1
    assert stack.simulator.requests == []
    assert stack.object_keys() == []
    assert f"queued job 'date' {days_ago(0)} is not a finished UTC day" in log_output.getvalue()
    assert dict(stack.metrics) == {"InvalidEvents": 1}
