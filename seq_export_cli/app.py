"""Where the commands point and what one command's run holds.

``--stack NAME`` reads the CloudFormation stack's outputs; otherwise the function's own
variables (``SCORES_BUCKET``, ``SCORES_PREFIX``, ``LATEST_SCORES_TABLE``, ``RETRY_QUEUE_URL``)
and ``SEQ_EXPORT_FUNCTION`` for the function's name. Credentials, region and endpoints are
boto3's own (``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``, ...), so the same command
works against the local stack of ``python -m local.run --keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import boto3
from botocore.config import Config

from seq_export.config import aws_client_config
from seq_export.layout import DEFAULT_PREFIX, day_key, normal_prefix
from seq_export_cli.errors import PROG, TargetConfigError, aws
from seq_export_cli.invoke import invoke_function, invoke_local

AWS_CONFIG = aws_client_config(read_timeout=60, max_attempts=5)
#: A synchronous invocation can take the function's whole 15 minutes; an export of one day is
#: idempotent, so a retried invoke is safe but should be rare. aws_client_config has no connect
#: timeout parameter, so the longer one (10 s) is merged over it.
LAMBDA_CONFIG = aws_client_config(read_timeout=905, max_attempts=2).merge(Config(connect_timeout=10))

Field = Literal["bucket", "table", "queue_url", "function_name"]
#: Where each target value comes from: environment variable, CloudFormation output.
ENV_NAMES: dict[str, str] = {
    "bucket": "SCORES_BUCKET",
    "prefix": "SCORES_PREFIX",
    "table": "LATEST_SCORES_TABLE",
    "queue_url": "RETRY_QUEUE_URL",
    "function_name": "SEQ_EXPORT_FUNCTION",
}
OUTPUT_NAMES: dict[str, str] = {
    "bucket": "ScoresBucketName",
    "prefix": "ScoresPrefix",
    "table": "LatestScoresTableName",
    "queue_url": "RetryQueueUrl",
    "function_name": "ExportFunctionName",
}


@dataclass(frozen=True, slots=True)
class Target:
    """Where the commands point: the stack's resources, from its outputs or from the environment."""

    origin: str  # "environment" or "stack NAME"
    stack: str | None = None
    bucket: str | None = None
    prefix: str = DEFAULT_PREFIX
    table: str | None = None
    queue_url: str | None = None
    function_name: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Target:
        def value(name: str) -> str | None:
            raw = environ.get(ENV_NAMES[name], "").strip()
            return raw or None

        return cls(
            origin="environment",
            bucket=value("bucket"),
            prefix=_prefix(value("prefix"), ENV_NAMES["prefix"]),
            table=value("table"),
            queue_url=value("queue_url"),
            function_name=value("function_name"),
        )

    @classmethod
    def from_outputs(cls, stack: str, outputs: Iterable[Mapping[str, Any]]) -> Target:
        """From ``describe_stacks(...)["Stacks"][0]["Outputs"]`` (``OutputKey``/``OutputValue``)."""
        values = {str(o.get("OutputKey")): str(o.get("OutputValue", "")).strip() for o in outputs}

        def value(name: str) -> str | None:
            return values.get(OUTPUT_NAMES[name]) or None

        return cls(
            origin=f"stack {stack}",
            stack=stack,
            bucket=value("bucket"),
            prefix=_prefix(value("prefix"), f"output {OUTPUT_NAMES['prefix']} of stack {stack}"),
            table=value("table"),
            queue_url=value("queue_url"),
            function_name=value("function_name"),
        )

    def need(self, name: Field) -> str:
        """The value, or a configuration error naming the variable or stack output to set."""
        value: str | None = getattr(self, name)
        if value:
            return value
        if self.stack is not None:
            raise TargetConfigError(f"stack {self.stack} has no output {OUTPUT_NAMES[name]}")
        raise TargetConfigError(f"{ENV_NAMES[name]} is not set; set it, or point at a deployed stack with --stack NAME")

    def key_for(self, day: str) -> str:
        return day_key(self.prefix, day)


def _prefix(raw: str | None, where: str) -> str:
    value = normal_prefix(raw or DEFAULT_PREFIX)
    if not value or "//" in value:
        raise TargetConfigError(f"{where} must be a non-empty S3 key prefix, got {raw!r}")
    return value


class App:
    """One command's run: parsed arguments, target, AWS clients and output."""

    def __init__(
        self,
        args: argparse.Namespace,
        *,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.args = args
        self.environ = os.environ if environ is None else environ
        self.sleep = sleep
        self.clock = clock
        self._session: boto3.session.Session | None = None
        self._target: Target | None = None

    @property
    def json(self) -> bool:
        return bool(self.args.json)

    @property
    def session(self) -> boto3.session.Session:
        if self._session is None:
            with aws("AWS session"):
                self._session = boto3.session.Session(profile_name=self.args.profile, region_name=self.args.region)
        return self._session

    def client(self, service: str, config: Config = AWS_CONFIG) -> Any:
        with aws(f"{service} client"):
            return self.session.client(service, config=config)  # type: ignore[call-overload]

    @property
    def target(self) -> Target:
        if self._target is None:
            if self.args.stack:
                cloudformation = self.client("cloudformation")
                with aws(f"CloudFormation DescribeStacks of stack {self.args.stack}"):
                    stacks = cloudformation.describe_stacks(StackName=self.args.stack)["Stacks"]
                self._target = Target.from_outputs(self.args.stack, stacks[0].get("Outputs", []) if stacks else [])
            else:
                self._target = Target.from_env(self.environ)
        return self._target

    # output
    def emit(self, document: Any, human: Iterable[str]) -> None:
        if self.json:
            print(json.dumps(document, indent=2, default=str))
        else:
            for line in human:
                print(line)

    @staticmethod
    def note(message: str) -> None:
        print(f"{PROG}: {message}", file=sys.stderr)

    # the function
    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        if self.args.local:
            return invoke_local(event, verbose=bool(self.args.verbose))
        function_name = self.target.need("function_name")
        return invoke_function(self.client("lambda", LAMBDA_CONFIG), function_name, event)
