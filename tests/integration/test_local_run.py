"""`make run` / `python -m local.run`: what an operator sees, from a process of its own (moto and
the SEQ simulator on port 0 of 127.0.0.1), and its usage errors, help and `--keep` banner; with
`--sources 2`, two sources on two simulated hosts, each reached with its own key."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import local.run as runner
import local.stack
from local.seq_simulator import ACCOUNT_SCORES_PATH, SeqSimulator
from seq_export.config import Env, Settings
from seq_export.dates import export_window, today_utc, yesterday_utc
from seq_export.layout import DEFAULT_PREFIX, day_key
from seq_export_cli.app import ENV_NAMES, Target

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
#: What `make run` passes; cleared so that the caller's shell does not change a run.
RUNNER_VARIABLES = (
    "DATE",
    "SUBUSERS",
    "SOURCES",
    "NOT_READY",
    "DELAY",
    "MAX_ATTEMPTS",
    "PAGE_SIZE",
    "VERBOSE",
    "KEEP",
    "ENV_FILE",
)
COMMAND = [sys.executable, "-m", "local.run"]
#: A run takes a few seconds; one that takes this long is stuck, and is killed.
RUN_SECONDS = 120
#: How long `--keep` may take to stop once signalled.
STOP_SECONDS = 30


def runner_env(**variables: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in RUNNER_VARIABLES}
    return {**env, **variables}


def local_run(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [*COMMAND, *args],
        cwd=ROOT,
        env=runner_env(**variables),
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )


def ignore_ctrl_c() -> None:
    """In the child before it starts: SIGINT ignored, as a shell starts a background job."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def kept_then_stopped(
    signals: Sequence[signal.Signals],
    *args: str,
    ctrl_c_ignored: bool = False,
    while_up: Callable[[list[str]], None] | None = None,
    **variables: str,
) -> tuple[int, signal.Signals, list[str], str]:
    """Run `local.run --keep` (and ``args``) until its whole banner, call ``while_up`` with the
    banner's lines while the stack is up, then send ``signals`` one by one, each given
    ``STOP_SECONDS`` to end the process; returns its exit code, the signal that stopped it, the
    lines it printed and its stderr. A process that none of them stops, or that never prints the
    banner, is killed and the test fails."""
    output: list[str] = []
    with subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [*COMMAND, "--keep", *args],
        cwd=ROOT,
        env=runner_env(**variables),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,  # a quiet run writes none: the pipe cannot fill before the end
        text=True,
        preexec_fn=ignore_ctrl_c if ctrl_c_ignored else None,  # noqa: PLW1509 - no threads started in between
    ) as process:
        watchdog = threading.Timer(RUN_SECONDS, process.kill)  # a run stuck before its banner
        watchdog.start()
        try:
            assert process.stdout is not None
            assert process.stderr is not None
            for line in process.stdout:  # the banner is written at once, then the stack waits
                output.append(line)
                if " backfill --local " in line:  # the banner's last line
                    break
            if while_up is not None:
                try:
                    while_up("".join(output).splitlines())
                except BaseException:
                    process.kill()  # a failed check leaves no stack behind, nor a wait on it
                    raise
            for signum in signals:
                process.send_signal(signum)
                try:
                    process.wait(timeout=STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    continue
                output.append(process.stdout.read())  # the rest of the banner, and the last line
                return process.returncode, signum, "".join(output).splitlines(), process.stderr.read()
            process.kill()
            process.wait(timeout=STOP_SECONDS)
            pytest.fail(f"`local.run --keep` did not stop on {[s.name for s in signals]}; killed")
        finally:
            watchdog.cancel()


def usage(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = runner.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def labelled(lines: list[str], label: str) -> str:
    """The text of the first line with ``label`` in the report's first column."""
    return next(line[len(label) :].strip() for line in lines if line.startswith(f"{label:<13} "))


def key_of(source: str, day: str) -> str:
    return day_key(DEFAULT_PREFIX, source, day)


def report_sections(lines: list[str]) -> dict[str, list[str]]:
    """The report's lines by the source that heads them (``source        NAME (...)``)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith("source        "):
            current = sections.setdefault(line.split()[1], [])
        elif current is not None:
            current.append(line)
    return sections


@pytest.fixture
def clean_runner_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in RUNNER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# -- 1. quiet by default, the function's output on stderr with --verbose ------------------------
def test_a_run_without_verbose_shows_nothing_of_the_functions_logs_or_metrics() -> None:
    day = str(yesterday_utc())

    result = local_run(SUBUSERS="20", DELAY="0")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"exported      {day}: 20 records" in result.stdout
    answer = json.loads(labelled(lines, "answer"))  # the single source `default`, named in answer and lines
    assert (answer["status"], answer["source"], answer["s3_key"]) == ("exported", "default", key_of("default", day))
    assert f"/{key_of('default', day)} (" in labelled(lines, "S3 object")
    assert next(iter(json.loads(labelled(lines, "first line")))) == "source"
    assert json.loads(labelled(lines, "first line"))["source"] == "default"
    assert not [line for line in lines if line.startswith(("source ", "host "))]  # as a single-source stack
    assert not [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert "CloudWatchMetrics" not in result.stdout + result.stderr
    assert result.stderr == ""


def test_verbose_sends_the_functions_json_logs_and_emf_metrics_to_stderr_not_stdout() -> None:
    result = local_run("--verbose", SUBUSERS="20", DELAY="0")

    assert result.returncode == 0, result.stderr
    assert not [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert '"message":"Day exported"' in result.stderr
    assert '"ColdStart":[1.0]' in result.stderr


# -- 2. every option and variable is checked before anything starts -----------------------------
@pytest.mark.parametrize(
    ("variable", "value", "option"),
    [
        ("SOURCES", "3", "--sources"),
        ("SOURCES", "0", "--sources"),
        ("SOURCES", "two", "--sources"),
        ("SUBUSERS", "abc", "--subusers"),
        ("SUBUSERS", "-5", "--subusers"),
        ("SUBUSERS", "0", "--subusers"),
        ("NOT_READY", "-1", "--not-ready"),
        ("DELAY", "-1", "--delay"),
        ("DELAY", "two", "--delay"),
        ("MAX_ATTEMPTS", "0", "--max-attempts"),
        ("PAGE_SIZE", "0", "--page-size"),
        ("PAGE_SIZE", "1001", "--page-size"),
        ("DATE", "2026-13-01", "--date"),
        ("DATE", "22.11.2026", "--date"),
    ],
)
def test_a_bad_variable_is_a_one_line_usage_error_naming_option_and_variable(
    clean_runner_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, option: str
) -> None:
    clean_runner_env.setenv(variable, value)

    code, out, err = usage(capsys)

    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1
    assert f"'{option}' (env var: '{variable}')" in errors[0]
    assert "Traceback" not in err
    assert "moto server" not in out


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--subusers", "abc"], "Error: Invalid value for '--subusers'"),
        (["--sources", "3"], "Error: Invalid value for '--sources' (env var: 'SOURCES')"),  # one or two only
    ],
    ids=["subusers-not-a-number", "three-sources"],
)
def test_a_bad_option_on_the_command_line_is_a_usage_error_naming_it_and_its_variable(
    clean_runner_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    code, out, err = usage(capsys, *argv)

    assert code == 2
    assert error in err
    assert "moto server" not in out


@pytest.mark.parametrize(
    "day", [today_utc(), today_utc() + timedelta(days=1), export_window(today_utc())[0] - timedelta(days=1)]
)
def test_a_day_outside_the_exportable_window_is_refused_up_front_with_the_allowed_range(
    clean_runner_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], day: object
) -> None:
    clean_runner_env.setenv("DATE", str(day))
    oldest, newest = export_window(today_utc())

    code, out, err = usage(capsys)

    assert code == 2
    assert f"days from {oldest} to {newest} (UTC) can be exported" in err
    assert "moto server" not in out


# -- 3. help --------------------------------------------------------------------------------
def test_help_describes_every_option_and_names_its_environment_variable(
    clean_runner_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    options = [param for param in runner.run.params if param.name != "help"]

    code, out, _ = usage(capsys, "--help")

    assert code == 0
    text = " ".join(out.split())
    assert {str(param.envvar) for param in options} >= set(RUNNER_VARIABLES)  # every variable `make run` passes
    for param in options:
        assert getattr(param, "help", None), param.name
        assert f"[env var: {param.envvar}" in text, param.name


# -- 4. --keep ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sources", "names", "subusers"), [("1", ("default",), ["100001"]), ("2", ("global", "eu"), ["100001", "900001"])]
)
def test_keep_prints_every_variable_the_cli_needs_and_sends_run_and_backfill_to_local(
    sources: str, names: tuple[str, ...], subusers: list[str]
) -> None:
    # Ctrl-C; and should this process have started with Ctrl-C ignored (a background job), SIGTERM
    code, _, banner, _ = kept_then_stopped([signal.SIGINT, signal.SIGTERM], SUBUSERS="20", DELAY="0", SOURCES=sources)

    exported = exported_by(banner)  # as a shell that pastes the lines would set them
    function_variable = ENV_NAMES["function_name"]
    assert code == 0
    assert banner[-1] == "stopping the local stack"
    optional = {function_variable, Env.SEQ_SOURCES}  # one source: no SEQ_SOURCES, as a single-source stack
    assert {name for name in ENV_NAMES.values() if name not in optional} <= exported.keys()
    assert function_variable not in exported
    assert any(function_variable in line and "--local" in line for line in banner)
    target = Target.from_env(exported)
    assert all(target.need(field) for field in ("bucket", "table", "queue_url"))
    assert Settings.from_env(exported).scores_bucket == target.bucket  # `--local` has the function's environment
    assert (Env.SEQ_SOURCES in exported) is (len(names) > 1)
    assert Settings.from_env(exported).source_names == target.sources == names
    assert exported["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    invocations = [line for line in banner if "seq-export run " in line or "seq-export backfill " in line]
    assert len(invocations) == 2
    assert all("--local" in line for line in invocations)
    assert [line.split()[-1] for line in banner if "seq-export lookup " in line] == subusers


def exported_by(lines: Sequence[str]) -> dict[str, str]:
    """The variables of ``export NAME=value`` lines, as a shell that runs them sets them."""
    found = {}
    for line in lines:
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = " ".join(shlex.split(value))
    return found


def test_keep_with_env_file_writes_every_variable_for_another_shell_from_any_directory(tmp_path: Path) -> None:
    env_file = tmp_path / "local.env"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    day = str(yesterday_utc())
    seen: dict[str, Any] = {}

    def another_shell(banner: list[str]) -> None:
        # a clean shell, in another directory, that loads the file and runs the status line the banner suggests
        status_line = next(line.strip() for line in banner if " status --date " in line)
        seen["file"] = env_file.read_text(encoding="utf-8")
        seen["mode"] = env_file.stat().st_mode & 0o777
        seen["status"] = subprocess.run(  # noqa: S603 - bash running our own file and command
            ["/bin/bash", "-c", f". {shlex.quote(str(env_file))} && {status_line}"],
            cwd=elsewhere,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=RUN_SECONDS,
            check=False,
        )

    code, _, banner, _ = kept_then_stopped(
        [signal.SIGTERM], "--env-file", str(env_file), while_up=another_shell, SUBUSERS="20", DELAY="0"
    )

    assert code == 0
    assert exported_by(seen["file"].splitlines()) == exported_by(banner)
    assert seen["mode"] == 0o600
    assert any(f"`. {env_file}`" in line for line in banner)
    status = seen["status"]
    assert status.returncode == 0, status.stderr
    assert day in status.stdout
    examples = banner[next(i for i, line in enumerate(banner) if line.endswith("For example:")) + 1 :]
    suggested = [line.split()[0] for line in examples if line.startswith("  ")]
    assert len(suggested) == 5
    assert all(Path(command).is_absolute() for command in suggested)


def test_keep_banner_warns_that_its_fake_credentials_override_the_shells_own() -> None:
    code, _, banner, _ = kept_then_stopped([signal.SIGTERM], SUBUSERS="20", DELAY="0")

    assert code == 0
    warning = next(line for line in banner if line.startswith("Warning:"))
    assert all(name in warning for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"))
    assert "override that shell's own AWS credentials" in warning


def test_env_file_without_keep_is_a_usage_error(
    clean_runner_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = usage(capsys, "--env-file", str(tmp_path / "local.env"))

    assert code == 2
    assert "--env-file needs --keep" in err
    assert not (tmp_path / "local.env").exists()
    assert "moto server" not in out


def test_an_unknown_option_lists_the_real_options_instead_of_a_guess_by_spelling(
    clean_runner_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = usage(capsys, "--bogus")

    assert code == 2
    error = next(line for line in err.splitlines() if line.startswith("Error:"))
    assert "No such option '--bogus'" in error
    assert "Did you mean" not in err
    assert "Possible options" not in err
    for param in runner.run.params:
        assert all(name in error for name in param.opts if name.startswith("--")), param.name
    assert "moto server" not in out


def test_keep_stops_on_sigterm_as_on_ctrl_c_even_when_ctrl_c_is_ignored() -> None:
    code, stopped_by, banner, err = kept_then_stopped([signal.SIGTERM], ctrl_c_ignored=True, SUBUSERS="20", DELAY="0")

    assert (code, stopped_by) == (0, signal.SIGTERM)
    assert banner[-1] == "stopping the local stack"
    assert err == ""


# -- 5. one line per delivered message: kind, date, attempt and what became of it --------------
def test_each_delivered_message_says_which_job_it_was_and_what_became_of_it() -> None:
    day = yesterday_utc()

    result = local_run(SUBUSERS="20", NOT_READY="2", DELAY="0")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"outcome       subusers {day} attempt 1: not ready (202), re-scheduled in 0 s" in lines
    assert [line for line in lines if line.startswith("queued job")] == [
        f"queued job    account {day} attempt 1: exported",
        f"queued job    subusers {day} attempt 2: not ready (202), re-scheduled in 0 s",
        f"queued job    subusers {day} attempt 3: exported 20 records",
    ]
    assert f"account       {day}: exported" in lines
    assert "SQS event     handled" not in result.stdout


def test_a_run_of_one_date_says_the_account_day_was_not_part_of_it() -> None:
    day = yesterday_utc() - timedelta(days=2)

    result = local_run(SUBUSERS="20", DELAY="0", DATE=str(day))

    assert result.returncode == 0, result.stderr
    assert f'account       {day}: not exported: a {{"date": D}} event exports the subusers\' day only' in (
        result.stdout.splitlines()
    )
    assert "queued job" not in result.stdout


def test_a_day_still_not_ready_at_the_last_attempt_says_it_gave_up_and_exits_1() -> None:
    day = yesterday_utc()

    result = local_run(SUBUSERS="20", NOT_READY="5", MAX_ATTEMPTS="2", DELAY="0")

    assert result.returncode == 1
    assert (
        f"queued job    subusers {day} attempt 2: not ready (202) and out of attempts: gave up; "
        "the dead-letter message is the job anew, at attempt 1"
    ) in result.stdout.splitlines()
    assert f"NOT EXPORTED  {day}" in result.stderr
    assert f"dead letter   default subusers {day}: gave_up_not_ready" in result.stderr.splitlines()


# -- 6. several sources: one host and one key each, one report section each ---------------------
class RecordedHost(SeqSimulator):
    """A simulated host that keeps its address, and its request log, once stopped."""

    address = ""

    def start(self) -> str:
        self.address = super().start()
        return self.address


def test_two_sources_export_both_days_and_each_host_serves_only_its_own_keys_account(
    clean_runner_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hosts: list[RecordedHost] = []

    def recorded(*args: Any, **kwargs: Any) -> RecordedHost:
        host = RecordedHost(*args, **kwargs)
        hosts.append(host)
        return host

    clean_runner_env.setattr(local.stack, "SeqSimulator", recorded)
    day = str(yesterday_utc())

    code, out, err = usage(capsys, "--sources", "2", "--subusers", "20", "--delay", "0")

    assert code == 0, err
    lines = out.splitlines()
    # global's subusers' day inline; global's account day and eu's subusers' day queued, each line naming its source
    assert labelled(lines, "outcome") == f"global subusers {day} attempt 1: exported 20 records"
    assert sorted(line for line in lines if line.startswith("queued job")) == [
        f"queued job    eu subusers {day} attempt 1: exported 4 records",
        f"queued job    global account {day} attempt 1: exported",
    ]
    # two hosts, each reached only with its own source's key, for its own parent account
    global_host, eu_host = hosts
    assert global_host.address != eu_host.address
    assert global_host.api_key != eu_host.api_key
    assert {request["account"] for request in global_host.requests} == {"global"}
    assert {request["account"] for request in eu_host.requests} == {"eu"}
    assert [request["path"] for request in global_host.requests].count(ACCOUNT_SCORES_PATH) == 1
    assert ACCOUNT_SCORES_PATH not in {request["path"] for request in eu_host.requests}
    assert global_host.api_key not in out + err
    assert eu_host.api_key not in out + err
    # one report section per source, in SEQ_SOURCES' order
    sections = report_sections(lines)
    assert list(sections) == ["global", "eu"]
    for host, name, records, first_user_id in ((global_host, "global", 20, "100001"), (eu_host, "eu", 4, "900001")):
        section = sections[name]
        assert labelled(section, "exported").startswith(f"{day}: {records} records")
        served = labelled(section, "host")
        assert served.startswith(f"{host.address} served {len(host.requests)} request")
        assert served.endswith(f": {len(host.requests)} with account {name}'s key")
        assert f"/{key_of(name, day)} (" in labelled(section, "S3 object")
        first = json.loads(labelled(section, "first line"))
        assert (next(iter(first)), first["source"], first["user_id"]) == ("source", name, first_user_id)
    assert labelled(sections["global"], "account") == f"{day}: exported"
    assert labelled(sections["eu"], "account") == f"{day}: not exported: source eu has account_scores off"
