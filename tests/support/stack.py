"""The local stack's handle (``Stack``) for integration tests, with its day and metric helpers."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from local.seq_simulator import Scenario, SeqSimulator
from local.stack import Resources, new_api_key, sources_json
from seq_export import handler, record_codec, wiring
from seq_export.config import Env, Settings, Source
from seq_export.layout import day_key
from seq_export.observability import SOURCE_DIMENSION
from seq_export_cli.local_lambda import Delivery, FakeLambdaContext, SqsEventSource, deliver_until


def at_once(calls: list[Callable[[], dict[str, Any]]], *, timeout: float = 120) -> list[dict[str, Any]]:
    """Run ``calls`` in threads released together (a barrier), each bounded by ``timeout``;
    their answers in the order of ``calls``. Any call's error fails the test, as does a call
    still running after ``timeout``."""
    answers: list[dict[str, Any] | None] = [None] * len(calls)
    errors: list[BaseException] = []
    start = threading.Barrier(len(calls), timeout=60)

    def run(index: int) -> None:
        start.wait()
        try:
            answers[index] = calls[index]()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), f"a call did not end within {timeout:.0f} s"
    assert errors == []
    return [answer for answer in answers if answer is not None]


def days_ago(n: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=n)).isoformat()


class ShortContext(FakeLambdaContext):
    """A Lambda context whose remaining time runs out once ``pages`` pages have been served."""

    def __init__(self, simulator: SeqSimulator, pages: int) -> None:
        super().__init__()
        self._simulator = simulator
        self._until = simulator.pages_served() + pages

    def get_remaining_time_in_millis(self) -> int:
        return 900_000 if self._simulator.pages_served() < self._until else 30_000


def invoke_short(stack: Stack, event: dict[str, Any], pages: int) -> dict[str, Any]:
    """Invoke with a context that runs short of time after ``pages`` pages."""
    return stack.invoke(event, ShortContext(stack.simulator, pages))


def run_to_completion(
    stack: Stack, day: str, pages: int = 1, *, context: Callable[[], FakeLambdaContext] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Export ``day`` with every invocation cut short after ``pages`` pages (or given a fresh
    ``context()``), delivering each continuation one at a time until none is left; returns the
    first answer and the continuation bodies."""
    new_context = context or (lambda: ShortContext(stack.simulator, pages))
    first = stack.invoke({"date": day}, new_context())
    bodies: list[dict[str, Any]] = []

    def continued(delivery: Delivery) -> None:
        bodies.extend(json.loads(message["Body"]) for message in delivery.messages)
        assert delivery.response == {"batchItemFailures": []}

    queue = SqsEventSource(stack.sqs, stack.resources.queue_url, batch_size=1)
    deliver_until(queue, lambda event: stack.invoke(event, new_context()), on_delivery=continued, wait_seconds=1)
    return first, bodies


def emf_documents(output: str) -> list[dict[str, Any]]:
    """Every EMF document in ``output`` (one JSON document a line, as Lambda ships them)."""
    return [json.loads(line) for line in output.splitlines() if '"_aws"' in line]


def emitted_metrics(output: str, *, source: str | None = None) -> Counter[str]:
    """Totals of every EMF count metric in ``output``: the stack-wide series (dimension
    ``service`` alone), or with ``source`` that source's own (a total of ``MeanScore`` means
    nothing: read it from ``emf_documents``)."""
    return count_metrics(emf_documents(output), source=source)


def count_metrics(documents: list[dict[str, Any]], *, source: str | None = None) -> Counter[str]:
    """``emitted_metrics`` over parsed documents."""
    totals: Counter[str] = Counter()
    for document in documents:
        if document.get(SOURCE_DIMENSION) != source:
            continue
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                if metric["Unit"] != "Count":
                    continue
                values = document[metric["Name"]]
                totals[metric["Name"]] += int(sum(values) if isinstance(values, list) else values)
    return totals


@dataclass
class Stack:
    """The deployed function's world, locally: resources on moto, the simulator, the handler.

    Every invocation's EMF output is parsed into ``metrics`` (totals of the counts since the test
    began) and kept whole in ``documents``."""

    resources: Resources
    simulator: SeqSimulator
    session: boto3.session.Session
    settings: Settings
    monkeypatch: pytest.MonkeyPatch
    sleeps: list[float] = field(default_factory=list)
    metrics: Counter[str] = field(default_factory=Counter)
    documents: list[dict[str, Any]] = field(default_factory=list)

    def source_metrics(self, source: str) -> Counter[str]:
        """Totals of ``source``'s own series since the test began."""
        return count_metrics(self.documents, source=source)

    def invoke(self, event: dict[str, Any], context: FakeLambdaContext | None = None) -> dict[str, Any]:
        output = io.StringIO()
        try:
            with contextlib.redirect_stdout(output):
                return dict(handler.lambda_handler(event, context or FakeLambdaContext()))
        finally:
            self.metrics.update(emitted_metrics(output.getvalue()))
            self.documents.extend(emf_documents(output.getvalue()))

    @property
    def queue(self) -> SqsEventSource:
        """The retry queue's event source, as Lambda's event source mapping would play it."""
        return SqsEventSource(self.sqs, self.resources.queue_url)

    def deliver(self, *, wait_seconds: int = 0, retry_failed_at_once: bool = False) -> dict[str, Any] | None:
        return self.queue.deliver_once(
            self.invoke, wait_seconds=wait_seconds, retry_failed_at_once=retry_failed_at_once
        )

    @property
    def sqs(self) -> Any:
        return self.session.client("sqs")

    def key(self, day: str, source: str | None = None) -> str:
        """The key of ``source``'s subusers' day (the first configured source's by default)."""
        return day_key(self.settings.scores_prefix, source or self.settings.source_names[0], day)

    def object_keys(self) -> list[str]:
        answer = self.session.client("s3").list_object_versions(Bucket=self.resources.bucket)
        return sorted(v["Key"] for v in answer.get("Versions", []))

    def data_keys(self) -> list[str]:
        """Keys of published days (what Athena reads): no quarantined answers, no staged lines
        (both live under a folder whose name starts with ``_``, which query engines skip)."""
        return [key for key in self.object_keys() if not any(part.startswith("_") for part in key.split("/"))]

    def quarantined(self) -> list[bytes]:
        s3 = self.session.client("s3")
        keys = [key for key in self.object_keys() if "/_quarantine/" in key]
        return [s3.get_object(Bucket=self.resources.bucket, Key=key)["Body"].read() for key in keys]

    def lines(self, day: str, source: str | None = None) -> list[dict[str, Any]]:
        key = self.key(day, source)
        body = self.session.client("s3").get_object(Bucket=self.resources.bucket, Key=key)["Body"].read()
        return record_codec.decode(body)

    def band_counts(self, day: str) -> dict[str, int]:
        """``SubusersWithScore1`` to ``5`` as the day's exported lines call for them: the scored
        lines by their score's integer part (3.5 is in band 3)."""
        counts = {f"SubusersWithScore{band}": 0 for band in range(1, 6)}
        for line in self.lines(day):
            if line["score"] is not None:
                counts[f"SubusersWithScore{int(line['score'])}"] += 1
        return counts

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
        wiring.use_dependencies(wiring.build_dependencies(self.settings, sleep=self.sleeps.append))

    def add_source(self, name: str, scenario: Scenario, **env: str) -> None:
        """Configure one more source, ``name`` (no account scores): another parent account on the
        same simulated host, reached with a key of its own in a secret of its own."""
        key = new_api_key()
        self.simulator.add_account(key, scenario, label=name)
        secret = self.session.client("secretsmanager").create_secret(Name=f"seq-export/{name}", SecretString=key)
        sources = [*self.settings.sources, Source(name, self.simulator.url, secret["ARN"], account_scores=False)]
        self.monkeypatch.delenv(Env.SEQ_API_BASE_URL, raising=False)
        self.monkeypatch.delenv(Env.SEQ_API_KEY_SECRET_ID, raising=False)
        self.configure(**{Env.SEQ_SOURCES: sources_json(sources)}, **env)
