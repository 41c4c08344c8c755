"""``seq-export backfill``, in process against moto server and the SEQ simulator: one queued
job per day, kind and source, what it queued and skipped with counts that agree, and ``--wait``
delivering the queue until the days are exported or its timeout.
"""

from __future__ import annotations

import json

import pytest

from local.seq_simulator import Scenario
from seq_export.models import ACCOUNT, SUBUSERS
from tests.support import Stack, days_ago
from tests.support.cli import TWO_SOURCE_NAMES, cli, cli_json, day_lines, days_with, object_key

pytestmark = pytest.mark.integration


def test_a_backfill_outside_sendgrids_window_is_a_usage_error_before_the_function_runs(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "backfill", "--local", "--from", days_ago(200), "--to", days_ago(199))

    assert code == 2
    assert out == ""
    assert "--from" in err
    assert "90-day window" in err
    assert stack.queue_counts() == {"visible": 0, "delayed": 0}


def test_backfill_local_wait_delivers_the_queue_until_every_day_is_exported_with_progress(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=20))
    days = [days_ago(n) for n in (4, 3, 2)]

    code, document, err = cli_json(
        capsys, "backfill", "--local", "--wait", "--timeout", "60", "--from", days[0], "--to", days[-1]
    )

    assert code == 0
    assert document["status"] == "enqueued"
    assert document["wait"] == {  # 3 days x 2 kinds
        "outcome": "exported",
        "queued": 6,
        "exported": 6,
        "missing": [],
        "dead_lettered": [],
    }
    assert [key for key in stack.data_keys() if "subuser_scores" in key] == [object_key(stack, day) for day in days]
    assert all(len(day_lines(stack, day)) == 20 for day in days)
    assert [line for line in err.splitlines() if "queued days exported" in line] == [
        f"seq-export: queued days exported: {n}/6" for n in range(7)
    ]  # one day at a time
    assert stack.queue_counts() == {"visible": 0, "delayed": 0}


def test_backfill_local_wait_waits_for_a_day_sendgrid_is_still_computing(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.configure(NOT_READY_DELAY_SECONDS="1")
    stack.simulator.reset(Scenario(subusers=8, not_ready=1))
    day = days_ago(3)

    code, out, err = cli(
        capsys, "backfill", "--local", "--wait", "--kind", "subusers", "--timeout", "60", "--from", day, "--to", day
    )

    assert code == 0
    assert "exported          1/1 queued days" in out
    assert "queued days exported: 0/1" in err
    assert "queued days exported: 1/1" in err
    assert len(day_lines(stack, day)) == 8


def test_backfill_without_wait_only_enqueues_one_message_per_day(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "backfill", "--local", "--from", days_ago(5), "--to", days_ago(2))

    assert code == 0
    assert (
        f"4 days x 2 kinds (account, subusers), {days_ago(5)} .. {days_ago(2)}: 8 enqueued, 0 already exported" in out
    )
    assert stack.queue_counts()["visible"] == 8
    assert stack.data_keys() == []


def test_backfill_says_per_day_and_kind_what_it_queued_and_skipped_with_counts_that_agree(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=10))
    for n in (3, 2):
        assert stack.invoke({"date": days_ago(n)})["status"] == "exported"
    first, last = days_ago(4), days_ago(1)

    code, out, _ = cli(capsys, "backfill", "--local", "--kind", "subusers", "--from", first, "--to", last)
    _, document, _ = cli_json(capsys, "backfill", "--local", "--kind", "subusers", "--from", first, "--to", last)

    assert code == 0
    assert out.splitlines() == [
        f"enqueued          subusers  {days_ago(4)}",
        f"already exported  subusers  {days_ago(3)}",
        f"already exported  subusers  {days_ago(2)}",
        f"enqueued          subusers  {days_ago(1)}",
        f"4 days x 1 kind (subusers), {first} .. {last}: 2 enqueued, 2 already exported (--force exports them again)",
    ]
    # the same backfill again, its days still queued: nothing is queued twice
    assert document["counts"] == {"enqueued": 0, "skipped_already_exported": 2, "skipped_already_queued": 2}
    assert len(days_with(document, "already queued")) == document["counts"]["skipped_already_queued"]
    assert [(row["date"], row["outcome"]) for row in document["by_day"]] == [
        (days_ago(4), "already queued"),
        (days_ago(3), "already exported"),
        (days_ago(2), "already exported"),
        (days_ago(1), "already queued"),
    ]
    assert stack.queue_counts()["visible"] == 2


def test_backfill_wait_stops_at_its_timeout_naming_the_days_still_pending(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.configure(NOT_READY_DELAY_SECONDS="1", MAX_NOT_READY_ATTEMPTS="1000")
    stack.simulator.reset(Scenario(subusers=5, not_ready=1_000))  # SendGrid never gets there
    day = days_ago(2)

    code, out, err = cli(
        capsys, "backfill", "--local", "--wait", "--timeout", "1", "--kind", "subusers", "--from", day, "--to", day
    )

    assert code == 1
    assert "exported          0/1 queued days" in out
    assert f"1 of 1 queued days not exported within 1 s: subusers {day}" in err


def queued_jobs(stack: Stack) -> list[tuple[str, str, str]]:
    """(source, kind, date) of every message in the retry queue (taken off it)."""
    jobs: list[tuple[str, str, str]] = []
    while True:
        answer = stack.sqs.receive_message(QueueUrl=stack.resources.queue_url, MaxNumberOfMessages=10)
        messages = answer.get("Messages", [])
        if not messages:
            return sorted(jobs)
        for message in messages:
            body = json.loads(message["Body"])
            jobs.append((body["source"], body["kind"], body["date"]))
            stack.sqs.delete_message(QueueUrl=stack.resources.queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_backfill_with_source_queues_that_sources_days_only(
    two_sources: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = days_ago(3), days_ago(2)

    code, document, _ = cli_json(capsys, "backfill", "--local", "--from", first, "--to", last, "--source", "eu")

    assert code == 0
    expected = sorted(("eu", kind, day) for kind in (SUBUSERS, ACCOUNT) for day in (first, last))
    assert sorted((j["source"], j["kind"], j["date"]) for j in days_with(document, "enqueued")) == expected
    assert {row["source"] for row in document["by_day"]} == {"eu"}
    assert queued_jobs(two_sources) == expected


def test_backfill_without_source_queues_every_source_and_says_so_per_source(
    two_sources: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    assert two_sources.invoke({"date": day, "source": "eu"})["status"] == "exported"

    code, out, _ = cli(capsys, "backfill", "--local", "--kind", "subusers", "--from", day, "--to", day)

    assert code == 0
    assert out.splitlines() == [
        f"enqueued          global  subusers  {day}",
        f"already exported  eu      subusers  {day}",
        f"1 day x 1 kind (subusers) x 2 sources (global, eu), {day} .. {day}: 1 enqueued, 1 already exported "
        "(--force exports them again)",
    ]
    assert queued_jobs(two_sources) == [("global", SUBUSERS, day)]


def test_backfill_local_wait_exports_every_sources_days(two_sources: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    first, last = days_ago(3), days_ago(2)

    code, document, _ = cli_json(
        capsys, "backfill", "--local", "--wait", "--timeout", "60", "--kind", "subusers", "--from", first, "--to", last
    )

    assert code == 0
    assert document["wait"] == {"outcome": "exported", "queued": 4, "exported": 4, "missing": [], "dead_lettered": []}
    for name in TWO_SOURCE_NAMES:
        for day in (first, last):
            assert {line["source"] for line in day_lines(two_sources, day, source=name)} == {name}
