"""The command line's pure parts: parsing, target resolution, progress, waiting, answers."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from seq_export_cli.app import Target
from seq_export_cli.commands import backfill_event
from seq_export_cli.errors import ServiceError, TargetConfigError
from seq_export_cli.invoke import invoke_function
from seq_export_cli.main import main, parse_args
from seq_export_cli.s3_objects import count_lines
from seq_export_cli.scores import sort_by_score, subuser
from seq_export_cli.waiting import (
    DEFAULT_WAIT_TIMEOUT,
    DayWatcher,
    ProgressBar,
    poll_until_exported,
    render_progress,
)

COMMANDS = ["run", "backfill", "lookup", "low-scores", "status"]
FULL_OUTPUTS = [
    {"OutputKey": "ScoresBucketName", "OutputValue": "lake-bucket"},
    {"OutputKey": "ScoresPrefix", "OutputValue": "custom/prefix"},
    {"OutputKey": "LatestScoresTableName", "OutputValue": "latest-table"},
    {"OutputKey": "RetryQueueUrl", "OutputValue": "https://sqs.eu-west-1.amazonaws.com/1/retry"},
    {"OutputKey": "ExportFunctionName", "OutputValue": "seq-export-export"},
    {"OutputKey": "GlueTableName", "OutputValue": "subuser_scores"},
]


# -- parsing ----------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_every_command_has_help_that_exits_0(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*command, "--help"])

    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"usage: seq-export {' '.join(command)}".rstrip())
    assert "--json" in out


def test_json_and_stack_are_accepted_before_or_after_the_command() -> None:
    before = parse_args(["--json", "--stack", "prod", "status", "--date", "2026-11-22"])
    after = parse_args(["status", "--date", "2026-11-22", "--json", "--stack", "prod"])
    neither = parse_args(["status", "--date", "2026-11-22"])

    assert (before.json, before.stack) == (True, "prod")
    assert (after.json, after.stack) == (True, "prod")
    assert (bool(neither.json), neither.stack) == (False, None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required: COMMAND"),
        (["status"], "--date"),
        (["run", "--date", "2026-02-30"], "not a calendar date"),
        (["run", "--date", "22.11.2026"], "expected a day YYYY-MM-DD"),
        (["backfill", "--from", "2026-11-20", "--to", "2026-11-10"], "--from 2026-11-20 is after --to 2026-11-10"),
        (["backfill", "--from", "2026-11-10", "--to", "2026-11-20", "--timeout", "5"], "--timeout applies to --wait"),
        (["backfill", "--from", "2026-11-10", "--to", "2026-11-20", "--wait", "--timeout", "0"], "positive"),
        (["run", "--local", "--stack", "prod", "--date", "2026-11-22"], "cannot be combined with --stack"),
        (["lookup"], "one of the arguments USER_ID --username is required"),
        (["lookup", "100001", "--username", "someone"], "not allowed with"),
        (["low-scores", "--max", "low"], "expected a number"),
        (["low-scores", "--max", "nan"], "finite"),
        (["low-scores", "--max", "2", "--limit", "0"], "positive integer"),
        (["export"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2_with_argparses_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(argv)

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert message in captured.err


def test_backfill_defaults() -> None:
    args = parse_args(["backfill", "--from", "2026-11-10", "--to", "2026-11-20", "--wait"])

    assert (args.first, args.last, args.force, args.wait, args.local) == (
        "2026-11-10",
        "2026-11-20",
        False,
        True,
        False,
    )
    assert args.timeout == DEFAULT_WAIT_TIMEOUT


def test_backfill_event_carries_force_only_when_asked() -> None:
    assert backfill_event("2026-11-10", "2026-11-12") == {"from": "2026-11-10", "to": "2026-11-12"}
    assert backfill_event("2026-11-10", "2026-11-12", force=True) == {
        "from": "2026-11-10",
        "to": "2026-11-12",
        "force": True,
    }


# -- target -------------------------------------------------------------------------------------
def test_target_from_stack_outputs_takes_every_value_by_output_name() -> None:
    target = Target.from_outputs("prod", FULL_OUTPUTS)

    assert target == Target(
        origin="stack prod",
        stack="prod",
        bucket="lake-bucket",
        prefix="custom/prefix",
        table="latest-table",
        queue_url="https://sqs.eu-west-1.amazonaws.com/1/retry",
        function_name="seq-export-export",
    )
    assert target.key_for("2026-11-22") == "custom/prefix/dt=2026-11-22/scores.jsonl"


def test_a_missing_stack_output_is_a_configuration_error_naming_the_output() -> None:
    outputs = [o for o in FULL_OUTPUTS if o["OutputKey"] != "ExportFunctionName"]
    target = Target.from_outputs("prod", outputs)

    assert target.need("table") == "latest-table"
    with pytest.raises(TargetConfigError, match="stack prod has no output ExportFunctionName") as caught:
        target.need("function_name")
    assert caught.value.exit_code == 3


def test_target_from_the_environment_uses_the_functions_variable_names_and_default_prefix() -> None:
    target = Target.from_env({"SCORES_BUCKET": "b", "LATEST_SCORES_TABLE": "t", "SEQ_EXPORT_FUNCTION": "f"})

    assert (target.need("bucket"), target.need("table"), target.need("function_name")) == ("b", "t", "f")
    assert target.key_for("2026-11-22") == "seq/subuser_scores/dt=2026-11-22/scores.jsonl"
    with pytest.raises(TargetConfigError, match="RETRY_QUEUE_URL is not set"):
        target.need("queue_url")


def test_blank_variables_count_as_missing_and_prefix_slashes_are_trimmed() -> None:
    target = Target.from_env({"SCORES_BUCKET": "  ", "SCORES_PREFIX": "/lake/seq/"})

    assert target.prefix == "lake/seq"
    with pytest.raises(TargetConfigError, match="SCORES_BUCKET is not set"):
        target.need("bucket")


def test_a_malformed_prefix_is_a_configuration_error() -> None:
    with pytest.raises(TargetConfigError, match="SCORES_PREFIX"):
        Target.from_env({"SCORES_PREFIX": "a//b"})


# -- progress -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("done", "total", "expected"),
    [
        (0, 4, "[----------] 0/4 days exported"),
        (1, 4, "[##--------] 1/4 days exported"),
        (3, 4, "[#######---] 3/4 days exported"),
        (4, 4, "[##########] 4/4 days exported"),
        (0, 0, "[##########] 0/0 days exported"),
    ],
)
def test_progress_bar_rendering(done: int, total: int, expected: str) -> None:
    assert render_progress(done, total, width=10) == expected


def test_progress_bar_writes_a_line_per_change_when_not_a_terminal() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, 2)

    for done in (0, 0, 1, 1, 2):
        bar.update(done)
    bar.close()

    assert stream.getvalue().splitlines() == [render_progress(0, 2), render_progress(1, 2), render_progress(2, 2)]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_redraws_in_place_on_a_terminal() -> None:
    stream = Terminal()
    bar = ProgressBar(stream, 2)

    bar.update(1)
    bar.update(2)
    bar.close()

    assert stream.getvalue() == f"\r{render_progress(1, 2)}\r{render_progress(2, 2)}\n"


# -- waiting for days (fake S3 and clock: no sleeping) ----------------------------------------------
def not_found(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, operation)


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[str, str] = {}
        self.heads: list[str] = []

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.heads.append(Key)
        if Key not in self.objects:
            raise not_found("HeadObject")
        return {"ETag": self.objects[Key], "LastModified": "2026-11-23T06:00:00Z"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep: list[Any] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep.pop(0)()


def keys(*days: str) -> dict[str, str]:
    return {day: f"p/dt={day}/scores.jsonl" for day in days}


def test_polling_waits_until_every_days_object_exists() -> None:
    s3, clock, stream = FakeS3(), FakeClock(), io.StringIO()
    s3.objects[keys("2026-11-20")["2026-11-20"]] = '"a"'
    clock.on_sleep = [lambda: s3.objects.update({keys("2026-11-21")["2026-11-21"]: '"b"'})]
    watcher = DayWatcher(s3, "bucket", keys("2026-11-20", "2026-11-21"), {})

    outcome = poll_until_exported(
        watcher, ProgressBar(stream, 2), timeout=60, clock=clock, sleep=clock.sleep, interval=5
    )

    assert outcome == "exported"
    assert clock.sleeps == [5]
    assert stream.getvalue().splitlines() == [render_progress(1, 2), render_progress(2, 2)]
    assert s3.heads.count(keys("2026-11-20")["2026-11-20"]) == 1  # an exported day is not asked again


def test_polling_gives_up_at_the_timeout_naming_the_missing_days() -> None:
    s3, clock = FakeS3(), FakeClock()
    watcher = DayWatcher(s3, "bucket", keys("2026-11-20", "2026-11-21"), {})

    outcome = poll_until_exported(
        watcher, ProgressBar(io.StringIO(), 2), timeout=12, clock=clock, sleep=clock.sleep, interval=5
    )

    assert outcome == "timeout"
    assert clock.sleeps == [5, 5, 2]
    assert watcher.pending == ["2026-11-20", "2026-11-21"]


def test_with_force_an_existing_object_counts_only_once_it_is_replaced() -> None:
    s3 = FakeS3()
    key = keys("2026-11-20")["2026-11-20"]
    s3.objects[key] = '"old"'
    watcher = DayWatcher(s3, "bucket", {"2026-11-20": key}, {"2026-11-20": ('"old"', "2026-11-23T06:00:00Z")})

    assert watcher.refresh() == 0
    s3.objects[key] = '"new"'
    assert watcher.refresh() == 1


def test_an_s3_refusal_while_waiting_is_a_service_error() -> None:
    class Denied(FakeS3):
        def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")

    watcher = DayWatcher(Denied(), "bucket", keys("2026-11-20"), {})

    with pytest.raises(ServiceError, match=r"S3 HeadObject of s3://bucket/p/dt=2026-11-20/scores.jsonl failed: 403"):
        watcher.refresh()


# -- the function's answer ----------------------------------------------------------------------
class FakeLambda:
    def __init__(self, payload: bytes, function_error: str | None = None) -> None:
        self.payload = payload
        self.function_error = function_error
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        answer: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(self.payload)}
        if self.function_error:
            answer["FunctionError"] = self.function_error
        return answer


def test_invoke_is_synchronous_and_returns_the_summary() -> None:
    fake = FakeLambda(b'{"status": "exported", "date": "2026-11-22"}')

    answer = invoke_function(fake, "seq-export-export", {"date": "2026-11-22"})

    assert answer == {"status": "exported", "date": "2026-11-22"}
    [call] = fake.calls
    assert call["InvocationType"] == "RequestResponse"
    assert json.loads(call["Payload"]) == {"date": "2026-11-22"}


def test_a_function_error_becomes_one_line_naming_the_function_and_the_error() -> None:
    payload = {"errorType": "InvalidEventError", "errorMessage": "backfill 'from' is after 'to'\nsecond line"}
    fake = FakeLambda(json.dumps(payload).encode(), function_error="Unhandled")

    with pytest.raises(ServiceError) as caught:
        invoke_function(fake, "seq-export-export", {"from": "2026-11-22", "to": "2026-11-20"})

    assert str(caught.value) == (
        "function seq-export-export failed: InvalidEventError: backfill 'from' is after 'to' second line"
    )
    assert caught.value.exit_code == 4


def test_a_function_timeout_without_a_json_payload_is_still_reported() -> None:
    fake = FakeLambda(b"Task timed out after 900.00 seconds", function_error="Unhandled")

    with pytest.raises(ServiceError, match="function f failed: Unhandled: Task timed out"):
        invoke_function(fake, "f", {"date": "2026-11-22"})


# -- small pieces ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([], 0),
        ([b""], 0),
        ([b'{"a": 1}\n', b'{"a": 2}\n'], 2),
        ([b'{"a": 1}\n{"a"', b": 2}"], 2),  # last line without a newline
        ([b"\n"], 1),
    ],
)
def test_count_lines_of_a_streamed_body(chunks: list[bytes], lines: int) -> None:
    assert count_lines(chunks) == lines


def test_items_become_the_printed_fields_with_exact_numbers() -> None:
    item = {
        "user_id": {"S": "100001"},
        "username": {"S": "subuser-100001"},
        "date": {"S": "2026-11-22"},
        "score": {"N": "3.47"},
        "metrics": {"M": {"open_rate": {"N": "4"}, "spam_rate": {"N": "1.125"}}},
        "updated_at": {"S": "2026-11-23T06:00:03.120Z"},
    }

    assert subuser(item) == {
        "user_id": "100001",
        "username": "subuser-100001",
        "date": "2026-11-22",
        "score": 3.47,
        "metrics": {"open_rate": 4, "spam_rate": 1.125},
        "updated_at": "2026-11-23T06:00:03.120Z",
    }
    assert subuser({"user_id": {"S": "7"}})["username"] is None


def test_low_scores_sort_by_score_then_numeric_user_id() -> None:
    rows = [
        {"user_id": "100010", "score": 2},
        {"user_id": "99", "score": 2},
        {"user_id": "5", "score": 3.5},
        {"user_id": "100002", "score": 1.25},
    ]

    assert [r["user_id"] for r in sort_by_score(rows)] == ["100002", "99", "100010", "5"]
