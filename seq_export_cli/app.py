"""Where the commands point and what one command's run holds.

``--stack NAME`` reads the CloudFormation stack's outputs; otherwise the function's own
variables (``SCORES_BUCKET``, ``SCORES_PREFIX``, ``ACCOUNT_SCORES_PREFIX``,
``LATEST_SCORES_TABLE``, ``RETRY_QUEUE_URL``, ``DEAD_LETTER_QUEUE_URL``, ``SEQ_SOURCES``) and
``SEQ_EXPORT_FUNCTION`` for the function's name. The queues' URLs (``dead-letters``, ``--wait``),
missing from both, are read from the deployed function's configuration. The configured sources are the stack's
``SourceNames`` output (a comma list), or the names in ``SEQ_SOURCES``; without either, the one
source ``default`` of a single-source stack.
The region is ``--region``, then ``AWS_REGION``, then ``AWS_DEFAULT_REGION``, then the profile's;
credentials and endpoints are boto3's own (``AWS_PROFILE``, ``AWS_ENDPOINT_URL``,
...), so the same command works against the local stack of ``python -m local.run --keep``.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import boto3
import click
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from seq_export.config import (
    Env,
    Source,
    aws_client_config,
    key_prefix,
    parse_sources,
    sources_from_env,
    unknown_source,
)
from seq_export.errors import ConfigError
from seq_export.layout import DEFAULT_ACCOUNT_PREFIX, DEFAULT_PREFIX, DEFAULT_SOURCE, day_key
from seq_export.models import ACCOUNT, KINDS, SOURCE_NAME, SUBUSERS
from seq_export_cli.errors import CliError, TargetConfigError, UsageError, aws_failure, aws_failures_named
from seq_export_cli.invoke import invoke_function
from seq_export_cli.options import ALL_KINDS, Options
from seq_export_cli.output import Output

AWS_CONFIG = aws_client_config(read_timeout=60, max_attempts=5)
#: A synchronous invocation can take the function's whole 15 minutes; an export of one day is
#: idempotent, so a retried invoke is safe but should be rare. aws_client_config has no connect
#: timeout parameter, so the longer one (10 s) is merged over it.
LAMBDA_CONFIG = aws_client_config(read_timeout=905, max_attempts=2).merge(Config(connect_timeout=10))

Field = Literal["bucket", "table", "queue_url", "dlq_url", "function_name"]
#: The CLI's one variable of its own: the deployed function's name (the function needs none).
FUNCTION_NAME_VARIABLE = "SEQ_EXPORT_FUNCTION"
#: Where each target value comes from: environment variable (the function's own, ``config.Env``),
#: CloudFormation output.
ENV_NAMES: dict[str, str] = {
    "bucket": Env.SCORES_BUCKET,
    "prefix": Env.SCORES_PREFIX,
    "account_prefix": Env.ACCOUNT_SCORES_PREFIX,
    "table": Env.LATEST_SCORES_TABLE,
    "queue_url": Env.RETRY_QUEUE_URL,
    "dlq_url": Env.DEAD_LETTER_QUEUE_URL,
    "function_name": FUNCTION_NAME_VARIABLE,
    "sources": Env.SEQ_SOURCES,
}
OUTPUT_NAMES: dict[str, str] = {
    "bucket": "ScoresBucketName",
    "prefix": "ScoresPrefix",
    "account_prefix": "AccountScoresPrefix",
    "table": "LatestScoresTableName",
    "queue_url": "RetryQueueUrl",
    "dlq_url": "DeadLetterQueueUrl",
    "function_name": "ExportFunctionName",
    "sources": "SourceNames",
}


@dataclass(frozen=True, slots=True)
class Target:
    """Where the commands point: the stack's resources, from its outputs or from the environment."""

    origin: str  # "environment" or "stack NAME"
    stack: str | None = None
    bucket: str | None = None
    prefix: str = DEFAULT_PREFIX
    account_prefix: str = DEFAULT_ACCOUNT_PREFIX
    table: str | None = None
    queue_url: str | None = None
    dlq_url: str | None = None
    function_name: str | None = None
    #: The configured sources' names, the first being the one a request that names none is for.
    sources: tuple[str, ...] = (DEFAULT_SOURCE,)
    #: Where ``sources`` came from, for answers that list them ("from SEQ_SOURCES", ...).
    sources_from: str = "a single-source stack"
    #: The sources that export their parent account's own scores, where the target says (the
    #: ``account_scores`` of ``SEQ_SOURCES``); None: not known here (ask the function).
    account_sources: frozenset[str] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Target:
        def value(name: str) -> str | None:
            raw = environ.get(ENV_NAMES[name], "").strip()
            return raw or None

        raw_sources = value("sources")
        configured = _sources_of_env(raw_sources) if raw_sources else None
        return cls(
            origin="environment",
            sources=tuple(s.name for s in configured) if configured else (DEFAULT_SOURCE,),
            account_sources=None if configured is None else _account_sources(configured),
            sources_from=f"from {ENV_NAMES['sources']}" if raw_sources else f"{ENV_NAMES['sources']} is not set",
            bucket=value("bucket"),
            prefix=_prefix(value("prefix"), ENV_NAMES["prefix"]),
            account_prefix=_prefix(value("account_prefix"), ENV_NAMES["account_prefix"], DEFAULT_ACCOUNT_PREFIX),
            table=value("table"),
            queue_url=value("queue_url"),
            dlq_url=value("dlq_url"),
            function_name=value("function_name"),
        )

    @classmethod
    def from_outputs(cls, stack: str, outputs: Iterable[Mapping[str, Any]]) -> Target:
        """From ``describe_stacks(...)["Stacks"][0]["Outputs"]`` (``OutputKey``/``OutputValue``)."""
        values = {str(o.get("OutputKey")): str(o.get("OutputValue", "")).strip() for o in outputs}

        def value(name: str) -> str | None:
            return values.get(OUTPUT_NAMES[name]) or None

        listed = value("sources")
        where = f"output {OUTPUT_NAMES['sources']} of stack {stack}"
        return cls(
            origin=f"stack {stack}",
            stack=stack,
            sources=_source_names(listed, where) if listed else (DEFAULT_SOURCE,),
            sources_from=f"from {where}" if listed else f"stack {stack} has no output {OUTPUT_NAMES['sources']}",
            bucket=value("bucket"),
            prefix=_prefix(value("prefix"), f"output {OUTPUT_NAMES['prefix']} of stack {stack}"),
            account_prefix=_prefix(
                value("account_prefix"),
                f"output {OUTPUT_NAMES['account_prefix']} of stack {stack}",
                DEFAULT_ACCOUNT_PREFIX,
            ),
            table=value("table"),
            queue_url=value("queue_url"),
            dlq_url=value("dlq_url"),
            function_name=value("function_name"),
        )

    def need(self, name: Field) -> str:
        """The value, or a configuration error naming the variable or stack output to set."""
        value: str | None = getattr(self, name)
        if value:
            return value
        if self.stack is not None:
            raise TargetConfigError(f"stack {self.stack} has no output {OUTPUT_NAMES[name]}")
        hint = " (or run the handler in this process with --local)" if name == "function_name" else ""
        raise TargetConfigError(
            f"{ENV_NAMES[name]} is not set; set it, or point at a deployed stack with --stack NAME{hint}"
        )

    @property
    def several_sources(self) -> bool:
        """Whether the stack has more than one source: answers then name the source of each part."""
        return len(self.sources) > 1

    def prefix_for(self, kind: str) -> str:
        """The dataset's prefix: the account's own scores or the subusers'."""
        return self.account_prefix if kind == ACCOUNT else self.prefix

    def key_for(self, day: str, kind: str, source: str) -> str:
        """The key of ``source``'s ``kind`` of ``day`` (``layout.day_key``)."""
        return day_key(self.prefix_for(kind), source, day)

    def chosen_sources(self, name: str | None) -> tuple[str, ...]:
        """``--source NAME``: that configured source; none given: every configured source. An
        unknown name is a usage error listing the configured ones."""
        if name is None:
            return self.sources
        if name not in self.sources:
            raise UsageError(f"--source: {unknown_source(name, self.sources)} ({self.sources_from})")
        return (name,)


def _sources_of_env(raw: str) -> tuple[Source, ...]:
    """The sources of ``SEQ_SOURCES``, checked as the function checks them."""
    try:
        return parse_sources(raw)
    except ConfigError as exc:
        raise TargetConfigError(str(exc)) from None


def _account_sources(sources: Iterable[Source]) -> frozenset[str]:
    return frozenset(source.name for source in sources if source.account_scores)


def _source_names(listed: str, where: str) -> tuple[str, ...]:
    """A comma list of source names (the stack's ``SourceNames`` output)."""
    names = tuple(name.strip() for name in listed.split(","))
    for name in names:
        if not SOURCE_NAME.fullmatch(name):
            raise TargetConfigError(f"{where} must be a comma list of source names (a-z, 0-9 and -), got {listed!r}")
    if len(set(names)) != len(names):
        raise TargetConfigError(f"{where} names a source twice: {listed!r}")
    return names


def _prefix(raw: str | None, where: str, default: str = DEFAULT_PREFIX) -> str:
    """A dataset's prefix, checked as the function checks its own (``config.key_prefix``)."""
    try:
        return key_prefix(raw, where, default)
    except ConfigError as exc:
        raise TargetConfigError(str(exc)) from None


def region_of(option: str | None, environ: Mapping[str, str]) -> str | None:
    """``--region``, then ``AWS_REGION``, then ``AWS_DEFAULT_REGION``; None leaves it to the
    profile (boto3 itself reads only ``AWS_DEFAULT_REGION`` and the profile)."""
    for value in (option, environ.get("AWS_REGION"), environ.get("AWS_DEFAULT_REGION")):
        if value and value.strip():
            return value.strip()
    return None


class App:
    """One command's run: the shared options, the target, AWS clients and the output."""

    def __init__(
        self,
        options: Options,
        *,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        output: Output | None = None,
    ) -> None:
        self.options = options
        self.environ = os.environ if environ is None else environ
        self.sleep = sleep
        self.clock = clock
        self.output = output or Output(json_output=options.json)
        self._session: boto3.session.Session | None = None
        self._target: Target | None = None
        #: The function's own sources once read (a 1-tuple: its value may be None).
        self._function_sources: tuple[tuple[Source, ...] | None] | None = None
        #: The function's own environment once read (a 1-tuple: its value may be None).
        self._function_environment: tuple[dict[str, str] | None] | None = None

    @property
    def session(self) -> boto3.session.Session:
        if self._session is None:
            with aws_failures_named("AWS session"):
                self._session = boto3.session.Session(
                    profile_name=self.options.profile, region_name=region_of(self.options.region, self.environ)
                )
        return self._session

    def client(self, service: str, config: Config = AWS_CONFIG) -> Any:
        with aws_failures_named(f"{service} client"):
            return self.session.client(service, config=config)  # type: ignore[call-overload]

    @property
    def target(self) -> Target:
        if self._target is None:
            stack = self.options.stack
            if stack:
                self._target = Target.from_outputs(stack, self._stack_outputs(stack))
            else:
                self._target = Target.from_env(self.environ)
        return self._target

    def _stack_outputs(self, stack: str) -> list[dict[str, Any]]:
        cloudformation = self.client("cloudformation")
        what = f"CloudFormation DescribeStacks of stack {stack}"
        try:
            stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc.response.get("Error", {}).get("Message", "")):
                raise TargetConfigError(
                    f"stack {stack} does not exist in region {self.session.region_name}; check --stack and --region"
                ) from None
            raise aws_failure(what, exc) from None
        except BotoCoreError as exc:
            raise aws_failure(what, exc) from None
        return list(stacks[0].get("Outputs", [])) if stacks else []

    def kinds_of(self, source: str, kind: str) -> tuple[str, ...]:
        """``--kind``: that kind; ``all``: every kind ``source`` exports (its account's only where
        its ``account_scores`` is on, as the function's configuration says; both when that cannot
        be read)."""
        if kind != ALL_KINDS:
            return (kind,)
        exporting = self._account_sources()
        if exporting is None or source in exporting:
            return KINDS
        return (SUBUSERS,)

    def _account_sources(self) -> frozenset[str] | None:
        """The target's own word, else the deployed function's configuration."""
        if self.target.account_sources is not None:
            return self.target.account_sources
        configured = self.function_sources()
        return None if configured is None else _account_sources(configured)

    def function_sources(self) -> tuple[Source, ...] | None:
        """The sources the deployed function itself is configured with (its environment, by
        ``lambda:GetFunctionConfiguration``, read once); None without a function name or when it
        cannot be read."""
        if self._function_sources is None:
            self._function_sources = (self._read_function_sources(),)
        return self._function_sources[0]

    def _read_function_sources(self) -> tuple[Source, ...] | None:
        variables = self._function_variables()
        if variables is None:
            return None
        try:
            return sources_from_env(variables)
        except ConfigError:
            return None

    def _function_variables(self) -> dict[str, str] | None:
        """The deployed function's environment (read once); None without a function name or when
        it cannot be read."""
        if self._function_environment is None:
            self._function_environment = (self._read_function_variables(),)
        return self._function_environment[0]

    def _read_function_variables(self) -> dict[str, str] | None:
        if self.target.function_name is None:
            return None
        try:
            answer = self.client("lambda").get_function_configuration(FunctionName=self.target.function_name)
        except (ClientError, BotoCoreError, CliError):
            return None
        return dict(answer.get("Environment", {}).get("Variables", {}))

    def dead_letter_queue_url(self) -> str:
        """The dead-letter queue's URL: the target's (``DEAD_LETTER_QUEUE_URL``, output
        ``DeadLetterQueueUrl``), else the deployed function's own variable; a configuration error
        naming the variable or output otherwise."""
        return self._queue_url("dlq_url", Env.DEAD_LETTER_QUEUE_URL)

    def retry_queue_url(self) -> str:
        """The retry queue's URL: the target's (``RETRY_QUEUE_URL``, output ``RetryQueueUrl``),
        else the deployed function's own variable; a configuration error naming the variable or
        output otherwise."""
        return self._queue_url("queue_url", Env.RETRY_QUEUE_URL)

    def _queue_url(self, name: Literal["queue_url", "dlq_url"], variable: str) -> str:
        known: str | None = getattr(self.target, name)
        if known:
            return known
        configured = (self._function_variables() or {}).get(variable, "").strip()
        return configured or self.target.need(name)

    def check_local(self, local: bool) -> None:
        """``--local`` runs with the function's environment, not a stack's outputs."""
        if local and self.options.stack:
            raise UsageError("--local runs with the function's environment; it cannot be combined with --stack")

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """The deployed function, synchronously."""
        function_name = self.target.need("function_name")
        return invoke_function(self.client("lambda", LAMBDA_CONFIG), function_name, event)


def with_app(command: Callable[..., int]) -> Callable[..., int]:
    """Give a command its ``App``, built from the shared options wherever they were given."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        options = click.get_current_context().ensure_object(Options)
        return command(App(options), *args, **kwargs)

    return wrapper
