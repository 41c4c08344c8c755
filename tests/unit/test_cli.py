"""The command line in process: what it accepts, where it points, how it waits, what it answers.

AWS is never reached: the commands that get that far run on recording fakes of the clients
(``fake_aws``), and the usage errors run where any AWS call would fail loudly (``aws_unreachable``).
How answers are printed (JSON, tables, plain lines, progress) is in ``test_cli_output.py``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.config import Config
from botocore.exceptions import NoCredentialsError

import seq_export_cli.app as app_module
import seq_export_cli.backfill as backfill_module
import seq_export_cli.run as run_module
from seq_export.dates import RETENTION_DAYS, today_utc, yesterday_utc
from seq_export.job_message import JobId
from seq_export_cli.app import AWS_CONFIG, ENV_NAMES, App, Target, region_of
from seq_export_cli.dead_letters import dead_letter, peek_dead_letters
from seq_export_cli.errors import EXIT_CODES, ServiceError, TargetConfigError, UsageError
from seq_export_cli.invoke import invoke_function
from seq_export_cli.main import cli as group
from seq_export_cli.main import main
from seq_export_cli.options import DEFAULT_WAIT_TIMEOUT, Options, default_day
from seq_export_cli.s3_objects import count_lines
from seq_export_cli.scores import sort_by_score, subuser
from seq_export_cli.waiting import DayWatcher, deliver_until_exported, poll_until_exported
from tests.support import START, Clock, client_error, days_ago

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

#: Every command the program has, as registered on its Click group.
COMMANDS = sorted(group.commands)
SHARED_OPTIONS = ["--json", "--stack", "--region", "--profile"]
FULL_OUTPUTS = [
    {"OutputKey": "ScoresBucketName", "OutputValue": "lake-bucket"},
    {"OutputKey": "ScoresPrefix", "OutputValue": "custom/prefix"},
    {"OutputKey": "LatestScoresTableName", "OutputValue": "latest-table"},
    {"OutputKey": "RetryQueueUrl", "OutputValue": "https://sqs.eu-west-1.amazonaws.com/1/retry"},
    {"OutputKey": "ExportFunctionName", "OutputValue": "seq-export-export"},
    {"OutputKey": "GlueTableName", "OutputValue": "subuser_scores"},
]
#: A complete target in the environment: a command that got past its checks would call AWS.
TARGET_ENV = {
    "SCORES_BUCKET": "env-bucket",
    "LATEST_SCORES_TABLE": "env-table",
    "RETRY_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/env-retry",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/env-dlq",
    "SEQ_EXPORT_FUNCTION": "env-function",
}
MODIFIED = datetime(2026, 11, 23, 6, 0, 3, tzinfo=UTC)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``seq-export argv`` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_document(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """``seq-export --json argv``: (exit code, the parsed document, stderr)."""
    code, out, err = cli(capsys, "--json", *argv)
    return code, json.loads(out), err


@pytest.fixture(autouse=True)
def _piped(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdout and stderr are pipes (capsys) whatever the environment says about colour or terminals."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


# -- recording fakes of the AWS clients -------------------------------------------------------------
class FakeS3:
    """Objects by key, each visible from a time of ``clock`` on; records every HeadObject."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.objects: dict[str, tuple[float, dict[str, Any]]] = {}
        self.heads: list[str] = []
        self.refusal: Exception | None = None

    def put(self, key: str, *, etag: str = '"v1"', records: int = 3, at: float | None = None) -> None:
        head = {"ETag": etag, "LastModified": MODIFIED, "ContentLength": 120, "Metadata": {"records": str(records)}}
        self.objects[key] = (self.clock.now if at is None else at, head)

    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        self.heads.append(Key)
        if self.refusal is not None:
            raise self.refusal
        stored = self.objects.get(Key)
        if stored is None or stored[0] > self.clock.now:
            raise client_error("404", "HeadObject")
        return dict(stored[1])

    def head_bucket(self, *, Bucket: str) -> dict[str, Any]:
        return {}


class FakeLambda:
    """Answers every Invoke with ``payload`` (and ``function_error``, if any); records the calls.
    GetFunctionConfiguration answers with ``environment``, or is denied when it is None."""

    def __init__(
        self, payload: bytes = b"{}", function_error: str | None = None, environment: dict[str, str] | None = None
    ) -> None:
        self.payload = payload
        self.function_error = function_error
        self.environment = environment
        self.calls: list[dict[str, Any]] = []
        self.configurations_read = 0

    def get_function_configuration(self, **_: Any) -> dict[str, Any]:
        self.configurations_read += 1
        if self.environment is None:
            raise client_error("AccessDeniedException", "GetFunctionConfiguration")
        return {"Environment": {"Variables": self.environment}}

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        answer: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(self.payload)}
        if self.function_error:
            answer["FunctionError"] = self.function_error
        return answer

    @property
    def events(self) -> list[Any]:
        return [json.loads(call["Payload"]) for call in self.calls]


class FakeCloudFormation:
    def __init__(self, outputs: list[dict[str, str]]) -> None:
        self.outputs = outputs
        self.stacks: list[str] = []

    def describe_stacks(self, *, StackName: str) -> dict[str, Any]:
        self.stacks.append(StackName)
        return {"Stacks": [{"StackName": StackName, "Outputs": self.outputs}]}


class FakeDynamoDB:
    def __init__(self, items: dict[str, dict[str, Any]]) -> None:
        self.items = items
        self.keys: list[dict[str, Any]] = []

    def get_item(self, *, TableName: str, Key: dict[str, Any]) -> dict[str, Any]:
        self.keys.append(Key)
        item = self.items.get(Key["user_id"]["S"])
        return {"Item": item} if item else {}


class FakeQueue:
    """SQS as the local event source uses it: messages to receive, deletes, and a long poll that
    moves the clock by its wait when nothing is visible."""

    def __init__(self, clock: Clock, bodies: list[dict[str, Any]]) -> None:
        self.meta = SimpleNamespace(region_name="eu-west-1")
        self.clock = clock
        self.visible = [
            {"MessageId": f"m-{i}", "ReceiptHandle": f"r-{i}", "Body": json.dumps(b)} for i, b in enumerate(bodies)
        ]
        self.in_flight: list[dict[str, Any]] = []
        self.waits: list[int] = []
        self.deleted: list[str] = []

    def get_queue_attributes(self, *, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        if AttributeNames == ["QueueArn"]:
            return {"Attributes": {"QueueArn": "arn:aws:sqs:eu-west-1:1:retry"}}
        counts = {
            "ApproximateNumberOfMessages": len(self.visible),
            "ApproximateNumberOfMessagesDelayed": 0,
            "ApproximateNumberOfMessagesNotVisible": len(self.in_flight),
        }
        return {"Attributes": {name: str(count) for name, count in counts.items()}}

    def receive_message(self, *, QueueUrl: str, MaxNumberOfMessages: int, WaitTimeSeconds: int, **_: Any) -> Any:
        self.waits.append(WaitTimeSeconds)
        if not self.visible:
            self.clock.sleep(WaitTimeSeconds)
            return {}
        taken, self.visible = self.visible[:MaxNumberOfMessages], self.visible[MaxNumberOfMessages:]
        self.in_flight += taken
        return {"Messages": taken}

    def delete_message(self, *, QueueUrl: str, ReceiptHandle: str) -> None:
        self.deleted.append(ReceiptHandle)
        self.in_flight = [m for m in self.in_flight if m["ReceiptHandle"] != ReceiptHandle]

    def client(self) -> SQSClient:
        """This fake, where botocore's SQS client is expected."""
        return cast("SQSClient", self)


class FakeDeadLetters:
    """SQS as the dead-letter peek reads it: messages that stay where they are, each visible from
    a time of ``clock`` on and counting every receive; the retry queue's ``RedrivePolicy``."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.receives: list[dict[str, Any]] = []

    def add(self, body: dict[str, Any], *, at: float | None = None, received: int = 0) -> None:
        message = {
            "MessageId": f"dl-{len(self.messages)}",
            "ReceiptHandle": f"dl-r-{len(self.messages)}",
            "Body": json.dumps(body),
            "Attributes": {"ApproximateReceiveCount": str(received), "SentTimestamp": "1795000000000"},
        }
        self.messages.append((self.clock.now if at is None else at, message))

    def receive_message(self, **call: Any) -> dict[str, Any]:
        self.receives.append(call)
        visible = [message for at, message in self.messages if at <= self.clock.now]
        for message in visible:
            count = int(message["Attributes"]["ApproximateReceiveCount"]) + 1
            message["Attributes"]["ApproximateReceiveCount"] = str(count)
        return {"Messages": [dict(m) for m in visible[: call["MaxNumberOfMessages"]]]} if visible else {}

    def get_queue_attributes(self, *, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        return {"Attributes": {"RedrivePolicy": json.dumps({"deadLetterTargetArn": "arn:dlq", "maxReceiveCount": "3"})}}


class Updates:
    """A ``Progressing`` that records every update."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def update(self, done: int, detail: str = "") -> None:
        self.seen.append(done)


@dataclass
class FakeAws:
    """What the commands' ``App`` gets: these clients by service, this environment, this clock;
    and, recorded, the ``Options`` each ``App`` was built with and the clients it asked for."""

    clock: Clock = field(default_factory=Clock)
    environ: dict[str, str] = field(default_factory=lambda: dict(TARGET_ENV))
    clients: dict[str, Any] = field(default_factory=dict)
    options: list[Options] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> FakeAws:
    aws = FakeAws()
    aws.clients["cloudformation"] = FakeCloudFormation(FULL_OUTPUTS)
    aws.clients["s3"] = FakeS3(aws.clock)
    aws.clients["sqs"] = FakeDeadLetters(aws.clock)

    class FakeApp(App):
        def __init__(self, options: Options) -> None:
            super().__init__(options, environ=aws.environ, sleep=aws.clock.sleep, clock=aws.clock)
            aws.options.append(options)

        def client(self, service: str, config: Config = AWS_CONFIG) -> Any:
            aws.asked.append(service)
            return aws.clients[service]

    monkeypatch.setattr(app_module, "App", FakeApp)  # what ``with_app`` builds for each command
    return aws


@pytest.fixture
def aws_unreachable(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A complete target in the environment, no credentials and a closed endpoint, so any AWS
    call would fail (exit 3 or 4, never 2); every client asked for or local handler run is recorded."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    for name, value in TARGET_ENV.items():
        monkeypatch.setenv(name, value)
    attempts: list[str] = []
    real_client = App.client

    def recorded_client(self: App, service: str, config: Config = AWS_CONFIG) -> Any:
        attempts.append(service)
        return real_client(self, service, config)

    def no_local_handler(event: dict[str, Any], **_: Any) -> dict[str, Any]:
        attempts.append(f"local handler {event}")
        raise AssertionError("the handler ran before the usage check")

    monkeypatch.setattr(App, "client", recorded_client)
    monkeypatch.setattr(run_module, "invoke_local", no_local_handler)
    monkeypatch.setattr(backfill_module, "invoke_local", no_local_handler)
    return attempts


# -- help and version ---------------------------------------------------------------------------------
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


# -- shared options ----------------------------------------------------------------------------------
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
    answer = json.loads(out)  # --json: the one document, wherever it was given
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


# -- usage errors: exit 2, naming the option, before any AWS call ------------------------------------
def usage_cases() -> list[Any]:
    today, yesterday, old = today_utc().isoformat(), yesterday_utc().isoformat(), days_ago(RETENTION_DAYS + 10)
    later, earlier = days_ago(5), days_ago(10)
    return [
        pytest.param(["run", "--date", "yesterday"], ["--date", "YYYY-MM-DD", "'yesterday'"], id="malformed-day"),
        pytest.param(["run", "--date", "22.11.2026"], ["--date", "YYYY-MM-DD"], id="other-day-format"),
        pytest.param(["status", "--date", "2026-02-30"], ["--date", "not a calendar date"], id="no-such-day"),
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
        pytest.param([], ["Usage: seq-export"], id="no-command"),
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


SOURCE_NAMES_OUTPUT = {"OutputKey": "SourceNames", "OutputValue": "global,eu"}
TWO_SOURCES = json.dumps(
    [
        {"name": "global", "base_url": "https://api.sendgrid.com", "secret_id": "global-key"},
        {"name": "eu", "base_url": "https://api.eu.sendgrid.com", "secret_id": "eu-key", "account_scores": False},
    ]
)


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
    assert err == (
        "seq-export: --source: unknown source 'us'; the configured sources are global, eu (from SEQ_SOURCES)\n"
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


# -- days ----------------------------------------------------------------------------------------------
def test_the_default_day_is_yesterday_utc() -> None:
    before = yesterday_utc().isoformat()
    day = default_day()
    after = yesterday_utc().isoformat()

    assert day in {before, after}  # the same day unless this runs across midnight UTC


# -- target --------------------------------------------------------------------------------------------
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
        sources=("default",),
        sources_from="stack prod has no output SourceNames",
    )
    assert target.key_for("2026-11-22", "subusers", "default") == (
        "custom/prefix/source=default/dt=2026-11-22/scores.jsonl"
    )
    assert target.key_for("2026-11-22", "account", "eu") == ("seq/account_scores/source=eu/dt=2026-11-22/scores.jsonl")


def test_the_sources_are_the_stacks_source_names_output_in_its_order() -> None:
    target = Target.from_outputs("prod", [*FULL_OUTPUTS, {"OutputKey": "SourceNames", "OutputValue": "global, eu"}])

    assert target.sources == ("global", "eu")
    assert target.sources_from == "from output SourceNames of stack prod"
    assert target.several_sources
    assert target.chosen_sources(None) == ("global", "eu")
    assert target.chosen_sources("eu") == ("eu",)


@pytest.mark.parametrize("listed", ["global,,eu", "Global", "eu,eu", "a b"])
def test_a_malformed_source_names_output_is_a_configuration_error_naming_it(listed: str) -> None:
    with pytest.raises(TargetConfigError, match="output SourceNames of stack prod") as caught:
        Target.from_outputs("prod", [{"OutputKey": "SourceNames", "OutputValue": listed}])
    assert caught.value.exit_code == 3


def test_the_sources_are_the_names_in_seq_sources_of_the_environment() -> None:
    target = Target.from_env({"SEQ_SOURCES": TWO_SOURCES})

    assert (target.sources, target.sources_from) == (("global", "eu"), "from SEQ_SOURCES")
    assert not Target.from_env({}).several_sources


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("not json", "SEQ_SOURCES is not JSON"),
        ("[]", "SEQ_SOURCES must be a non-empty JSON list"),
        ('[{"name": "EU", "base_url": "https://x", "secret_id": "s"}]', "SEQ_SOURCES item 1: 'name'"),
    ],
)
def test_a_malformed_seq_sources_is_a_configuration_error_as_the_function_reports_it(raw: str, fragment: str) -> None:
    with pytest.raises(TargetConfigError, match=fragment) as caught:
        Target.from_env({"SEQ_SOURCES": raw})
    assert caught.value.exit_code == 3


def test_an_unknown_source_is_a_usage_error_naming_where_the_sources_came_from() -> None:
    with pytest.raises(
        UsageError, match=r"unknown source 'eu'; the configured sources are default \(SEQ_SOURCES is not set\)"
    ):
        Target.from_env({}).chosen_sources("eu")


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
    assert target.key_for("2026-11-22", "subusers", "default") == (
        "seq/subuser_scores/source=default/dt=2026-11-22/scores.jsonl"
    )
    assert target.sources == ("default",)
    with pytest.raises(TargetConfigError, match="RETRY_QUEUE_URL is not set"):
        target.need("queue_url")


def test_a_missing_function_name_suggests_running_the_handler_locally() -> None:
    with pytest.raises(TargetConfigError, match=r"SEQ_EXPORT_FUNCTION is not set; .* with --local"):
        Target.from_env({}).need("function_name")


def test_blank_variables_count_as_missing_and_prefix_slashes_are_trimmed() -> None:
    target = Target.from_env({"SCORES_BUCKET": "  ", "SCORES_PREFIX": "/lake/seq/"})

    assert target.prefix == "lake/seq"
    with pytest.raises(TargetConfigError, match="SCORES_BUCKET is not set"):
        target.need("bucket")


@pytest.mark.parametrize("prefix", ["a//b", "/", "//"])
def test_a_malformed_prefix_is_a_configuration_error(prefix: str) -> None:
    with pytest.raises(TargetConfigError, match="SCORES_PREFIX"):
        Target.from_env({"SCORES_PREFIX": prefix})


def test_a_malformed_prefix_output_is_a_configuration_error_naming_the_output() -> None:
    outputs = [{"OutputKey": "ScoresPrefix", "OutputValue": "a//b"}]

    with pytest.raises(TargetConfigError, match="output ScoresPrefix of stack prod"):
        Target.from_outputs("prod", outputs)


@pytest.mark.parametrize(
    ("option", "environ", "region"),
    [
        ("eu-central-1", {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}, "eu-central-1"),
        (None, {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}, "eu-west-1"),
        (None, {"AWS_DEFAULT_REGION": "us-east-1"}, "us-east-1"),
        (None, {}, None),
        ("  ", {"AWS_REGION": "", "AWS_DEFAULT_REGION": " us-east-1 "}, "us-east-1"),
        ("", {"AWS_REGION": " ", "AWS_DEFAULT_REGION": ""}, None),
    ],
    ids=["option-wins", "aws-region", "aws-default-region", "none", "blanks-skipped", "all-blank"],
)
def test_the_region_is_the_option_then_aws_region_then_aws_default_region(
    option: str | None, environ: dict[str, str], region: str | None
) -> None:
    assert region_of(option, environ) == region


# -- waiting for days (fake S3 and clock: no sleeping) -------------------------------------------------
def key_of(day: str) -> str:
    return f"p/source=default/dt={day}/scores.jsonl"


def job_of(day: str) -> JobId:
    return JobId("default", "subusers", day)


def keys(*days: str) -> dict[JobId, str]:
    return {job_of(day): key_of(day) for day in days}


def test_polling_waits_until_every_days_object_exists() -> None:
    clock = Clock()
    s3, progress = FakeS3(clock), Updates()
    s3.put(key_of("2026-11-20"))
    s3.put(key_of("2026-11-21"), at=START + 5)
    watcher = DayWatcher(s3, "bucket", keys("2026-11-20", "2026-11-21"), {})

    outcome = poll_until_exported(watcher, progress, timeout=60, clock=clock, sleep=clock.sleep, interval=5)

    assert outcome == "exported"
    assert clock.sleeps == [5]
    assert progress.seen == [1, 2]
    assert s3.heads.count(key_of("2026-11-20")) == 1  # an exported day is not asked again


def test_polling_gives_up_at_the_timeout_naming_the_missing_days() -> None:
    clock = Clock()
    watcher = DayWatcher(FakeS3(clock), "bucket", keys("2026-11-20", "2026-11-21"), {})

    outcome = poll_until_exported(watcher, Updates(), timeout=12, clock=clock, sleep=clock.sleep, interval=5)

    assert outcome == "timeout"
    assert clock.sleeps == [5, 5, 2]
    assert watcher.pending == [job_of("2026-11-20"), job_of("2026-11-21")]


def test_with_force_an_existing_object_counts_only_once_it_is_replaced() -> None:
    s3 = FakeS3()
    s3.put(key_of("2026-11-20"), etag='"old"')
    watcher = DayWatcher(s3, "bucket", keys("2026-11-20"), {job_of("2026-11-20"): ('"old"', str(MODIFIED))})

    assert watcher.refresh() == 0
    s3.put(key_of("2026-11-20"), etag='"new"')
    assert watcher.refresh() == 1


def test_an_s3_refusal_while_waiting_is_a_service_error() -> None:
    s3 = FakeS3()
    s3.refusal = client_error("403", "HeadObject")
    watcher = DayWatcher(s3, "bucket", keys("2026-11-20"), {})

    with pytest.raises(
        ServiceError, match=r"S3 HeadObject of s3://bucket/p/source=default/dt=2026-11-20/scores.jsonl failed: 403"
    ):
        watcher.refresh()


def exporting(s3: FakeS3, answer: Callable[[str], dict[str, Any]] | None = None) -> Callable[[dict[str, Any]], Any]:
    """A handler for queued retries that writes each message's day (or answers ``answer(day)``)."""

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        [record] = event["Records"]
        day = json.loads(record["body"])["date"]
        if answer is not None:
            return answer(record["messageId"])
        s3.put(key_of(day))
        return {"batchItemFailures": []}

    return handler


def test_delivering_the_retry_queue_exports_the_days_and_deletes_their_messages() -> None:
    clock = Clock()
    s3, progress = FakeS3(clock), Updates()
    queue = FakeQueue(clock, [{"date": "2026-11-20"}, {"date": "2026-11-21"}])
    watcher = DayWatcher(s3, "bucket", keys("2026-11-20", "2026-11-21"), {})

    outcome = deliver_until_exported(queue.client(), "q", exporting(s3), watcher, progress, timeout=60, clock=clock)

    assert outcome == "exported"
    assert queue.deleted == ["r-0", "r-1"]
    assert progress.seen == [0, 1, 2]
    assert queue.waits == [20, 20, 0]  # a long poll while days are missing, then only what is visible


def test_delivering_stops_when_the_queue_has_nothing_left_for_the_missing_days() -> None:
    clock = Clock()
    queue = FakeQueue(clock, [])
    watcher = DayWatcher(FakeS3(clock), "bucket", keys("2026-11-20"), {})

    outcome = deliver_until_exported(
        queue.client(), "q", exporting(FakeS3()), watcher, Updates(), timeout=60, clock=clock
    )

    assert outcome == "queue_empty"
    assert watcher.pending == [job_of("2026-11-20")]


def test_a_failed_delivery_is_reported_and_the_wait_ends_at_the_timeout() -> None:
    clock = Clock()
    queue = FakeQueue(clock, [{"date": "2026-11-20"}])
    watcher = DayWatcher(FakeS3(clock), "bucket", keys("2026-11-20"), {})
    failures: list[int] = []

    outcome = deliver_until_exported(
        queue.client(),
        "q",
        exporting(FakeS3(), answer=lambda message: {"batchItemFailures": [{"itemIdentifier": message}]}),
        watcher,
        Updates(),
        timeout=45,
        clock=clock,
        on_failures=failures.append,
    )

    assert outcome == "timeout"
    assert failures == [1]
    assert queue.deleted == []  # a failed record returns to the queue
    assert queue.waits == [20, 20, 20, 5]  # the last poll only as long as the time left


def test_a_job_is_named_by_source_kind_and_day_as_the_functions_backfill_lists_it() -> None:
    job = JobId("eu", "account", "2026-11-22")

    assert str(job) == "eu account 2026-11-22"
    assert job.to_dict() == {"source": "eu", "kind": "account", "date": "2026-11-22"}


# -- the function's answer -------------------------------------------------------------------------------
def test_invoke_is_synchronous_and_returns_the_summary() -> None:
    fake = FakeLambda(b'{"status": "exported", "date": "2026-11-22"}')

    answer = invoke_function(fake, "seq-export-export", {"date": "2026-11-22"})

    assert answer == {"status": "exported", "date": "2026-11-22"}
    [call] = fake.calls
    assert (call["FunctionName"], call["InvocationType"]) == ("seq-export-export", "RequestResponse")
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


def test_an_answer_that_is_not_a_json_object_is_a_service_error() -> None:
    with pytest.raises(ServiceError, match=r"function f answered b'\[1\]', not a JSON object"):
        invoke_function(FakeLambda(b"[1]"), "f", {"date": "2026-11-22"})


def test_a_refused_invoke_is_a_service_error_naming_the_call() -> None:
    class Refusing(FakeLambda):
        def invoke(self, **kwargs: Any) -> dict[str, Any]:
            raise client_error("AccessDeniedException", "Invoke")

    with pytest.raises(ServiceError, match="Lambda Invoke of function f failed: AccessDeniedException"):
        invoke_function(Refusing(), "f", {"date": "2026-11-22"})


# -- commands on fakes -----------------------------------------------------------------------------------
def exported(day: str, source: str = "default") -> bytes:
    """The function's answer to a day it exported (as its payload)."""
    summary = {
        "status": "exported",
        "source": source,
        "date": day,
        "records": 3,
        "ineligible": 1,
        "pages": 1,
        "s3_key": f"seq/subuser_scores/source={source}/dt={day}/scores.jsonl",
        "bytes": 120,
        "latest_written": 2,
        "latest_kept_newer": 0,
    }
    return json.dumps(summary).encode()


def backfilled(first: str, last: str) -> bytes:
    """The function's answer to a backfill of two days: the first already exported, the last queued."""
    answer = {
        "from": first,
        "to": last,
        "days": 2,
        "enqueued": [{"source": "default", "kind": "subusers", "date": last}],
        "skipped_already_exported": [{"source": "default", "kind": "subusers", "date": first}],
    }
    return json.dumps(answer).encode()


def test_run_invokes_the_deployed_function_for_the_day_and_says_what_it_exported(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    fake_aws.clients["lambda"] = function = FakeLambda(exported(day))

    code, out, _ = cli(capsys, "run", "--date", day)

    assert code == 0
    assert function.events == [{"date": day, "source": "default"}]
    assert [call["FunctionName"] for call in function.calls] == ["env-function"]
    assert out.splitlines() == [
        f"exported      subusers {day}: 3 records (1 ineligible) from 1 pages",
        f"S3 object     s3://env-bucket/seq/subuser_scores/source=default/dt={day}/scores.jsonl (120 bytes)",
        "DynamoDB      2 latest scores written, 0 kept a newer day",
    ]


def test_run_of_every_kind_invokes_once_per_kind_subusers_first(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(3)
    fake_aws.clients["lambda"] = function = FakeLambda(exported(day))

    code, _, _ = cli(capsys, "run", "--date", day, "--kind", "all")

    assert code == 0
    assert function.events == [
        {"date": day, "source": "default"},
        {"date": day, "source": "default", "kind": "account"},
    ]


def test_run_of_every_kind_skips_the_account_day_of_a_source_whose_function_config_has_it_off(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(3)
    fake_aws.environ["SEQ_SOURCES"] = ""  # a deployed stack: only the function knows its sources' settings
    fake_aws.clients["lambda"] = function = FakeLambda(exported(day), environment={"SEQ_SOURCES": TWO_SOURCES})
    fake_aws.clients["cloudformation"] = FakeCloudFormation([*FULL_OUTPUTS, SOURCE_NAMES_OUTPUT])

    code, _, _ = cli(capsys, "--stack", "prod", "run", "--date", day, "--kind", "all")

    assert code == 0
    assert function.events == [
        {"date": day, "source": "global"},
        {"date": day, "source": "global", "kind": "account"},
        {"date": day, "source": "eu"},
    ]
    assert function.configurations_read == 1


def test_run_of_every_kind_takes_the_account_setting_from_seq_sources_without_asking_the_function(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(3)
    fake_aws.environ["SEQ_SOURCES"] = TWO_SOURCES
    fake_aws.clients["lambda"] = function = FakeLambda(exported(day))

    code, _, _ = cli(capsys, "run", "--date", day, "--kind", "all")

    assert code == 0
    assert [(event["source"], event.get("kind", "subusers")) for event in function.events] == [
        ("global", "subusers"),
        ("global", "account"),
        ("eu", "subusers"),
    ]
    assert function.configurations_read == 0


def test_run_without_a_date_exports_yesterday(fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    fake_aws.clients["lambda"] = function = FakeLambda(exported(days_ago(1)))

    code, _, _ = cli(capsys, "run")

    assert code == 0
    assert function.events == [{"date": default_day(), "source": "default"}]


def test_a_function_failure_exits_4_with_one_line_on_stderr(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = {"errorType": "RuntimeError", "errorMessage": "boom\nat line 2"}
    fake_aws.clients["lambda"] = FakeLambda(json.dumps(payload).encode(), function_error="Unhandled")

    code, out, err = cli(capsys, "run")

    assert (code, out) == (4, "")
    assert err == "seq-export: function env-function failed: RuntimeError: boom at line 2\n"


@pytest.mark.parametrize(
    ("options", "extra"),
    [([], {}), (["--force"], {"force": True}), (["--kind", "account"], {"kind": "account"})],
    ids=["plain", "force", "one-kind"],
)
def test_a_backfill_event_carries_force_and_kind_only_when_asked(
    options: list[str], extra: dict[str, Any], fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = days_ago(3), days_ago(2)
    fake_aws.clients["lambda"] = function = FakeLambda(backfilled(first, last))

    code, _, _ = cli(capsys, "backfill", "--from", first, "--to", last, *options)

    assert code == 0
    assert function.events == [{"from": first, "to": last, **extra}]


def test_a_backfill_says_per_day_and_kind_what_it_queued_and_what_it_skipped(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = days_ago(3), days_ago(2)
    fake_aws.clients["lambda"] = FakeLambda(backfilled(first, last))

    code, out, _ = cli(capsys, "backfill", "--from", first, "--to", last)

    assert code == 0
    assert out.splitlines() == [
        f"already exported  subusers  {first}",
        f"enqueued          subusers  {last}",
        f"2 days x 1 kinds (subusers), {first} .. {last}: 1 enqueued, 1 already exported (--force exports them again)",
    ]


def test_a_backfill_wait_polls_until_the_queued_days_are_in_s3(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = days_ago(3), days_ago(2)
    fake_aws.clients["lambda"] = FakeLambda(backfilled(first, last))
    fake_aws.clients["s3"].put(f"seq/subuser_scores/source=default/dt={last}/scores.jsonl", at=START + 10)

    code, out, err = cli(capsys, "backfill", "--from", first, "--to", last, "--wait")

    assert code == 0
    assert fake_aws.clock.sleeps == [5, 5]
    assert out.splitlines()[-1] == f"exported          1/1 queued days ({first} .. {last})"
    assert err.splitlines() == ["seq-export: queued days exported: 0/1", "seq-export: queued days exported: 1/1"]


def test_a_backfill_wait_that_times_out_exits_1_naming_the_days_still_missing(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = days_ago(3), days_ago(2)
    fake_aws.clients["lambda"] = FakeLambda(backfilled(first, last))

    code, _, err = cli(capsys, "backfill", "--from", first, "--to", last, "--wait", "--timeout", "12")

    assert code == 1
    assert fake_aws.clock.sleeps == [5, 5, 2]
    assert err.splitlines()[-1] == f"seq-export: 1 of 1 queued days not exported within 12 s: subusers {last}"


def test_a_backfill_wait_with_json_prints_one_document_with_the_waits_outcome(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = days_ago(3), days_ago(2)
    fake_aws.clients["lambda"] = FakeLambda(backfilled(first, last))

    code, out, _ = cli(capsys, "--json", "backfill", "--from", first, "--to", last, "--wait")

    assert code == 1
    assert fake_aws.clock.now - START == DEFAULT_WAIT_TIMEOUT
    document = json.loads(out)
    assert document["counts"] == {"enqueued": 1, "skipped_already_exported": 1, "skipped_already_queued": 0}
    assert document["wait"] == {
        "outcome": "timeout",
        "queued": 1,
        "exported": 0,
        "missing": [{"source": "default", "kind": "subusers", "date": last}],
        "dead_lettered": [],
    }


RUN = "0123456789abcdef"


def queued_answer(day: str, *, queued_by: str | None = None) -> bytes:
    """The function's answer to a backfill of one subusers' day: queued under ``RUN``, or
    already queued by the run ``queued_by``."""
    job = {"source": "default", "kind": "subusers", "date": day}
    answer = {
        "from": day,
        "to": day,
        "days": 1,
        "run": RUN,
        "enqueued": [] if queued_by else [job],
        "skipped_already_exported": [],
        "skipped_already_queued": [job | {"run": queued_by}] if queued_by else [],
    }
    return json.dumps(answer).encode()


def day_object(day: str) -> str:
    return f"seq/subuser_scores/source=default/dt={day}/scores.jsonl"


def test_a_backfill_wait_counts_a_day_whose_object_was_there_before_only_once_it_is_replaced(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    fake_aws.clients["lambda"] = FakeLambda(queued_answer(day))
    s3 = fake_aws.clients["s3"]
    s3.put(day_object(day), etag='"before"')  # exported earlier; the backfill queues it again
    s3.put(day_object(day), etag='"after"', at=START + 12)

    code, out, _ = cli(capsys, "backfill", "--from", day, "--to", day, "--kind", "subusers", "--wait")

    assert code == 0
    assert fake_aws.clock.sleeps == [5, 5, 5]  # the old object did not count
    assert out.splitlines()[-1] == f"exported          1/1 queued days ({day} .. {day})"


def test_a_backfill_wait_ends_at_a_followed_days_dead_letter_naming_the_day_and_its_reason(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    fake_aws.clients["lambda"] = FakeLambda(queued_answer(day))
    dead_letters = fake_aws.clients["sqs"]
    gave_up = {"source": "default", "kind": "subusers", "date": day, "attempt": 1, "reason": "gave_up_not_ready"}
    dead_letters.add(gave_up | {"run": "another-run-1", "gave_up_run": "an-older-backfill"})  # not this one's
    dead_letters.add(gave_up | {"run": "fresh-redrive-run", "gave_up_run": RUN}, at=START + 7)

    code, _, err = cli(capsys, "backfill", "--from", day, "--to", day, "--kind", "subusers", "--wait")

    assert code == 1
    assert fake_aws.clock.sleeps == [5, 5]  # stopped at the dead letter, not at the timeout
    assert f"seq-export: default subusers {day} is in the dead-letter queue: gave_up_not_ready" in err.splitlines()
    assert err.splitlines()[-1] == (
        f"seq-export: 1 of 1 queued days not exported (the wait stopped at the dead letter): subusers {day}"
    )
    assert {call["VisibilityTimeout"] for call in dead_letters.receives} == {0}  # peeked, never consumed
    assert {call["WaitTimeSeconds"] for call in dead_letters.receives} == {0}


def test_a_dead_letter_sqs_moved_after_failed_deliveries_says_how_many_it_failed(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    fake_aws.clients["lambda"] = FakeLambda(queued_answer(day))
    moved = {"source": "default", "kind": "subusers", "date": day, "attempt": 1, "reason": "backfill", "run": RUN}
    fake_aws.clients["sqs"].add(moved, received=3)

    code, document, _ = cli_document(capsys, "backfill", "--from", day, "--to", day, "--kind", "subusers", "--wait")

    assert code == 1
    assert document["wait"]["outcome"] == "dead_lettered"
    [letter] = document["wait"]["dead_lettered"]
    assert (letter["date"], letter["run"], letter["why"], letter["given_up"]) == (
        day,
        RUN,
        "failed 3 deliveries",
        False,
    )


def test_a_backfill_lists_days_already_queued_with_counts_that_add_up_and_its_wait_follows_them(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    fake_aws.clients["lambda"] = FakeLambda(queued_answer(day, queued_by="an-earlier-backfill"))
    fake_aws.clients["s3"].put(day_object(day), at=START + 5)

    code, out, _ = cli(capsys, "backfill", "--from", day, "--to", day, "--kind", "subusers", "--wait")

    assert code == 0
    assert out.splitlines() == [
        f"already queued    subusers  {day}",
        f"1 days x 1 kinds (subusers), {day} .. {day}: 0 enqueued, 0 already exported, 1 already queued "
        "(--force exports them again)",
        f"exported          1/1 queued days ({day} .. {day})",
    ]


def test_a_wait_without_a_dead_letter_queue_to_watch_is_a_configuration_error_before_anything_is_queued(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    del fake_aws.environ["DEAD_LETTER_QUEUE_URL"]
    fake_aws.clients["lambda"] = function = FakeLambda(queued_answer(day))  # its configuration cannot be read

    code, _, err = cli(capsys, "backfill", "--from", day, "--to", day, "--wait")

    assert code == 3
    assert "DEAD_LETTER_QUEUE_URL is not set" in err
    assert function.calls == []


def test_the_dead_letter_queue_url_is_read_from_the_functions_configuration_when_the_target_lacks_it(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    del fake_aws.environ["DEAD_LETTER_QUEUE_URL"]
    configured = {"DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/function-dlq"}
    fake_aws.clients["lambda"] = FakeLambda(queued_answer(day), environment=configured)
    fake_aws.clients["s3"].put(day_object(day), at=START + 5)

    code, _, _ = cli(capsys, "backfill", "--from", day, "--to", day, "--kind", "subusers", "--wait")

    assert code == 0
    assert {call["QueueUrl"] for call in fake_aws.clients["sqs"].receives} == {configured["DEAD_LETTER_QUEUE_URL"]}


def not_ready(day: str) -> bytes:
    """The function's answer to a day SendGrid is still computing (re-scheduled under ``RUN``)."""
    summary = {"status": "not_ready", "source": "default", "date": day, "kind": "subusers", "run": RUN}
    return json.dumps(summary | {"attempt": 1, "next_attempt": 2, "next_attempt_delay_seconds": 300}).encode()


def test_run_wait_against_a_deployed_stack_polls_until_the_day_is_exported(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(1)
    fake_aws.clients["lambda"] = FakeLambda(not_ready(day))
    fake_aws.clients["s3"].put(day_object(day), records=7, at=START + 8)

    code, out, err = cli(capsys, "run", "--date", day, "--wait")

    assert code == 0
    assert fake_aws.clock.sleeps == [5, 5]
    assert f"{day} (subusers): SendGrid answered 202; following it until it is exported" in err
    assert out.splitlines()[0] == (
        f"exported      subusers {day}: 7 records, by a retry delivered from the queue once SendGrid was ready"
    )


def test_run_wait_stops_when_the_day_reaches_the_dead_letter_queue(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(1)
    fake_aws.clients["lambda"] = FakeLambda(not_ready(day))
    gave_up = {"source": "default", "kind": "subusers", "date": day, "attempt": 1, "reason": "gave_up_not_ready"}
    fake_aws.clients["sqs"].add(gave_up | {"run": "redrive", "gave_up_run": RUN}, at=START + 3)

    code, out, err = cli(capsys, "run", "--date", day, "--wait")

    assert code == 1
    assert out.splitlines() == [
        f"dead letter   subusers {day}: in the dead-letter queue (gave_up_not_ready); --wait stopped there"
    ]
    assert err.splitlines()[-1] == f"seq-export: default subusers {day} is in the dead-letter queue: gave_up_not_ready"


def test_peeking_the_dead_letter_queue_repeats_until_a_round_brings_nothing_new() -> None:
    clock = Clock()
    sqs = FakeDeadLetters(clock)
    for n in range(3):
        sqs.add({"source": "eu", "kind": "account", "date": f"2026-11-2{n}", "attempt": 1, "reason": "scheduled"})

    letters = peek_dead_letters(sqs, "dlq", default_source="default", max_receive_count=3)

    assert [(str(letter.job), letter.why) for letter in letters] == [
        (f"eu account 2026-11-2{n}", "failed 3 deliveries") for n in range(3)
    ]
    assert len(sqs.receives) == 2  # the second round brought nothing new
    assert sqs.receives[0] | {"QueueUrl": "dlq"} == {
        "QueueUrl": "dlq",
        "MaxNumberOfMessages": 10,
        "VisibilityTimeout": 0,
        "WaitTimeSeconds": 0,
        "AttributeNames": ["All"],
    }


def test_a_dead_letter_that_is_not_a_job_keeps_its_body_and_names_no_job() -> None:
    letter = dead_letter(
        {"MessageId": "m", "Body": "not json", "Attributes": {"ApproximateReceiveCount": "4"}},
        default_source="default",
        max_receive_count=None,
    )

    assert (letter.job, letter.body, letter.given_up) == (None, "not json", False)
    assert letter.why == "failed its deliveries (received 4 times, peeks included)"


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


LATEST_ITEM = {
    "user_id": {"S": "100001"},
    "source": {"S": "default"},
    "username": {"S": "subuser-100001"},
    "date": {"S": "2026-11-22"},
    "score": {"N": "3.47"},
    "metrics": {"M": {"open_rate": {"N": "4"}, "spam_rate": {"N": "1.125"}}},
    "updated_at": {"S": "2026-11-23T06:00:03.120Z"},
}


def test_lookup_prints_the_subusers_latest_score(fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    fake_aws.clients["dynamodb"] = table = FakeDynamoDB({"100001": LATEST_ITEM})

    code, out, _ = cli(capsys, "lookup", " 100001 ")

    assert code == 0
    assert table.keys == [{"user_id": {"S": "100001"}}]
    assert out.splitlines() == [
        "user_id     100001",
        "source      default",
        "username    subuser-100001",
        "date        2026-11-22",
        "score       3.47",
        "metrics     open_rate=4 spam_rate=1.125",
        "updated_at  2026-11-23T06:00:03.120Z",
    ]


def test_lookup_of_a_subuser_without_a_latest_score_exits_1(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_aws.clients["dynamodb"] = FakeDynamoDB({})
    del fake_aws.environ["SCORES_BUCKET"]

    code, out, _ = cli(capsys, "--json", "lookup", "7")

    assert code == 1
    assert json.loads(out) == {
        "query": {"user_id": "7"},
        "subusers": [],
        "reason": "unknown",
        "newest_day": None,
        "source": None,
        "newest_days": {},
    }


# -- small pieces ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([], 0),
        ([b""], 0),
        ([b'{"a": 1}\n', b'{"a": 2}\n'], 2),
        ([b'{"a": 1}\n{"a"', b": 2}"], 2),  # last line without a newline
        ([b'{"a": 1}\n', b""], 1),  # an empty last chunk
        ([b"\n"], 1),
    ],
)
def test_count_lines_of_a_streamed_body(chunks: list[bytes], lines: int) -> None:
    assert count_lines(chunks) == lines


def test_items_become_the_printed_fields_with_exact_numbers() -> None:
    assert subuser(LATEST_ITEM) == {
        "user_id": "100001",
        "source": "default",
        "username": "subuser-100001",
        "date": "2026-11-22",
        "score": 3.47,
        "metrics": {"open_rate": 4, "spam_rate": 1.125},
        "updated_at": "2026-11-23T06:00:03.120Z",
    }
    assert list(subuser(LATEST_ITEM)) == ["user_id", "source", "username", "date", "score", "metrics", "updated_at"]
    assert subuser({"user_id": {"S": "7"}})["username"] is None


def test_low_scores_sort_by_score_then_numeric_user_id() -> None:
    rows = [
        {"user_id": "100010", "score": 2},
        {"user_id": "99", "score": 2},
        {"user_id": "5", "score": 3.5},
        {"user_id": "100002", "score": 1.25},
    ]

    assert [r["user_id"] for r in sort_by_score(rows)] == ["100002", "99", "100010", "5"]


# -- several sources on fakes -------------------------------------------------------------------------
class PerSourceLambda(FakeLambda):
    """Answers each direct date event with the export of the event's own source."""

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        event = json.loads(kwargs["Payload"])
        self.payload = exported(event["date"], event["source"])
        return super().invoke(**kwargs)


class FailingForLambda(PerSourceLambda):
    """As ``PerSourceLambda``, but the function fails for the events of one source."""

    def __init__(self, failing: str) -> None:
        super().__init__()
        self.failing = failing

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        source = json.loads(kwargs["Payload"])["source"]
        self.function_error = "Unhandled" if source == self.failing else None
        answer = super().invoke(**kwargs)
        if source == self.failing:
            answer["Payload"] = io.BytesIO(b'{"errorMessage": "SendGrid answered 401 Unauthorized"}')
        return answer


@pytest.fixture
def two_sources(fake_aws: FakeAws) -> FakeAws:
    fake_aws.environ["SEQ_SOURCES"] = TWO_SOURCES
    return fake_aws


def test_run_without_source_invokes_once_per_source_and_answers_in_one_section_each(
    two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    two_sources.clients["lambda"] = function = PerSourceLambda()

    code, out, _ = cli(capsys, "run", "--date", day)
    _, document, _ = cli(capsys, "run", "--date", day, "--json")

    assert code == 0
    assert function.events[:2] == [{"date": day, "source": "global"}, {"date": day, "source": "eu"}]
    assert out.splitlines() == [
        "source        global",
        f"exported      subusers {day}: 3 records (1 ineligible) from 1 pages",
        f"S3 object     s3://env-bucket/seq/subuser_scores/source=global/dt={day}/scores.jsonl (120 bytes)",
        "DynamoDB      2 latest scores written, 0 kept a newer day",
        "",
        "source        eu",
        f"exported      subusers {day}: 3 records (1 ineligible) from 1 pages",
        f"S3 object     s3://env-bucket/seq/subuser_scores/source=eu/dt={day}/scores.jsonl (120 bytes)",
        "DynamoDB      2 latest scores written, 0 kept a newer day",
    ]
    answer = json.loads(document)
    assert answer["date"] == day
    assert [(s["source"], s["status"]) for s in answer["sources"]] == [("global", "exported"), ("eu", "exported")]


def test_run_with_source_invokes_that_source_only_and_keeps_the_one_summary_shape(
    two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    two_sources.clients["lambda"] = function = PerSourceLambda()

    code, out, _ = cli(capsys, "--json", "run", "--date", day, "--source", "global", "--kind", "all")

    assert code == 0
    assert function.events == [
        {"date": day, "source": "global"},
        {"date": day, "source": "global", "kind": "account"},
    ]
    answer = json.loads(out)
    assert (answer["date"], answer["source"], len(answer["kinds"])) == (day, "global", 2)


def test_backfill_with_source_passes_it_in_the_event_and_lists_each_job_with_its_source(
    two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = days_ago(3), days_ago(2)
    answer = {
        "from": first,
        "to": last,
        "days": 2,
        "enqueued": [{"source": "eu", "kind": "subusers", "date": last}],
        "skipped_already_exported": [{"source": "eu", "kind": "subusers", "date": first}],
    }
    two_sources.clients["lambda"] = function = FakeLambda(json.dumps(answer).encode())

    code, out, _ = cli(capsys, "backfill", "--from", first, "--to", last, "--source", "eu", "--kind", "subusers")

    assert code == 0
    assert function.events == [{"from": first, "to": last, "kind": "subusers", "source": "eu"}]
    assert out.splitlines() == [
        f"already exported  eu  subusers  {first}",
        f"enqueued          eu  subusers  {last}",
        f"2 days x 1 kinds (subusers) x 1 sources (eu), {first} .. {last}: 1 enqueued, 1 already exported "
        "(--force exports them again)",
    ]


def test_a_backfill_of_every_source_is_ordered_by_day_then_configured_source_then_kind(
    two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    queued = [
        {"source": "eu", "kind": "subusers", "date": day},
        {"source": "global", "kind": "account", "date": day},
        {"source": "global", "kind": "subusers", "date": day},
    ]
    answer = {"from": day, "to": day, "days": 1, "enqueued": queued, "skipped_already_exported": []}
    two_sources.clients["lambda"] = function = FakeLambda(json.dumps(answer).encode())

    code, out, _ = cli(capsys, "--json", "backfill", "--from", day, "--to", day)

    assert code == 0
    assert function.events == [{"from": day, "to": day}]  # every source: the function's own list
    document = json.loads(out)
    assert [(row["source"], row["kind"]) for row in document["by_day"]] == [
        ("global", "subusers"),
        ("global", "account"),
        ("eu", "subusers"),
    ]
    assert document["enqueued"] == queued  # the function's answer, as it gave it


def test_a_backfill_answer_in_another_shape_is_a_service_error(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    answer = {"from": day, "to": day, "days": 1, "enqueued": [f"subusers:{day}"], "skipped_already_exported": []}
    fake_aws.clients["lambda"] = FakeLambda(json.dumps(answer).encode())

    code, _, err = cli(capsys, "backfill", "--from", day, "--to", day)

    assert code == 4
    assert "backfill summary lists" in err


def test_a_backfill_wait_of_several_sources_names_the_missing_days_by_source(
    two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    queued = [{"source": name, "kind": "subusers", "date": day} for name in ("global", "eu")]
    answer = {"from": day, "to": day, "days": 1, "enqueued": queued, "skipped_already_exported": []}
    two_sources.clients["lambda"] = FakeLambda(json.dumps(answer).encode())
    two_sources.clients["s3"].put(f"seq/subuser_scores/source=global/dt={day}/scores.jsonl", at=START + 1)

    code, _, err = cli(capsys, "backfill", "--from", day, "--to", day, "--kind", "subusers", "--wait", "--timeout", "5")

    assert code == 1
    assert err.splitlines()[-1] == f"seq-export: 1 of 2 queued days not exported within 5 s: eu subusers {day}"


def test_status_of_several_sources_lists_one_document_per_source(
    two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    two_sources.clients["s3"].put("seq/subuser_scores/source=global/dt=2026-11-22/scores.jsonl")

    code, out, _ = cli(capsys, "status", "--date", "2026-11-22", "--json")
    text_code, text, _ = cli(capsys, "status", "--date", "2026-11-22")

    assert (code, text_code) == (1, 1)  # eu's day is not exported
    document = json.loads(out)
    assert document["date"] == "2026-11-22"
    assert [(s["source"], s["exported"]) for s in document["sources"]] == [("global", True), ("eu", False)]
    assert document["sources"][1]["key"] == "seq/subuser_scores/source=eu/dt=2026-11-22/scores.jsonl"
    assert text.splitlines()[0] == "source        global"
    assert "source        eu" in text.splitlines()


def test_status_of_one_source_of_several_is_that_sources_document(
    two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    two_sources.clients["s3"].put("seq/subuser_scores/source=eu/dt=2026-11-22/scores.jsonl")

    code, out, _ = cli(capsys, "status", "--date", "2026-11-22", "--source", "eu", "--json")

    assert code == 0
    assert json.loads(out) | {"last_modified": None} == {
        "date": "2026-11-22",
        "source": "eu",
        "kind": "subusers",
        "exported": True,
        "bucket": "env-bucket",
        "key": "seq/subuser_scores/source=eu/dt=2026-11-22/scores.jsonl",
        "bytes": 120,
        "last_modified": None,
        "records": 3,
        "records_from": "metadata",
        "exported_at": None,
    }


def test_low_scores_lines_show_each_items_source(fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    class Scanning:
        def get_paginator(self, name: str) -> Any:
            assert name == "scan"
            return SimpleNamespace(paginate=self.pages)

        def pages(self, **kwargs: Any) -> list[dict[str, Any]]:
            return [{"Items": [LATEST_ITEM] if kwargs["Segment"] == 0 else [], "ScannedCount": 1}]

    fake_aws.clients["dynamodb"] = Scanning()

    code, out, _ = cli(capsys, "low-scores", "--max", "4")

    assert code == 0
    assert out.splitlines()[:2] == [
        " score  user_id      source  username                 date",
        "  3.47  100001       default subuser-100001           2026-11-22",
    ]


def test_run_goes_on_to_the_next_source_when_the_function_fails_for_one_and_exits_4(
    two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    two_sources.clients["lambda"] = function = FailingForLambda("global")

    code, out, _ = cli(capsys, "run", "--date", day)

    assert code == 4
    assert [event["source"] for event in function.events] == ["global", "eu"]
    sections = out.split("\n\n")
    assert sections[0].splitlines()[:2] == [
        "source        global",
        f"failed        subusers {day}: function env-function failed: Unhandled: SendGrid answered 401 Unauthorized",
    ]
    assert f"exported      subusers {day}: 3 records (1 ineligible) from 1 pages" in sections[1]
