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
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
import requests
from moto.server import ThreadedMotoServer

from local.seq_simulator import Scenario, SeqSimulator
from seq_export.layout import DEFAULT_PREFIX, TABLE_KEY, USERNAME_INDEX

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
            "SCORES_PREFIX": DEFAULT_PREFIX,
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
        KeySchema=[{"AttributeName": TABLE_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": TABLE_KEY, "AttributeType": "S"},
            {"AttributeName": "username", "AttributeType": "S"},
        ],
        # As in template.yaml: lookups by username (sparse: no username, no entry).
        GlobalSecondaryIndexes=[
            {
                "IndexName": USERNAME_INDEX,
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
