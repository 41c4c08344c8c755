"""A local stand-in for the deployed stack: moto in server mode plus the SEQ simulator.

Used by the run command and the integration tests alike, so both exercise the same wiring:
boto3 reaches moto through the standard ``AWS_ENDPOINT_URL`` and the function reads the
same environment variables it reads in Lambda.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from local.seq_simulator import Scenario, SeqSimulator
from seq_export.cli import sqs_event as cli_sqs_event

REGION = "us-east-1"
#: Receives before a message moves to the dead-letter queue; the template uses the same value.
MAX_RECEIVE_COUNT = 3

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_SERVICE_NAME": "seq-export",
    "POWERTOOLS_METRICS_NAMESPACE": "SeqExport",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


@dataclass(frozen=True)
class Resources:
    bucket: str
    table: str
    queue_url: str
    dlq_url: str
    secret_id: str
    idempotency_table: str

    def env(self, api_base_url: str, **overrides: str) -> dict[str, str]:
        """The function's environment, as the template sets it."""
        return {
            "SEQ_API_BASE_URL": api_base_url,
            "SEQ_API_KEY_SECRET_ID": self.secret_id,
            "SCORES_BUCKET": self.bucket,
            "SCORES_PREFIX": "seq/subuser_scores",
            "LATEST_SCORES_TABLE": self.table,
            "RETRY_QUEUE_URL": self.queue_url,
            "DEAD_LETTER_QUEUE_URL": self.dlq_url,
            "IDEMPOTENCY_TABLE": self.idempotency_table,
            **overrides,
        }


def start_moto() -> tuple[ThreadedMotoServer, str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def reset_moto(endpoint: str) -> None:
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()


def create_resources(session: boto3.session.Session, api_key: str, *, name: str = "seq-export") -> Resources:
    """Bucket, latest-score table (with its username index), retry queue with its DLQ, and the API-key secret."""
    s3 = session.client("s3")
    bucket = f"{name}-lake-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    table = f"{name}-latest-scores"
    dynamodb = session.client("dynamodb")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "user_id", "AttributeType": "S"},
            {"AttributeName": "username", "AttributeType": "S"},
        ],
        # As in template.yaml: lookups by username (sparse: no username, no entry).
        GlobalSecondaryIndexes=[
            {
                "IndexName": "username-index",
                "KeySchema": [{"AttributeName": "username", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    idempotency_table = f"{name}-idempotency"
    dynamodb.create_table(
        TableName=idempotency_table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=idempotency_table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )
    sqs = session.client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=f"{name}-retry",
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}),
        },
    )["QueueUrl"]
    secret_id = session.client("secretsmanager").create_secret(
        Name=f"{name}/sendgrid-api-key", SecretString=json.dumps({"api_key": api_key})
    )["ARN"]
    return Resources(
        bucket=bucket,
        table=table,
        queue_url=queue_url,
        dlq_url=dlq_url,
        secret_id=secret_id,
        idempotency_table=idempotency_table,
    )


def new_api_key() -> str:
    """A SendGrid-shaped fake key, fresh per run, so tests can search logs for it."""
    return f"SG.{secrets.token_urlsafe(16)}.{secrets.token_urlsafe(32)}"


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextmanager
def local_stack(scenario: Scenario | None = None) -> Iterator[tuple[SeqSimulator, Resources, str]]:
    """Start moto and the simulator, create the resources, point boto3 at moto; undo on exit."""
    server, endpoint = start_moto()
    api_key = new_api_key()
    simulator = SeqSimulator(api_key, scenario)
    simulator.start()
    try:
        with patched_environ({**AWS_TEST_ENV, "AWS_ENDPOINT_URL": endpoint}):
            resources = create_resources(boto3.session.Session(), api_key)
            yield simulator, resources, endpoint
    finally:
        simulator.stop()
        server.stop()


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source builds from received messages (as the CLI builds it)."""
    return cli_sqs_event(messages, queue_arn, REGION)


def deliver_once(
    sqs: Any, queue_url: str, handler: Callable[[dict[str, Any]], dict[str, Any]], *, wait_seconds: int = 20
) -> dict[str, Any] | None:
    """Do what the event source mapping does once: receive, invoke, delete what succeeded.

    Returns the handler's answer, or None if no message became visible within ``wait_seconds``
    (a long poll: SQS answers as soon as a delayed message becomes visible).
    """
    answer = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds, AttributeNames=["All"]
    )
    messages = answer.get("Messages", [])
    if not messages:
        return None
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    response = handler(sqs_event(messages, arn))
    failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    for message in messages:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return response


@dataclass
class FakeLambdaContext:
    """The attributes Powertools reads from Lambda's context object."""

    function_name: str = "seq-export-local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:seq-export-local"
    aws_request_id: str = "local"
    timeout_seconds: float = 900.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
