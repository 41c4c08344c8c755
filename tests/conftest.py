"""Shared fixtures: one moto server and one SEQ simulator per session, fresh state per test."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from local.seq_simulator import Scenario, SeqSimulator
from local.stack import (
    AWS_TEST_ENV,
    FakeLambdaContext,
    Resources,
    create_resources,
    deliver_once,
    new_api_key,
    reset_moto,
    start_moto,
)
from seq_export import handler
from seq_export.config import Settings
from seq_export.observability import logger, metrics

# Unit tests must never reach real AWS by accident: fake credentials, no endpoint.
for _key, _value in AWS_TEST_ENV.items():
    os.environ.setdefault(_key, _value)


@pytest.fixture(autouse=True)
def _clean_powertools() -> Iterator[None]:
    metrics.clear_metrics()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    yield
    metrics.clear_metrics()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    handler.use_dependencies(None)


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Every line the function logs, formatted exactly as Lambda would ship it (JSON)."""
    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(logger.registered_formatter)
    target = logging.getLogger(logger.name)
    target.addHandler(capture)
    yield stream
    target.removeHandler(capture)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server, endpoint = start_moto()
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def api_key() -> str:
    return new_api_key()


@pytest.fixture(scope="session")
def simulator(api_key: str) -> Iterator[SeqSimulator]:
    with SeqSimulator(api_key) as sim:
        yield sim


@dataclass
class Stack:
    """The deployed function's world, locally: resources on moto, the simulator, the handler."""

    resources: Resources
    simulator: SeqSimulator
    session: boto3.session.Session
    settings: Settings
    monkeypatch: pytest.MonkeyPatch
    sleeps: list[float] = field(default_factory=list)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return dict(handler.lambda_handler(event, FakeLambdaContext()))

    def deliver(self, *, wait_seconds: int = 0) -> dict[str, Any] | None:
        return deliver_once(self.sqs, self.resources.queue_url, self.invoke, wait_seconds=wait_seconds)

    @property
    def sqs(self) -> Any:
        return self.session.client("sqs")

    def key(self, day: str) -> str:
        return f"{self.settings.scores_prefix}/dt={day}/scores.jsonl"

    def object_keys(self) -> list[str]:
        answer = self.session.client("s3").list_object_versions(Bucket=self.resources.bucket)
        return sorted(v["Key"] for v in answer.get("Versions", []))

    def data_keys(self) -> list[str]:
        """Keys of published days (what Athena reads): no quarantined answers, no staged lines."""
        return [key for key in self.object_keys() if "/_quarantine/" not in key and "/_staging/" not in key]

    def quarantined(self) -> list[bytes]:
        s3 = self.session.client("s3")
        keys = [key for key in self.object_keys() if "/_quarantine/" in key]
        return [s3.get_object(Bucket=self.resources.bucket, Key=key)["Body"].read() for key in keys]

    def lines(self, day: str) -> list[dict[str, Any]]:
        body = self.session.client("s3").get_object(Bucket=self.resources.bucket, Key=self.key(day))["Body"].read()
        return [json.loads(line, parse_float=Decimal) for line in body.decode().splitlines()]

    def item(self, user_id: str) -> dict[str, Any] | None:
        table = self.session.resource("dynamodb").Table(self.resources.table)
        return table.get_item(Key={"user_id": user_id}).get("Item")

    def queue_counts(self, queue_url: str | None = None) -> dict[str, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url or self.resources.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
        )["Attributes"]
        return {
            "visible": int(attributes["ApproximateNumberOfMessages"]),
            "delayed": int(attributes["ApproximateNumberOfMessagesDelayed"]),
        }

    def dlq_bodies(self) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(QueueUrl=self.resources.dlq_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]

    def configure(self, **env: str) -> None:
        """Rebuild the function's dependencies with changed settings (as a redeploy would)."""
        for key, value in env.items():
            self.monkeypatch.setenv(key, value)  # undone after the test
        self.settings = Settings.from_env()
        handler.use_dependencies(handler.build_dependencies(self.settings, sleep=self.sleeps.append))


@pytest.fixture
def stack(moto_endpoint: str, simulator: SeqSimulator, api_key: str, monkeypatch: pytest.MonkeyPatch) -> Stack:
    reset_moto(moto_endpoint)
    simulator.reset(Scenario(subusers=2_500))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    for key, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    session = boto3.session.Session()
    resources = create_resources(session, api_key)
    for key, value in resources.env(simulator.url, NOT_READY_DELAY_SECONDS="1", MAX_NOT_READY_ATTEMPTS="3").items():
        monkeypatch.setenv(key, value)
    stack = Stack(
        resources=resources,
        simulator=simulator,
        session=session,
        settings=Settings.from_env(),
        monkeypatch=monkeypatch,
    )
    stack.configure()
    return stack
