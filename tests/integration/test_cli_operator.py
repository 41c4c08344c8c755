"""What an operator new to the CLI tripped over, each as the command that showed it, in process,
against moto server and the SEQ simulator."""

from __future__ import annotations

import re

import pytest

from local.seq_simulator import Scenario
from seq_export.dates import export_window, today_utc
from tests.support import Stack, days_ago
from tests.support.cli import cli, cli_json, day_lines

pytestmark = pytest.mark.integration


def test_aws_region_alone_is_enough(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.invoke({"date": days_ago(1)})["status"] == "exported"
    user_id = next(line["user_id"] for line in day_lines(stack, days_ago(1)) if line["score"] is not None)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")

    code, document, err = cli_json(capsys, "lookup", user_id)

    assert (code, err) == (0, "")
    assert document["subusers"][0]["user_id"] == user_id


def test_run_refuses_today_before_anything_reaches_sendgrid(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    today = today_utc().isoformat()

    code, out, err = cli(capsys, "run", "--local", "--date", today)

    assert (code, out) == (2, "")
    assert f"--date {today} is not a finished UTC day; the newest allowed is {export_window(today_utc())[1]}" in err
    assert stack.simulator.requests == []


def test_run_and_status_default_to_yesterday_as_the_schedule_does(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=15))

    ran, summary, _ = cli_json(capsys, "run", "--local")
    checked, status, _ = cli_json(capsys, "status")

    assert (ran, summary["status"], summary["date"]) == (0, "exported", days_ago(1))
    assert (checked, status["date"], status["exported"]) == (0, days_ago(1), True)


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
        f"4 days x 1 kinds (subusers), {first} .. {last}: 2 enqueued, 2 already exported (--force exports them again)",
    ]
    # the same backfill again, its days still queued: nothing is queued twice
    assert document["counts"] == {"enqueued": 0, "skipped_already_exported": 2, "skipped_already_queued": 2}
    assert len(document["skipped_already_queued"]) == document["counts"]["skipped_already_queued"]
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


def test_run_local_shows_pages_and_records_as_they_are_fetched(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=2_500))
    day = days_ago(2)

    code, _, err = cli(capsys, "run", "--local", "--date", day)

    assert code == 0
    assert [line for line in err.splitlines() if "pages fetched" in line] == [
        f"seq-export: subusers {day}, pages fetched: 1 (1000 records)",
        f"seq-export: subusers {day}, pages fetched: 2 (2000 records)",
        f"seq-export: subusers {day}, pages fetched: 3 (2500 records)",
    ]


def test_run_local_wait_delivers_the_retry_a_202_left_until_the_day_is_exported(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.configure(NOT_READY_DELAY_SECONDS="1")
    stack.simulator.reset(Scenario(subusers=9, not_ready=1))
    day = days_ago(1)

    code, out, err = cli(capsys, "run", "--local", "--wait", "--date", day)

    assert code == 0
    assert f"exported      subusers {day}: 9 records, by a retry delivered from the queue" in out
    assert f"{day} (subusers): SendGrid answered 202; delivering the queued retries" in err
    assert len(day_lines(stack, day)) == 9
    assert stack.queue_counts() == {"visible": 0, "delayed": 0}


def test_kind_account_runs_checks_and_backfills_the_parent_accounts_own_day(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)

    ran, out, _ = cli(capsys, "run", "--local", "--kind", "account", "--date", day)
    checked, status, _ = cli_json(capsys, "status", "--kind", "all", "--date", day)
    queued, backfill, _ = cli_json(
        capsys, "backfill", "--local", "--kind", "account", "--from", day, "--to", days_ago(1)
    )

    assert ran == 0
    assert out.startswith(f"exported      account {day}: the parent account's own line")
    assert checked == 1  # the subusers' day was not exported
    assert [(k["kind"], k["exported"]) for k in status["kinds"]] == [("subusers", False), ("account", True)]
    assert queued == 0
    assert backfill["enqueued"] == [{"source": "default", "kind": "account", "date": days_ago(1)}]
    assert backfill["skipped_already_exported"] == [{"source": "default", "kind": "account", "date": day}]


def test_a_terminal_gets_a_table(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    day = days_ago(1)
    assert stack.invoke({"date": day})["status"] == "exported"
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # Rich: treat the captured stdout as a terminal

    code, out, _ = cli(capsys, "status", "--date", day)
    shown = re.sub(r"\x1b\[[0-9;]*m", "", out)  # styles aside

    assert code == 0
    assert f"{day} in s3://{stack.resources.bucket}" in shown
    assert "┃ kind" in shown  # a Rich table's header row
    assert "│ subusers │ yes" in shown
