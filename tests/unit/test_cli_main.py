"""The command line as one program, in process: its help and version, the shared options wherever
they stand, and the exit codes: a usage error exits 2 before any AWS call, a missing setting 3,
a refused AWS call 4. How answers are printed is in ``test_cli_output.py``.

AWS is never reached: ``fake_aws`` and ``aws_unreachable`` (``tests/unit/conftest.py``) give the
commands recording fakes of the clients, or clients that fail loudly.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from typing import Any

import pytest
from botocore.exceptions import NoCredentialsError

from seq_export.dates import RETENTION_DAYS, today_utc, yesterday_utc
from seq_export_cli.app import ENV_NAMES
from seq_export_cli.errors import EXIT_CODES
from seq_export_cli.main import cli as group
from seq_export_cli.options import DEFAULT_WAIT_TIMEOUT, Options, default_day
from tests.support import client_error, days_ago
from tests.support.cli import cli, only_entry
from tests.support.cli_fakes import (
    TWO_SOURCES,
    FakeAws,
)

#: Every command the program has, as registered on its Click group.
COMMANDS = sorted(group.commands)

SHARED_OPTIONS = ["--json", "--stack", "--region", "--profile"]

COMMAND_OPTIONS = {
    "run": ["--date", "--kind", "--source", "--local", "--verbose", "--wait", "--timeout"],
    "backfill": ["--from", "--to", "--kind", "--source", "--force", "--wait", "--timeout", "--local", "--verbose"],
    "status": ["--date", "--kind", "--source"],
    "report": ["--date", "--limit", "--source"],
    "sources": [],
    "lookup": ["USER_ID", "--username"],
    "low-scores": ["--max", "--limit"],
    "migrate-lake": ["--source", "--dry-run"],
    "dead-letters": ["--redrive", "--wait", "--timeout", "--local", "--verbose"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_commands_help_exits_0_and_names_its_options_and_the_shared_ones(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, command, "--help")

    assert code == 0
    assert out.startswith(f"Usage: seq-export {command} ")
    for option in [*COMMAND_OPTIONS.get(command, []), *SHARED_OPTIONS]:
        assert option in out, option
    assert err == ""


def test_the_programs_help_exits_0_and_lists_every_command_and_shared_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "--help")

    assert code == 0
    assert out.startswith("Usage: seq-export ")
    assert set(COMMAND_OPTIONS) <= set(COMMANDS)
    for name in [*COMMANDS, *SHARED_OPTIONS, "--version"]:
        assert name in out, name


def test_no_command_prints_the_programs_help_on_stdout_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys)

    assert code == 0
    assert out.startswith("Usage: seq-export ")
    assert all(name in out for name in COMMANDS)
    assert err == ""


def test_the_waits_default_timeout_and_the_default_day_are_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    run_help = " ".join(cli(capsys, "run", "--help")[1].split())  # Click wraps the help
    backfill_help = " ".join(cli(capsys, "backfill", "--help")[1].split())

    assert f"[default: {DEFAULT_WAIT_TIMEOUT:.0f}]" in run_help
    assert f"[default: {DEFAULT_WAIT_TIMEOUT:.0f}]" in backfill_help
    assert "[default: yesterday, UTC]" in run_help


def test_version_prints_the_program_and_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--version")

    assert code == 0
    assert out == f"seq-export {version('seq-export')}\n"


def test_the_exit_codes_table_covers_every_outcome_and_the_help_lists_it(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, "--help")

    assert set(EXIT_CODES) == {0, 1, 2, 3, 4, 130}
    help_text = " ".join(out.split())  # Click rewraps the epilog
    for code, meaning in EXIT_CODES.items():
        assert f"{code} {meaning.split(':')[0]}" in help_text
    assert all(name in help_text for name in ENV_NAMES.values())


SHARED = ["--json", "--stack", "prod", "--region", "eu-central-1", "--profile", "ops"]


@pytest.mark.parametrize(
    "argv",
    [
        [*SHARED, "status", "--date", "2026-11-22"],
        ["status", "--date", "2026-11-22", *SHARED],
        ["--json", "--stack", "prod", "status", "--region", "eu-central-1", "--date", "2026-11-22", "--profile", "ops"],
    ],
    ids=["before", "after", "mixed"],
)
def test_shared_options_before_or_after_the_command_are_the_same_options(
    argv: list[str], fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_aws.clients["s3"].put("custom/prefix/source=default/dt=2026-11-22/scores.jsonl")

    code, out, _ = cli(capsys, *argv)

    assert code == 0
    assert fake_aws.options == [Options(json=True, stack="prod", region="eu-central-1", profile="ops")]
    assert fake_aws.clients["cloudformation"].stacks == ["prod"]
    answer = only_entry(json.loads(out))  # --json: the one document, wherever it was given
    assert (answer["exported"], answer["bucket"], answer["records"]) == (True, "lake-bucket", 3)


def test_without_shared_options_the_target_is_the_environment_and_the_answer_plain_lines(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "status", "--date", "2026-11-22")

    assert code == 1
    assert fake_aws.options == [Options()]
    assert "cloudformation" not in fake_aws.asked
    assert out == (
        "not exported  subusers 2026-11-22: no object "
        "s3://env-bucket/seq/subuser_scores/source=default/dt=2026-11-22/scores.jsonl\n"
    )
    assert err == ""


def usage_cases() -> list[Any]:
    today, yesterday, old = today_utc().isoformat(), yesterday_utc().isoformat(), days_ago(RETENTION_DAYS + 10)
    later, earlier = days_ago(5), days_ago(10)
    return [
        pytest.param(["run", "--date", "yesterday"], ["--date", "YYYY-MM-DD", "'yesterday'"], id="malformed-day"),
        pytest.param(["run", "--date", "22.11.2026"], ["--date", "YYYY-MM-DD"], id="other-day-format"),
        pytest.param(["status", "--date", "2026-02-30"], ["--date", "not a calendar date"], id="no-such-day"),
        pytest.param(["status", "--date", "2999-01-01"], ["--date", "has not ended yet"], id="status-future-day"),
        pytest.param(["report", "--date", today_utc().isoformat()], ["--date", "has not ended yet"], id="report-today"),
        pytest.param(
            ["run", "--date", today], ["--date", "not a finished UTC day", f"newest allowed is {yesterday}"], id="today"
        ),
        pytest.param(["run", "--date", old], ["--date", f"{RETENTION_DAYS}-day window"], id="older-than-90-days"),
        pytest.param(["backfill", "--from", later, "--to", earlier], [f"--from {later} is after --to {earlier}"]),
        pytest.param(["backfill", "--from", earlier, "--to", today], ["--to", "not a finished UTC day"], id="to-today"),
        pytest.param(["backfill", "--from", earlier, "--to", later, "--timeout", "5"], ["--timeout applies to --wait"]),
        pytest.param(["backfill", "--from", earlier, "--to", later, "--wait", "--timeout", "0"], ["--timeout", "x>0"]),
        pytest.param(["low-scores", "--max", "0"], ["--max", "1 to 5", "'0'"], id="max-0"),
        pytest.param(["low-scores", "--max", "-1"], ["--max", "1 to 5", "'-1'"], id="max-negative"),
        pytest.param(["low-scores", "--max", "9"], ["--max", "1 to 5", "'9'"], id="max-9"),
        pytest.param(["low-scores", "--max", "abc"], ["--max", "1 to 5", "'abc'"], id="max-abc"),
        pytest.param(["low-scores", "--max", "nan"], ["--max", "1 to 5"], id="max-nan"),
        pytest.param(["low-scores", "--max", "2", "--limit", "0"], ["--limit", "x>=1"], id="limit-0"),
        pytest.param(["low-scores"], ["--max"], id="max-missing"),
        pytest.param(["lookup", ""], ["USER_ID", "must not be empty"], id="empty-user-id"),
        pytest.param(["lookup", "--username", "  "], ["--username", "must not be empty"], id="blank-username"),
        pytest.param(["lookup", "100001", "--username", "someone"], ["USER_ID or --username"], id="both"),
        pytest.param(["lookup"], ["USER_ID or --username"], id="neither"),
        pytest.param(["run", "--timeout", "3"], ["--timeout applies to --wait"], id="timeout-without-wait"),
        pytest.param(["run", "--local", "--stack", "x"], ["--local", "cannot be combined with --stack"]),
        pytest.param(["--stack", "x", "run", "--local"], ["--local", "cannot be combined with --stack"]),
        pytest.param(
            ["--stack", "x", "backfill", "--from", earlier, "--to", later, "--local"],
            ["--local", "cannot be combined with --stack"],
        ),
        pytest.param(["run", "--kind", "everyone"], ["--kind", "'everyone' is not one of"], id="unknown-kind"),
        pytest.param(["run", "--source", "Global_1"], ["--source", "a source name is"], id="malformed-source"),
        pytest.param(["status", "--source", "x" * 33], ["--source", "a source name is"], id="source-too-long"),
        *(
            pytest.param(
                [*argv, "--source", "eu"],
                ["--source: unknown source 'eu'; the configured sources are default (SEQ_SOURCES is not set)"],
                id=f"unknown-source-{argv[0]}",
            )
            for argv in (
                ["run", "--local"],
                ["run"],
                ["backfill", "--local", "--from", earlier, "--to", later],
                ["status"],
                ["report"],
                ["migrate-lake"],
            )
        ),
        pytest.param(["export"], ["No such command 'export'"], id="unknown-command"),
    ]


@pytest.mark.parametrize(("argv", "fragments"), usage_cases())
def test_a_usage_error_exits_2_naming_the_option_before_any_aws_call(
    argv: list[str], fragments: list[str], aws_unreachable: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, *argv)

    assert (code, out) == (2, "")
    for fragment in fragments:
        assert fragment in err, fragment
    assert "Traceback" not in err
    assert aws_unreachable == []


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--source", "us"],
        ["backfill", "--from", days_ago(5), "--to", days_ago(4), "--source", "us"],
        ["status", "--source", "us"],
        ["report", "--source", "us"],
        ["migrate-lake", "--source", "us", "--dry-run"],
    ],
    ids=lambda argv: argv[0],
)
def test_a_source_the_stack_does_not_have_exits_2_listing_the_configured_ones_before_any_aws_call(
    argv: list[str], aws_unreachable: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEQ_SOURCES", TWO_SOURCES)

    code, out, err = cli(capsys, *argv)

    assert (code, out) == (2, "")
    assert err.startswith(f"Usage: seq-export {argv[0]} ")  # as Click shows its own usage errors
    assert err.endswith(
        "\nError: --source: unknown source 'us'; the configured sources are global, eu (from SEQ_SOURCES)\n"
    )
    assert aws_unreachable == []


def test_a_missing_variable_exits_3_naming_it_before_any_aws_call(
    aws_unreachable: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LATEST_SCORES_TABLE")

    code, out, err = cli(capsys, "lookup", "100001")

    assert (code, out) == (3, "")
    assert err == "seq-export: LATEST_SCORES_TABLE is not set; set it, or point at a deployed stack with --stack NAME\n"
    assert aws_unreachable == []


def test_the_default_day_is_yesterday_utc() -> None:
    before = yesterday_utc().isoformat()
    day = default_day()
    after = yesterday_utc().isoformat()

    assert day in {before, after}  # the same day unless this runs across midnight UTC


def test_an_s3_refusal_exits_4_naming_the_call(fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    fake_aws.clients["s3"].refusal = client_error("AccessDenied", "HeadObject")

    code, out, err = cli(capsys, "status", "--date", "2026-11-22")

    assert (code, out) == (4, "")
    assert err == (
        "seq-export: S3 HeadObject of s3://env-bucket/seq/subuser_scores/source=default/dt=2026-11-22/scores.jsonl "
        "failed: "
        "AccessDenied: AccessDenied from the fake\n"
    )


def test_no_credentials_is_a_configuration_error_exit_3(fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    fake_aws.clients["s3"].refusal = NoCredentialsError()

    code, out, err = cli(capsys, "status", "--date", "2026-11-22")

    assert (code, out) == (3, "")
    assert "Unable to locate credentials" in err
