"""A day already queued is not queued again, and ``--wait`` tells the truth: what an operator
who repeats, interrupts and waits on backfills and runs sees, in process, against moto server
and the SEQ simulator."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

import seq_export_cli.invoke as invoke_module
from local.seq_simulator import SUBUSER_SCORES_PATH, Fault, Scenario, SeqSimulator
from seq_export.job_message import JobId
from seq_export.queued_days import marker_id
from seq_export_cli.local_lambda import QUEUE_VISIBILITY_TIMEOUT_SECONDS, FakeLambdaContext
from tests.support import Stack, days_ago
from tests.support.cli import cli, cli_json, day_lines, days_with, deploy, object_key, only_entry

pytestmark = pytest.mark.integration


def deliver_all(stack: Stack) -> list[dict[str, Any]]:
    """Play the event source until the retry queue has nothing visible; the responses, in order."""
    responses = []
    while (response := stack.deliver(wait_seconds=1)) is not None:
        responses.append(response)
    return responses


def pages_fetched(stack: Stack) -> Counter[str]:
    """Pages of subusers' scores SendGrid served, by day."""
    return Counter(
        request["params"]["date"]
        for request in stack.simulator.requests
        if request["path"] == SUBUSER_SCORES_PATH and request["status"] == 200
    )


def subusers_backfill(first: str, last: str, *options: str) -> list[str]:
    return ["backfill", "--local", "--kind", "subusers", "--from", first, "--to", last, *options]


class InterruptingContext(FakeLambdaContext):
    """Ctrl-C in the middle of a day: the first time the export asks for its remaining time
    once SendGrid has served it a page (Powertools asked before, to save its in-progress record)."""

    def __init__(self, simulator: SeqSimulator) -> None:
        super().__init__()
        self._simulator = simulator
        self._from = simulator.pages_served()

    def get_remaining_time_in_millis(self) -> int:
        if self._simulator.pages_served() > self._from:
            raise KeyboardInterrupt
        return super().get_remaining_time_in_millis()


# -- a day already queued is not queued again ---------------------------------------------------------
def test_a_backfill_repeated_while_its_days_are_queued_fetches_each_day_once(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=10))
    days = [days_ago(n) for n in (4, 3, 2)]

    _, first, _ = cli_json(capsys, *subusers_backfill(days[0], days[-1]))
    code, again, _ = cli_json(capsys, *subusers_backfill(days[0], days[-1]))
    deliver_all(stack)

    assert code == 0
    assert first["counts"] == {"enqueued": 3, "skipped_already_exported": 0, "skipped_already_queued": 0}
    assert again["counts"] == {"enqueued": 0, "skipped_already_exported": 0, "skipped_already_queued": 3}
    assert sum(again["counts"].values()) == again["days"] * 1 * 1  # days x kinds x sources
    assert [(row["date"], row["outcome"]) for row in again["by_day"]] == [(day, "already queued") for day in days]
    assert {job["run"] for job in days_with(again, "already queued")} == {first["run"]}
    assert pages_fetched(stack) == dict.fromkeys(days, 1)  # each day fetched once
    assert all(len(day_lines(stack, day)) == 10 for day in days)


def test_the_repeated_backfill_says_already_queued_in_its_lines_with_counts_that_add_up(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=10))
    exported, queued, new = days_ago(4), days_ago(3), days_ago(2)
    assert stack.invoke({"date": exported})["status"] == "exported"
    cli(capsys, *subusers_backfill(queued, queued))

    code, out, _ = cli(capsys, *subusers_backfill(exported, new))

    assert code == 0
    assert out.splitlines() == [
        f"already exported  subusers  {exported}",
        f"already queued    subusers  {queued}",
        f"enqueued          subusers  {new}",
        f"3 days x 1 kind (subusers), {exported} .. {new}: 1 enqueued, 1 already exported, 1 already queued "
        "(--force exports them again)",
    ]
    assert stack.queue_counts()["visible"] == 2


def test_a_forced_backfill_queues_a_day_that_is_already_queued_and_holds_it_from_then_on(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    cli_json(capsys, *subusers_backfill(day, day))

    code, forced, _ = cli_json(capsys, *subusers_backfill(day, day, "--force"))
    _, later, _ = cli_json(capsys, *subusers_backfill(day, day))

    assert code == 0
    assert forced["counts"] == {"enqueued": 1, "skipped_already_exported": 0, "skipped_already_queued": 0}
    assert stack.queue_counts()["visible"] == 2  # the forced export beside the first one
    assert [job["run"] for job in days_with(later, "already queued")] == [forced["run"]]


def test_a_backfill_over_a_day_the_daily_run_queued_does_not_queue_it_again(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=10))
    day = days_ago(1)
    assert stack.invoke({"scheduled_time": f"{days_ago(0)}T06:00:00Z"})["status"] == "exported"  # account day queued

    code, backfill, _ = cli_json(capsys, "backfill", "--local", "--from", day, "--to", day)

    assert code == 0
    assert backfill["counts"] == {"enqueued": 0, "skipped_already_exported": 1, "skipped_already_queued": 1}
    assert days_with(backfill, "already queued") == [
        {"source": "default", "kind": "account", "date": day, "run": f"daily-{day}"}
    ]
    assert stack.queue_counts()["visible"] == 1  # the daily run's own message only


def test_a_marker_past_its_expiry_no_longer_holds_its_day(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    day = days_ago(2)
    orphaned = {  # left by a job the function never saw end; DynamoDB's TTL has not removed it yet
        "id": {"S": marker_id(JobId("default", "subusers", day))},
        "run": {"S": "an-old-backfill"},
        "expiration": {"N": str(int(time.time()) - 1)},
    }
    stack.session.client("dynamodb").put_item(TableName=stack.resources.idempotency_table, Item=orphaned)

    code, backfill, _ = cli_json(capsys, *subusers_backfill(day, day))

    assert code == 0
    assert backfill["counts"] == {"enqueued": 1, "skipped_already_exported": 0, "skipped_already_queued": 0}


# -- --wait: exported means landed during the wait; a dead letter ends it ---------------------------
def test_backfill_wait_ends_at_once_when_a_followed_day_is_given_up_naming_it_and_its_reason(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.configure(NOT_READY_DELAY_SECONDS="1", MAX_NOT_READY_ATTEMPTS="2")
    stack.simulator.reset(Scenario(subusers=5, not_ready=1_000))  # SendGrid never gets there
    day = days_ago(2)

    code, out, err = cli(capsys, *subusers_backfill(day, day, "--wait", "--timeout", "120"))
    again, queued, _ = cli_json(capsys, *subusers_backfill(day, day))

    assert code == 1
    assert "exported          0/1 queued days" in out
    assert f"seq-export: default subusers {day} is in the dead-letter queue: gave_up_not_ready" in err.splitlines()
    assert f"1 of 1 queued days not exported (the wait stopped at the dead letter): subusers {day}" in err
    assert [body["reason"] for body in stack.dlq_bodies()] == ["gave_up_not_ready"]
    # given up, the day is no longer queued: the next backfill queues it again
    assert (again, queued["counts"]["enqueued"]) == (0, 1)


def test_backfill_wait_against_a_deployed_stack_ends_at_a_day_sqs_moved_after_failed_deliveries(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=5, faults=[Fault(page=1, status=400, times=1_000)]))  # always refused
    name = deploy(stack)
    day = days_ago(2)

    code, document, err = cli_json(
        capsys, "--stack", name, "backfill", "--kind", "subusers", "--from", day, "--to", day, "--wait"
    )

    assert code == 1
    assert document["wait"]["outcome"] == "dead_lettered"
    [letter] = document["wait"]["dead_lettered"]
    assert (letter["source"], letter["kind"], letter["date"], letter["run"]) == (
        "default",
        "subusers",
        day,
        document["run"],
    )
    assert f"seq-export: default subusers {day} is in the dead-letter queue: failed 3 deliveries" in err.splitlines()


def test_run_wait_against_a_deployed_stack_follows_the_day_until_it_is_exported(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=9, not_ready=1))  # the retry, a second later, gets the day
    name = deploy(stack)
    day = days_ago(1)

    code, out, err = cli(capsys, "--stack", name, "run", "--kind", "subusers", "--wait", "--date", day)

    assert code == 0
    assert f"{day} (subusers): SendGrid answered 202; following it until it is exported" in err
    assert out.splitlines()[0] == (
        f"exported      subusers {day}: 9 records, by a retry delivered from the queue once SendGrid was ready"
    )
    assert len(day_lines(stack, day)) == 9


def test_a_wait_does_not_count_a_day_whose_object_was_there_before_it_until_it_is_replaced(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=6))
    day = days_ago(2)
    assert stack.invoke({"date": day})["status"] == "exported"
    before = stack.session.client("s3").head_object(Bucket=stack.resources.bucket, Key=object_key(stack, day))
    stack.configure(NOT_READY_DELAY_SECONDS="1", MAX_NOT_READY_ATTEMPTS="1000")
    stack.simulator.reset(Scenario(subusers=6, not_ready=1_000))  # this time SendGrid never gets there

    code, document, _ = cli_json(capsys, "run", "--local", "--wait", "--timeout", "2", "--date", day)

    assert code == 1
    summary = only_entry(document)
    assert (summary["status"], summary["wait"]) == ("not_ready", "timeout")
    after = stack.session.client("s3").head_object(Bucket=stack.resources.bucket, Key=object_key(stack, day))
    assert after["ETag"] == before["ETag"]  # the object the wait saw is the old one


# -- locally, an interrupted export is exported by the next delivery --------------------------------
def test_the_local_retry_queue_hides_a_message_as_long_as_the_deployed_one(stack: Stack) -> None:
    attributes = stack.sqs.get_queue_attributes(QueueUrl=stack.resources.queue_url, AttributeNames=["All"])

    assert int(attributes["Attributes"]["VisibilityTimeout"]) == QUEUE_VISIBILITY_TIMEOUT_SECONDS


def test_a_job_interrupted_mid_handler_is_exported_by_the_next_delivery(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=2_500))  # three pages
    day = days_ago(3)
    queued = stack.invoke({"from": day, "to": day, "kind": "subusers"})

    with pytest.raises(KeyboardInterrupt):
        stack.queue.deliver_once(
            lambda event: stack.invoke(event, InterruptingContext(stack.simulator)), wait_seconds=1
        )
    again = stack.invoke({"from": day, "to": day, "kind": "subusers"})
    response = stack.deliver(wait_seconds=1)

    assert [job["run"] for job in again["skipped_already_queued"]] == [queued["run"]]  # still queued
    assert response == {"batchItemFailures": []}  # not "already in progress"
    assert len(stack.lines(day)) == 2_500
    assert stack.queue_counts() == {"visible": 0, "delayed": 0}
    assert stack.dlq_bodies() == []


def test_a_backfill_wait_interrupted_and_run_again_exports_every_day_without_a_dead_letter(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.simulator.reset(Scenario(subusers=2_500))  # three pages a day
    days = [days_ago(n) for n in (4, 3, 2)]
    simulator = stack.simulator
    monkeypatch.setattr(invoke_module, "FakeLambdaContext", lambda: InterruptingContext(simulator))

    interrupted, _, first_err = cli(capsys, *subusers_backfill(days[0], days[-1], "--wait"))
    monkeypatch.setattr(invoke_module, "FakeLambdaContext", FakeLambdaContext)
    code, out, err = cli(capsys, *subusers_backfill(days[0], days[-1], "--wait"))

    assert interrupted == 130
    assert f"seq-export: interrupted while exporting default subusers {days[0]}: its message is back on" in first_err
    assert "failed" not in first_err
    assert code == 0
    assert out.splitlines()[:3] == [f"already queued    subusers  {day}" for day in days]
    assert f"exported          3/3 queued days ({days[0]} .. {days[-1]})" in out
    assert "failed" not in err
    assert pages_fetched(stack) == {days[0]: 1 + 3, days[1]: 3, days[2]: 3}  # once each, after the cut-short page
    assert stack.dlq_bodies() == []
    assert stack.queue_counts() == {"visible": 0, "delayed": 0}
