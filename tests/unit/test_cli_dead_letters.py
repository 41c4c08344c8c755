"""``seq-export dead-letters --redrive`` against AWS: SQS's message move task, which moto does not
implement, so botocore's own ``Stubber`` plays SQS here and checks every request the command
makes (the listing and the local redrive run over HTTP in ``tests/integration``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

import seq_export_cli.app as app_module
from seq_export.config import Env
from seq_export_cli.app import AWS_CONFIG, App
from seq_export_cli.dead_letter_queue import age_text
from seq_export_cli.dead_letters import MOVE_COMPLETED
from seq_export_cli.options import Options
from tests.support import Clock
from tests.support.cli import cli

RETRY_QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/seq-export-retry"
DEAD_LETTERS = "https://sqs.eu-west-1.amazonaws.com/123456789012/seq-export-dlq"
RETRY_ARN = "arn:aws:sqs:eu-west-1:123456789012:seq-export-retry"
DEAD_LETTERS_ARN = "arn:aws:sqs:eu-west-1:123456789012:seq-export-dlq"
HANDLE = "eyJ0YXNrSWQiOiJkYjQ5In0="
#: When the move task the command starts was started (epoch milliseconds).
STARTED = 1_795_000_600_000
GAVE_UP = {
    "source": "default",
    "kind": "subusers",
    "date": "2026-11-28",
    "attempt": 1,
    "reason": "gave_up_not_ready",
    "run": "fresh",
    "gave_up_run": "daily-2026-11-28",
}
PEEK = {
    "QueueUrl": DEAD_LETTERS,
    "MaxNumberOfMessages": 10,
    "VisibilityTimeout": 0,
    "WaitTimeSeconds": 0,
    "AttributeNames": ["All"],
}
MESSAGE = {
    "MessageId": "m-1",
    "ReceiptHandle": "r-1",
    "Body": json.dumps(GAVE_UP),
    "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795000000000"},
}


class Sqs:
    """A real botocore SQS client whose every answer comes from ``stubber``, in order."""

    def __init__(self) -> None:
        session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name="eu-west-1")
        self.client = session.client("sqs")
        self.stubber = Stubber(self.client)

    def expect(self, operation: str, params: dict[str, Any], answer: dict[str, Any]) -> None:
        self.stubber.add_response(operation, answer, params)

    def expect_listing(self) -> None:
        """What every ``dead-letters`` does first: the retry queue's maxReceiveCount, then a peek
        repeated until a round brings nothing new."""
        policy = json.dumps({"deadLetterTargetArn": DEAD_LETTERS_ARN, "maxReceiveCount": 3})
        self.expect(
            "get_queue_attributes",
            {"QueueUrl": RETRY_QUEUE, "AttributeNames": ["RedrivePolicy"]},
            {"Attributes": {"RedrivePolicy": policy}},
        )
        self.expect("receive_message", PEEK, {"Messages": [MESSAGE]})
        self.expect("receive_message", PEEK, {"Messages": [MESSAGE]})

    def expect_move_task_started(self, *, wait: bool = False, earlier: dict[str, Any] | None = None) -> None:
        """The queues' ARNs, then (``wait``: after reading the newest task before it, ``earlier``)
        the move task from the dead-letter queue to the retry queue."""
        for url, arn in ((DEAD_LETTERS, DEAD_LETTERS_ARN), (RETRY_QUEUE, RETRY_ARN)):
            self.expect(
                "get_queue_attributes",
                {"QueueUrl": url, "AttributeNames": ["QueueArn"]},
                {"Attributes": {"QueueArn": arn}},
            )
        if wait:
            self.expect(
                "list_message_move_tasks",
                {"SourceArn": DEAD_LETTERS_ARN, "MaxResults": 1},
                {"Results": [earlier] if earlier else []},
            )
        self.expect(
            "start_message_move_task",
            {"SourceArn": DEAD_LETTERS_ARN, "DestinationArn": RETRY_ARN},
            {"TaskHandle": HANDLE},
        )

    def expect_task(self, status: str, *, moved: int, **more: Any) -> None:
        self.expect(
            "list_message_move_tasks",
            {"SourceArn": DEAD_LETTERS_ARN, "MaxResults": 1},
            {"Results": [task(status, moved=moved, **more)]},
        )


def task(status: str, *, moved: int, started: int = STARTED, **more: Any) -> dict[str, Any]:
    """A move task of the dead-letter queue as ListMessageMoveTasks lists it."""
    return {
        "Status": status,
        "SourceArn": DEAD_LETTERS_ARN,
        "DestinationArn": RETRY_ARN,
        "ApproximateNumberOfMessagesMoved": moved,
        "ApproximateNumberOfMessagesToMove": 1,
        "StartedTimestamp": started,
    } | more


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Iterator[Sqs]:
    """The commands' ``App`` with the stubbed SQS client, the queues in its environment, and a
    clock that moves only when the command sleeps; every stubbed answer must have been asked for."""
    stubbed = Sqs()
    environ = {Env.RETRY_QUEUE_URL: RETRY_QUEUE, Env.DEAD_LETTER_QUEUE_URL: DEAD_LETTERS}

    class StubbedApp(App):
        def __init__(self, options: Options) -> None:
            super().__init__(options, environ=environ, sleep=clock.sleep, clock=clock)

        def client(self, service: str, config: Config = AWS_CONFIG) -> Any:
            assert service == "sqs", service
            return stubbed.client

    monkeypatch.setattr(app_module, "App", StubbedApp)
    with stubbed.stubber:
        yield stubbed
    stubbed.stubber.assert_no_pending_responses()


def test_redrive_starts_a_message_move_task_from_the_dead_letter_queue_to_the_retry_queue_and_names_it(
    sqs: Sqs, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs.expect_listing()
    sqs.expect_move_task_started()

    code, out, err = cli(capsys, "dead-letters", "--redrive")

    assert code == 0
    assert (
        out == f"moving        1 message from the dead-letter queue to the retry queue (message move task {HANDLE})\n"
    )
    assert "`seq-export status --date D` says when a day is exported" in err


def test_redrive_json_names_the_task_and_both_queues_arns(sqs: Sqs, capsys: pytest.CaptureFixture[str]) -> None:
    sqs.expect_listing()
    sqs.expect_move_task_started()

    code, out, _ = cli(capsys, "--json", "dead-letters", "--redrive")
    document = json.loads(out)

    assert code == 0
    assert document["redrive"] == {
        "mode": "message_move_task",
        "task_handle": HANDLE,
        "source_arn": DEAD_LETTERS_ARN,
        "destination_arn": RETRY_ARN,
        "messages": 1,
        "status": "started",
    }
    [letter] = document["dead_letters"]
    assert (letter["date"], letter["why"]) == ("2026-11-28", "gave_up_not_ready")


def test_redrive_wait_polls_the_move_task_until_it_completes_and_says_how_many_it_moved(
    sqs: Sqs, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs.expect_listing()
    sqs.expect_move_task_started(wait=True)
    sqs.expect_task("RUNNING", moved=0, TaskHandle=HANDLE)
    sqs.expect_task("COMPLETED", moved=1)

    code, out, _ = cli(capsys, "dead-letters", "--redrive", "--wait")

    assert code == 0
    assert (
        out.splitlines()[-1]
        == f"moved         1 message back to the retry queue (message move task {HANDLE} completed)"
    )
    assert clock.sleeps == [5]


def test_a_failed_move_task_exits_4_naming_the_task_and_why(sqs: Sqs, capsys: pytest.CaptureFixture[str]) -> None:
    sqs.expect_listing()
    sqs.expect_move_task_started(wait=True)
    sqs.expect_task("FAILED", moved=0, FailureReason="AWS.SimpleQueueService.NonExistentQueue")

    code, out, err = cli(capsys, "dead-letters", "--redrive", "--wait")

    assert (code, out) == (4, "")
    assert err.splitlines()[-1] == (
        f"seq-export: SQS message move task {HANDLE} from {DEAD_LETTERS_ARN} to {RETRY_ARN} failed: "
        "AWS.SimpleQueueService.NonExistentQueue (0 of 1 moved)"
    )


def test_a_move_task_still_running_at_the_timeout_exits_1_saying_so(
    sqs: Sqs, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs.expect_listing()
    sqs.expect_move_task_started(wait=True)
    sqs.expect_task("RUNNING", moved=0, TaskHandle=HANDLE)
    sqs.expect_task("RUNNING", moved=0, TaskHandle=HANDLE)

    code, _, err = cli(capsys, "dead-letters", "--redrive", "--wait", "--timeout", "3")

    assert code == 1
    assert clock.sleeps == [3]
    assert f"seq-export: message move task {HANDLE} is still running after 3 s" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--wait"], "--wait applies to --redrive"),
        (["--timeout", "5"], "--timeout applies to --redrive"),
        (["--redrive", "--timeout", "5"], "--timeout applies to --wait"),
        (["--redrive", "--local", "--stack", "seq-export"], "--local runs with the function's environment"),
    ],
)
def test_options_that_do_not_go_together_are_usage_errors_before_any_aws_call(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    def no_client(self: App, service: str, config: Config = AWS_CONFIG) -> Any:
        raise AssertionError(f"an AWS client ({service}) before the usage check")

    monkeypatch.setattr(App, "client", no_client)

    code, _, err = cli(capsys, "dead-letters", *argv)

    assert code == 2
    assert message in err


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (0, "0s"), (59, "59s"), (60, "1m"), (3_725, "1h 2m"), (90_000, "1d 1h")],
)
def test_an_age_reads_in_its_largest_units(seconds: int | None, shown: str) -> None:
    assert age_text(seconds) == shown


def test_a_wait_does_not_take_an_earlier_finished_move_task_for_the_one_it_started(
    sqs: Sqs, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier = task(MOVE_COMPLETED, moved=7, started=STARTED - 86_400_000)  # yesterday's redrive
    sqs.expect_listing()
    sqs.expect_move_task_started(wait=True, earlier=earlier)
    sqs.expect("list_message_move_tasks", {"SourceArn": DEAD_LETTERS_ARN, "MaxResults": 1}, {"Results": [earlier]})
    sqs.expect_task(MOVE_COMPLETED, moved=1)

    code, out, _ = cli(capsys, "dead-letters", "--redrive", "--wait")

    assert code == 0
    assert out.splitlines()[-1].startswith("moved         1 message back to the retry queue")
    assert clock.sleeps == [5]
