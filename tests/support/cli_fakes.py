"""Recording fakes of the AWS clients as the CLI's commands call them, for unit tests: S3's
HeadObject, Lambda's Invoke, CloudFormation's outputs, SQS as the retry queue and as the
dead-letter queue; and the deployed function's answers. ``FakeAws`` is what the ``fake_aws``
fixture (``tests/unit/conftest.py``) gives every ``App`` a command builds; the latest-score
table's fake is ``fakes.FakeDynamoDB``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from seq_export_cli.options import Options
from tests.support.fakes import Clock, client_error

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

#: A deployed stack's outputs: every one a command reads.
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
#: When every object of ``FakeS3`` was last modified.
MODIFIED = datetime(2026, 11, 23, 6, 0, 3, tzinfo=UTC)
#: ``SEQ_SOURCES`` of two sources on SendGrid's two hosts; eu exports no account scores.
TWO_SOURCES = json.dumps(
    [
        {"name": "global", "base_url": "https://api.sendgrid.com", "secret_id": "global-key"},
        {"name": "eu", "base_url": "https://api.eu.sendgrid.com", "secret_id": "eu-key", "account_scores": False},
    ]
)
#: The output ``SourceNames`` of a stack of those two sources.
SOURCE_NAMES_OUTPUT = {"OutputKey": "SourceNames", "OutputValue": "global,eu"}


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


class PerSourceLambda(FakeLambda):
    """Answers each direct date event with the export of the event's own source."""

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        event = json.loads(kwargs["Payload"])
        self.payload = exported_answer(event["date"], event["source"])
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


class FakeCloudFormation:
    def __init__(self, outputs: list[dict[str, str]]) -> None:
        self.outputs = outputs
        self.stacks: list[str] = []

    def describe_stacks(self, *, StackName: str) -> dict[str, Any]:
        self.stacks.append(StackName)
        return {"Stacks": [{"StackName": StackName, "Outputs": self.outputs}]}


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


def exported_answer(day: str, source: str = "default") -> bytes:
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


#: The run the function's answers queue their jobs under.
RUN = "0123456789abcdef"


def day_object(day: str) -> str:
    """The key of the default source's subusers' ``day`` in the environment's lake."""
    return f"seq/subuser_scores/source=default/dt={day}/scores.jsonl"


#: A subuser's item in the latest-score table, as GetItem and Scan return it.
LATEST_ITEM = {
    "user_id": {"S": "100001"},
    "source": {"S": "default"},
    "username": {"S": "subuser-100001"},
    "date": {"S": "2026-11-22"},
    "score": {"N": "3.47"},
    "metrics": {"M": {"open_rate": {"N": "4"}, "spam_rate": {"N": "1.125"}}},
    "updated_at": {"S": "2026-11-23T06:00:03.120Z"},
}
