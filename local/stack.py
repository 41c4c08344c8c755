"""A local stand-in for the deployed stack: moto in server mode plus the SEQ simulator.

Used by the run command and the integration tests alike, so both exercise the same wiring:
boto3 reaches moto through the standard ``AWS_ENDPOINT_URL`` and the function reads the
same environment variables it reads in Lambda. A stack of one source is configured as a
single-source stack always was (no ``SEQ_SOURCES``); one of several sources gets ``SEQ_SOURCES``,
each source with a simulated SendGrid host (a ``SeqSimulator`` on a port of its own) and a
secret holding its own API key.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace

import boto3
import requests
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

from local.loopback import Serving
from local.seq_simulator import Scenario, SeqSimulator
from seq_export.config import SOURCE_FIELDS, Env, Source
from seq_export.layout import DEFAULT_PREFIX, DEFAULT_SOURCE, TABLE_KEY, USERNAME_INDEX
from seq_export_cli.local_lambda import QUEUE_VISIBILITY_TIMEOUT_SECONDS

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
    secret_id: str  # the first source's API-key secret (the only one of a single-source stack)
    idempotency_table: str
    #: Every source's API-key secret (ARN), by source name, the first source's first.
    secrets: Mapping[str, str] = field(default_factory=dict)

    def _shared_env(self) -> dict[str, str]:
        return {
            Env.SCORES_BUCKET: self.bucket,
            Env.SCORES_PREFIX: DEFAULT_PREFIX,
            Env.LATEST_SCORES_TABLE: self.table,
            Env.RETRY_QUEUE_URL: self.queue_url,
            Env.DEAD_LETTER_QUEUE_URL: self.dlq_url,
            Env.IDEMPOTENCY_TABLE: self.idempotency_table,
        }

    def env(self, api_base_url: str, **overrides: str) -> dict[str, str]:
        """The function's environment of a single-source stack as it was configured before
        ``SEQ_SOURCES`` existed (still accepted): the one source ``default``, with ``secret_id``."""
        return {
            Env.SEQ_API_BASE_URL: api_base_url,
            Env.SEQ_API_KEY_SECRET_ID: self.secret_id,
            **self._shared_env(),
            **overrides,
        }

    def source(self, name: str, base_url: str, *, account_scores: bool = True) -> Source:
        """Source ``name`` at ``base_url``, with the secret created for it (``add_source_secret``)."""
        if name not in self.secrets:
            raise KeyError(f"no secret for source {name!r}; the local stack has {', '.join(self.secrets)}")
        return Source(name=name, base_url=base_url, secret_id=self.secrets[name], account_scores=account_scores)

    def sources_env(self, sources: Sequence[Source], **overrides: str) -> dict[str, str]:
        """The function's environment with ``SEQ_SOURCES`` listing ``sources`` (the first being the
        one the daily run exports inline), and none of the single-source variables beside it."""
        return {Env.SEQ_SOURCES: sources_json(sources), **self._shared_env(), **overrides}


def sources_json(sources: Sequence[Source]) -> str:
    """``SEQ_SOURCES``' value: a JSON list of ``{"name", "base_url", "secret_id", "account_scores"}``."""
    return json.dumps([{name: getattr(source, name) for name in SOURCE_FIELDS} for source in sources])


def start_moto() -> tuple[Serving, str]:
    """moto in server mode on a free port, as moto's ``ThreadedMotoServer`` serves it, with bounded
    start and stop (``local.loopback.Serving``): the server and its endpoint."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = Serving(DomainDispatcherApplication(create_backend_app), request_handler=MotoRequestHandler)
    return server, server.url


def reset_moto(endpoint: str) -> None:
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()


def create_resources(
    session: boto3.session.Session, api_key: str, *, name: str = "seq-export", source: str = DEFAULT_SOURCE
) -> Resources:
    """Bucket, latest-score table (with its username index), retry queue with its DLQ, and the
    API-key secret of the first source (``source``); ``add_source_secret`` adds another source's."""
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
            "VisibilityTimeout": str(QUEUE_VISIBILITY_TIMEOUT_SECONDS),
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
        secrets={source: secret_id},
    )


def add_source_secret(
    session: boto3.session.Session, resources: Resources, source: str, api_key: str, *, name: str = "seq-export"
) -> Resources:
    """``resources`` with one more source's secret, holding that source's own API key."""
    if source in resources.secrets:
        raise ValueError(f"source {source!r} already has a secret")
    secret_id = session.client("secretsmanager").create_secret(
        Name=f"{name}/{source}/sendgrid-api-key", SecretString=json.dumps({"api_key": api_key})
    )["ARN"]
    return replace(resources, secrets={**resources.secrets, source: secret_id})


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


@dataclass(frozen=True)
class SourcePlan:
    """A source of the local stack: its name, the parent account its simulated host serves, and
    whether that account's own scores are exported."""

    name: str
    scenario: Scenario
    account_scores: bool = True


@dataclass(frozen=True)
class LocalSource:
    """A source as the local stack serves it: its plan and its simulated host (its own port)."""

    plan: SourcePlan
    simulator: SeqSimulator

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def url(self) -> str:
        return self.simulator.url


@dataclass(frozen=True)
class LocalStack:
    endpoint: str  # moto's
    resources: Resources
    sources: tuple[LocalSource, ...]  # the first is the one the daily run exports inline

    @property
    def simulator(self) -> SeqSimulator:
        """The first source's host."""
        return self.sources[0].simulator

    def function_env(self, **overrides: str) -> dict[str, str]:
        """The function's environment: a single-source stack's for one source (no ``SEQ_SOURCES``),
        ``SEQ_SOURCES`` for several."""
        if len(self.sources) == 1:
            only = self.sources[0]
            account = {} if only.plan.account_scores else {Env.EXPORT_ACCOUNT_SCORES: "false"}
            return self.resources.env(only.url, **account, **overrides)
        listed = [
            self.resources.source(source.name, source.url, account_scores=source.plan.account_scores)
            for source in self.sources
        ]
        return self.resources.sources_env(listed, **overrides)


@contextmanager
def local_stack(*plans: SourcePlan) -> Iterator[LocalStack]:
    """Start moto and one simulated SendGrid host per source (each serving its own parent account,
    reached with its own fresh key), create the resources with one secret per source, point boto3
    at moto; undo on exit. No plan: one source ``default`` with the simulator's default scenario."""
    plans = plans or (SourcePlan(DEFAULT_SOURCE, Scenario()),)
    server, endpoint = start_moto()
    reset_moto(endpoint)  # moto's backends are per process: a stack started in a test process starts empty
    with ExitStack() as running:
        running.callback(server.stop)
        served = []
        for plan in plans:
            simulator = SeqSimulator(new_api_key(), plan.scenario, label=plan.name)
            simulator.start()
            running.callback(simulator.stop)
            served.append(LocalSource(plan, simulator))
        with patched_environ({**AWS_TEST_ENV, "AWS_ENDPOINT_URL": endpoint}):
            session = boto3.session.Session()
            first = served[0]
            resources = create_resources(session, first.simulator.api_key, source=first.name)
            for source in served[1:]:
                resources = add_source_secret(session, resources, source.name, source.simulator.api_key)
            yield LocalStack(endpoint=endpoint, resources=resources, sources=tuple(served))
