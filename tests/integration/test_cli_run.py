"""``seq-export run``, in process against moto server and the SEQ simulator: ``--local`` runs the
handler in this process, without it the deployed function is invoked; its summary and
progress, the default day, ``--wait``, ``--kind`` and ``--source``.
"""

from __future__ import annotations

import pytest

from local.seq_simulator import Scenario
from seq_export import wiring
from seq_export.dates import export_window, today_utc
from tests.support import Stack, days_ago
from tests.support.cli import TWO_SOURCE_NAMES, cli, cli_json, day_lines, days_with, object_key, only_entry

pytestmark = pytest.mark.integration


def test_run_local_exports_the_day_and_prints_the_functions_summary_as_json(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=30))
    day = days_ago(2)

    code, answer, _ = cli_json(capsys, "run", "--local", "--date", day)

    assert code == 0
    summary = only_entry(answer)
    assert (summary["status"], summary["date"], summary["records"]) == ("exported", day, 30)
    assert len(day_lines(stack, day)) == 30


def test_run_local_prints_a_human_summary_and_keeps_the_functions_logs_off_stdout(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=12))
    day = days_ago(1)

    code, out, _ = cli(capsys, "run", "--date", day, "--local")

    assert code == 0
    assert f"exported      subusers {day}: 12 records" in out
    assert f"s3://{stack.resources.bucket}/{object_key(stack, day)}" in out
    assert '"level"' not in out  # no JSON log line of the function
    assert "CloudWatchMetrics" not in out  # no EMF blob


def test_run_local_that_sendgrid_answers_202_exits_1_saying_not_exported(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=5, not_ready=1))
    day = days_ago(1)

    code, answer, err = cli_json(capsys, "run", "--local", "--date", day)

    assert code == 1
    assert only_entry(answer)["status"] == "not_ready"
    assert "nothing delivers the retry queue locally: `seq-export run --local --wait`" in err
    assert stack.queue_counts()["delayed"] + stack.queue_counts()["visible"] == 1


def test_run_local_without_the_functions_environment_is_a_configuration_error_naming_the_variable(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEQ_API_KEY_SECRET_ID")
    wiring.use_dependencies(None)  # a fresh process: the function reads its environment

    code, out, err = cli(capsys, "run", "--local", "--date", days_ago(1))

    assert code == 3
    assert out == ""
    assert "SEQ_API_KEY_SECRET_ID" in err
    assert "Traceback" not in err


def test_run_without_a_function_name_is_a_configuration_error_naming_the_variable(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEQ_EXPORT_FUNCTION", raising=False)

    code, _, err = cli(capsys, "run", "--date", days_ago(1))

    assert code == 3
    assert "SEQ_EXPORT_FUNCTION is not set; set it, or point at a deployed stack with --stack NAME" in err
    assert "--local" in err


def test_run_against_a_function_that_does_not_exist_exits_4_with_one_line_naming_it(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEQ_EXPORT_FUNCTION", "no-such-export-function")

    code, out, err = cli(capsys, "run", "--date", days_ago(1))

    assert code == 4
    assert out == ""
    assert err.count("\n") == 1
    assert "Lambda Invoke of function no-such-export-function failed: ResourceNotFoundException" in err


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

    assert (ran, only_entry(summary)["status"], only_entry(summary)["date"]) == (0, "exported", days_ago(1))
    assert (checked, status["date"], only_entry(status)["exported"]) == (0, days_ago(1), True)


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
    (default,) = status["sources"]
    assert [(k["kind"], k["exported"]) for k in default["kinds"]] == [("subusers", False), ("account", True)]
    assert queued == 0
    assert days_with(backfill, "enqueued") == [{"source": "default", "kind": "account", "date": days_ago(1)}]
    assert days_with(backfill, "already exported") == [{"source": "default", "kind": "account", "date": day}]


def test_run_without_source_exports_every_source_one_section_each(
    two_sources: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)

    code, out, _ = cli(capsys, "run", "--local", "--date", day)

    assert code == 0
    sections = out.split("\n\n")
    assert [section.splitlines()[0] for section in sections] == ["source        global", "source        eu"]
    for name, section in zip(TWO_SOURCE_NAMES, sections, strict=True):
        assert f"exported      subusers {day}: 12 records" in section
        assert f"s3://{two_sources.resources.bucket}/{object_key(two_sources, day, source=name)}" in section
        lines = day_lines(two_sources, day, source=name)
        assert len(lines) == 12
        assert {line["source"] for line in lines} == {name}


def test_run_with_source_exports_that_source_only_in_the_same_shape_as_every_source(
    two_sources: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)

    code, one, _ = cli_json(capsys, "run", "--local", "--date", day, "--source", "eu")
    _, both, _ = cli_json(capsys, "run", "--local", "--date", days_ago(3))

    assert code == 0
    assert (one["date"], [s["source"] for s in one["sources"]]) == (day, ["eu"])
    summary = only_entry(one)
    assert (summary["status"], summary["source"], summary["date"], summary["records"]) == ("exported", "eu", day, 12)
    assert summary["s3_key"] == object_key(two_sources, day, source="eu")
    assert [key for key in two_sources.data_keys() if day in key] == [object_key(two_sources, day, source="eu")]
    assert both["date"] == days_ago(3)
    assert [(s["source"], [k["status"] for k in s["kinds"]]) for s in both["sources"]] == [
        ("global", ["exported"]),
        ("eu", ["exported"]),
    ]
