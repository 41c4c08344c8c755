"""The ``seq-export`` command line: run and backfill the export, look up scores, check days.

Usage: ``seq-export [--json] [--stack NAME] COMMAND ...``; ``seq-export COMMAND --help`` for each.

* ``run --date D`` invokes the deployed function with ``{"date": D}`` and prints its summary;
  ``--local`` runs the handler in this process instead (with the function's own environment).
* ``backfill --from D1 --to D2 [--force] [--wait]`` sends ``{"from", "to"}`` and, with
  ``--wait``, shows ``N/M days exported`` on stderr until every day's object is in S3. With
  ``--local --wait`` this process also plays Lambda's SQS event source for the retry queue.
* ``lookup USER_ID`` / ``lookup --username NAME``: GetItem on the latest-score table, or a
  Query on its ``username-index``.
* ``low-scores --max S [--limit N]``: subusers whose latest score is at or below S.
* ``status --date D``: whether the day's object exists, its size, time and line count.

Where it points: ``--stack NAME`` reads the CloudFormation stack's outputs; otherwise the
function's own variables (``SCORES_BUCKET``, ``SCORES_PREFIX``, ``LATEST_SCORES_TABLE``,
``RETRY_QUEUE_URL``) and ``SEQ_EXPORT_FUNCTION`` for the function's name. Credentials, region
and endpoints are boto3's own (``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``, ...), so
the same command works against the local stack of ``python -m local.run --keep``.

Exit codes: 0 success; 1 a negative answer (not found, not exported, nothing matched);
2 usage; 3 configuration (a missing setting, credentials or region); 4 AWS or the function
failed. ``--json`` prints one JSON document on stdout (also for negative answers); messages
and the progress bar always go to stderr.

**Cost of ``low-scores``.** There is no index on ``score``: the command runs a parallel Scan
(4 segments) with ``FilterExpression score <= :max``. A Scan reads, and is billed for, the
whole table whatever the filter keeps: about table size / 4 KB / 2 read units (eventually
consistent). Items are about 250 bytes, so 100,000 subusers cost about 3,000 read units per
call (a fraction of a cent on demand) and take a few seconds. We chose this over a global
secondary index on ``score`` because an index is written with its table: it would double the
write units of every daily export (one index write per changed item, every day) to speed up
an occasional operator query; a score index would also need write sharding, since a handful
of score values would be a handful of hot partitions.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import re
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import IO, TYPE_CHECKING, Any, Literal

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from seq_export.config import DEFAULT_PREFIX
from seq_export.errors import ConfigError, SeqExportError, describe_aws_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

PROG = "seq-export"
EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_SERVICE = 4

#: The exporter's own bookkeeping item in the latest-score table (``latest_store.CONTROL_KEY``);
#: repeated here so the CLI does not import the function's adapters.
CONTROL_KEY = "#seq-export#control"
USERNAME_INDEX = "username-index"
OBJECT_NAME = "scores.jsonl"
SCAN_SEGMENTS = 4
DEFAULT_WAIT_TIMEOUT = 900.0
POLL_INTERVAL_SECONDS = 5.0
SQS_LONG_POLL_SECONDS = 20
ITEM_FIELDS = ("user_id", "username", "date", "score", "metrics", "updated_at")

AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60)
#: A synchronous invocation can take the function's whole 15 minutes; an export of one day is
#: idempotent, so a retried invoke is safe but should be rare.
LAMBDA_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=10, read_timeout=905)

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


# -- errors -------------------------------------------------------------------------------------
class CliError(Exception):
    """An expected failure: one line on stderr and ``exit_code``, never a traceback."""

    exit_code = EXIT_SERVICE


class TargetConfigError(CliError):
    """A setting the command needs is missing (variable, stack output, credentials, region)."""

    exit_code = EXIT_CONFIG


class ServiceError(CliError):
    """AWS refused or failed a call, or the function answered with an error."""

    exit_code = EXIT_SERVICE


def one_line(text: str) -> str:
    return " ".join(str(text).split())


@contextlib.contextmanager
def aws(what: str) -> Iterator[None]:
    """Turn botocore's errors inside the block into a ``CliError`` naming ``what`` failed."""
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError, NoRegionError, ProfileNotFound) as exc:
        raise TargetConfigError(f"{what}: {exc}") from None
    except (ClientError, BotoCoreError) as exc:
        raise ServiceError(f"{what} failed: {describe_aws_error(exc)}") from None


# -- target -------------------------------------------------------------------------------------
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
        return f"{self.prefix}/dt={day}/{OBJECT_NAME}"


def _prefix(raw: str | None, where: str) -> str:
    value = (raw or DEFAULT_PREFIX).strip("/")
    if not value or "//" in value:
        raise TargetConfigError(f"{where} must be a non-empty S3 key prefix, got {raw!r}")
    return value


# -- pure helpers -------------------------------------------------------------------------------
def render_progress(done: int, total: int, width: int = 30) -> str:
    """``[#######-------] 3/7 days exported``."""
    filled = width if total <= 0 else min(width, max(0, done) * width // total)
    return f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total} days exported"


class ProgressBar:
    """Redrawn in place on a terminal; one line per change when stderr is a file or a pipe."""

    def __init__(self, stream: IO[str], total: int) -> None:
        self._stream = stream
        self._total = total
        self._last: int | None = None
        self._tty = bool(getattr(stream, "isatty", lambda: False)())

    def update(self, done: int) -> None:
        if done == self._last:
            return
        self._last = done
        text = render_progress(done, self._total)
        self._stream.write(f"\r{text}" if self._tty else f"{text}\n")
        self._stream.flush()

    def close(self) -> None:
        if self._tty and self._last is not None:
            self._stream.write("\n")
            self._stream.flush()


def days_between(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def backfill_event(first: str, last: str, *, force: bool = False) -> dict[str, Any]:
    event: dict[str, Any] = {"from": first, "to": last}
    if force:
        event["force"] = True
    return event


def count_lines(chunks: Iterable[bytes]) -> int:
    """Lines of a JSON-lines body streamed in chunks; a last line without ``\\n`` counts too."""
    lines = 0
    last = b""
    for chunk in chunks:
        if chunk:
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (1 if last not in (b"", b"\n") else 0)


def plain(value: Any) -> Any:
    """DynamoDB values (Decimal, sets) as JSON-ready Python values; integral numbers stay ints."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [plain(v) for v in value]
    return value


_deserializer = TypeDeserializer()


def subuser(item: Mapping[str, Any]) -> dict[str, Any]:
    """A latest-score item (low-level attribute values) as the fields the CLI prints, in order."""
    values = {k: _deserializer.deserialize(v) for k, v in item.items()}
    return {name: plain(values.get(name)) for name in ITEM_FIELDS}


def _natural(user_id: str) -> tuple[int, int, str]:
    return (0, int(user_id), "") if user_id.isdigit() else (1, 0, user_id)


def sort_by_score(subusers: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ascending by score, then by user_id (numerically for SendGrid's numeric ids)."""
    return sorted(subusers, key=lambda s: (Decimal(str(s["score"])), _natural(str(s["user_id"]))))


# -- argument parsing ---------------------------------------------------------------------------
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def day_arg(text: str) -> str:
    if not _DAY.match(text):
        raise argparse.ArgumentTypeError(f"expected a day YYYY-MM-DD, got {text!r}")
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a calendar date: {text!r}") from None
    return text


def score_arg(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _global_options(parser: argparse.ArgumentParser, *, default: Any) -> None:
    """Accepted before or after the command; ``default`` is SUPPRESS on subcommands so a value
    given before the command is not reset by the subcommand's parser."""
    parser.add_argument(
        "--json", action="store_true", default=default, help="print one JSON document on stdout, for scripts"
    )
    parser.add_argument(
        "--stack",
        metavar="NAME",
        default=default,
        help="read bucket, prefix, table, queue and function from this CloudFormation stack's outputs "
        "(default: the environment variables)",
    )
    parser.add_argument("--region", default=default, help="AWS region (default: boto3's, e.g. AWS_REGION)")
    parser.add_argument("--profile", default=default, help="AWS profile (default: boto3's, e.g. AWS_PROFILE)")
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=default,
        help="with --local: show the function's JSON logs and EMF metrics on stderr",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Operate the SendGrid Engagement Quality export: run and backfill days, look up scores, "
        "check what is exported.",
        epilog="Targets: --stack NAME, or SCORES_BUCKET, SCORES_PREFIX, LATEST_SCORES_TABLE, RETRY_QUEUE_URL and "
        "SEQ_EXPORT_FUNCTION. Exit codes: 0 success, 1 negative answer, 2 usage, 3 configuration, "
        "4 AWS or function error.",
    )
    _global_options(parser, default=None)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, default=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        parents=[common],
        help="export one day now and print the function's summary",
        description='Invoke the export function synchronously with {"date": D} and print its summary. '
        "Exits 0 when the day is exported, 1 when it was re-scheduled (SendGrid answered 202) or given up.",
    )
    run.add_argument("--date", type=day_arg, required=True, metavar="YYYY-MM-DD", help="the day to export")
    _local_option(run)
    run.set_defaults(handler=cmd_run, command_parser=run)

    backfill = commands.add_parser(
        "backfill",
        parents=[common],
        help="export a range of days (one queued export per day)",
        description='Send {"from": D1, "to": D2} to the export function: it checks the range (SendGrid\'s '
        "90 days, finished days only) and queues one export per day. With --wait, show progress until "
        "every day's object is in S3 (exit 1 if some are still missing at --timeout).",
    )
    backfill.add_argument("--from", dest="first", type=day_arg, required=True, metavar="YYYY-MM-DD", help="first day")
    backfill.add_argument(
        "--to", dest="last", type=day_arg, required=True, metavar="YYYY-MM-DD", help="last day (inclusive)"
    )
    backfill.add_argument("--force", action="store_true", help="export days again even if already exported")
    backfill.add_argument(
        "--wait", action="store_true", help="wait for every day's S3 object, with a progress bar on stderr"
    )
    backfill.add_argument(
        "--timeout",
        type=positive_seconds,
        metavar="SECONDS",
        help=f"how long --wait waits (default {DEFAULT_WAIT_TIMEOUT:.0f})",
    )
    _local_option(backfill, extra=" With --wait, this process also delivers the retry queue's messages.")
    backfill.set_defaults(handler=cmd_backfill, command_parser=backfill)

    lookup = commands.add_parser(
        "lookup",
        parents=[common],
        help="a subuser's latest score, by user id or username",
        description="Print a subuser's latest score from the latest-score table (GetItem by user id, or a Query "
        "on the username-index). Exits 1 when there is none.",
    )
    who = lookup.add_mutually_exclusive_group(required=True)
    who.add_argument("user_id", nargs="?", metavar="USER_ID", help="the subuser's user id")
    who.add_argument("--username", metavar="NAME", help="the subuser's username instead")
    lookup.set_defaults(handler=cmd_lookup, command_parser=lookup)

    low = commands.add_parser(
        "low-scores",
        parents=[common],
        help="subusers whose latest score is at or below a value",
        description="List subusers whose latest score is <= --max, lowest first. Runs a parallel Scan of the "
        "whole table (about table size / 8 KB read units; ~3,000 for 100,000 subusers). Exits 1 when none.",
    )
    low.add_argument("--max", dest="max_score", type=score_arg, required=True, metavar="S", help="highest score")
    low.add_argument("--limit", type=positive_int, metavar="N", help="print only the N lowest")
    low.set_defaults(handler=cmd_low_scores, command_parser=low)

    status = commands.add_parser(
        "status",
        parents=[common],
        help="whether a day is exported: size, time, line count",
        description="Show whether the day's object is in S3, with its size, LastModified and line count. "
        "Exits 1 when the day is not exported.",
    )
    status.add_argument("--date", type=day_arg, required=True, metavar="YYYY-MM-DD")
    status.set_defaults(handler=cmd_status, command_parser=status)
    return parser


def _local_option(parser: argparse.ArgumentParser, extra: str = "") -> None:
    parser.add_argument(
        "--local",
        action="store_true",
        help="run the function's handler in this process instead of invoking the deployed function; needs the "
        "function's full environment (as `make run` / `python -m local.run --keep` sets it)." + extra,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    command: argparse.ArgumentParser = args.command_parser
    if getattr(args, "local", False) and args.stack:
        command.error("--local runs with the function's environment; it cannot be combined with --stack")
    if args.command == "backfill":
        if args.first > args.last:
            command.error(f"--from {args.first} is after --to {args.last}")
        if args.timeout is not None and not args.wait:
            command.error("--timeout applies to --wait")
        args.timeout = args.timeout or DEFAULT_WAIT_TIMEOUT
    return args


# -- the running command ------------------------------------------------------------------------
@dataclass
class LocalContext:
    """The attributes Powertools reads from Lambda's context object, for ``--local`` runs."""

    function_name: str = "seq-export-cli"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:seq-export-cli"
    aws_request_id: str = field(default_factory=lambda: f"cli-{uuid.uuid4()}")
    timeout_seconds: float = 900.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


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


def invoke_function(client: Any, function_name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Synchronous Invoke; a function error (``FunctionError``) becomes a ``ServiceError``."""
    with aws(f"Lambda Invoke of function {function_name}"):
        answer = client.invoke(
            FunctionName=function_name, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
        )
        raw = answer["Payload"].read()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    if answer.get("FunctionError"):
        if isinstance(payload, dict):
            detail = f"{payload.get('errorType', answer['FunctionError'])}: {payload.get('errorMessage', '')}"
        else:
            detail = f"{answer['FunctionError']}: {raw[:300].decode(errors='replace')}"
        raise ServiceError(f"function {function_name} failed: {one_line(detail)}")
    if not isinstance(payload, dict):
        raise ServiceError(f"function {function_name} answered {raw[:200]!r}, not a JSON object")
    return payload


@contextlib.contextmanager
def _function_output(verbose: bool) -> Iterator[None]:
    """Keep stdout for the CLI's own output. With ``verbose`` the handler's JSON logs (INFO and up)
    and EMF metrics go to stderr; otherwise they are discarded (the CLI reports the outcome)."""
    from seq_export.observability import logger  # noqa: PLC0415 - Powertools, only for --local

    sink: IO[str] = sys.stderr if verbose else _Discard()
    registered = logger.registered_handler
    stream_handler = registered if isinstance(registered, logging.StreamHandler) else None
    old_stream = stream_handler.setStream(sink) if stream_handler is not None else None
    old_level = logger.log_level
    if verbose and old_level > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(sink), warnings.catch_warnings():
            if not verbose:  # e.g. Powertools' "No application metrics to publish"
                warnings.simplefilter("ignore")
            yield
    finally:
        if logger.log_level != old_level:
            logger.setLevel(old_level)
        if stream_handler is not None and old_stream is not None:
            stream_handler.setStream(old_stream)


class _Discard(io.StringIO):
    def write(self, text: str) -> int:
        return len(text)


def invoke_local(event: dict[str, Any], *, verbose: bool = False) -> dict[str, Any]:
    """The handler in this process, as Lambda would call it (the function's env must be set)."""
    from seq_export import handler  # noqa: PLC0415 - Powertools reads its settings at import

    with _function_output(verbose):
        return dict(handler.lambda_handler(event, LocalContext()))


# -- waiting for days ---------------------------------------------------------------------------
Version = tuple[str, str]
#: How a wait ended: every day exported, the time ran out, or (--local) the retry queue has
#: nothing left that could export the missing days.
Outcome = Literal["exported", "timeout", "queue_empty"]


class DayWatcher:
    """Which days' objects are in S3. With ``baseline`` (``--force``), a day that already had an
    object counts only once the object has been replaced (another ETag or LastModified)."""

    def __init__(self, s3: Any, bucket: str, keys: Mapping[str, str], baseline: Mapping[str, Version]) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._keys = dict(keys)
        self._baseline = dict(baseline)
        self.exported: set[str] = set()

    @property
    def days(self) -> list[str]:
        return sorted(self._keys)

    @property
    def pending(self) -> list[str]:
        return [day for day in self.days if day not in self.exported]

    def refresh(self) -> int:
        for day in self.pending:
            version = head_version(self._s3, self._bucket, self._keys[day])
            if version is not None and version != self._baseline.get(day):
                self.exported.add(day)
        return len(self.exported)


def _not_found(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


def head_object(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """HeadObject's answer, or None when there is no such object (S3 answers 404 without a body,
    so a missing bucket looks the same: ``require_bucket`` tells them apart)."""
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except ClientError as exc:
        if _not_found(exc):
            return None
        raise ServiceError(f"S3 HeadObject of s3://{bucket}/{key} failed: {describe_aws_error(exc)}") from None
    except BotoCoreError as exc:
        raise ServiceError(f"S3 HeadObject of s3://{bucket}/{key} failed: {describe_aws_error(exc)}") from None


def require_bucket(s3: Any, bucket: str) -> None:
    """A configuration pointing at a bucket that does not exist is an error, not "not exported".
    Other refusals (a reader without s3:ListBucket gets 403 here) are left to the object calls."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if _not_found(exc):
            raise ServiceError(f"S3 bucket {bucket} does not exist (HeadBucket answered 404)") from None
    except BotoCoreError as exc:
        raise ServiceError(f"S3 HeadBucket of {bucket} failed: {describe_aws_error(exc)}") from None


def head_version(s3: Any, bucket: str, key: str) -> Version | None:
    """(ETag, LastModified) of an object, or None when there is none."""
    answer = head_object(s3, bucket, key)
    if answer is None:
        return None
    return str(answer.get("ETag", "")), str(answer.get("LastModified", ""))


def poll_until_exported(
    watcher: DayWatcher,
    progress: ProgressBar,
    *,
    timeout: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    interval: float = POLL_INTERVAL_SECONDS,
) -> Outcome:
    """HeadObject every ``interval`` seconds until every day is exported or ``timeout`` passes."""
    deadline = clock() + timeout
    while True:
        progress.update(watcher.refresh())
        if not watcher.pending:
            return "exported"
        remaining = deadline - clock()
        if remaining <= 0:
            return "timeout"
        sleep(min(interval, remaining))


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source builds from received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {k: str(v) for k, v in m.get("Attributes", {}).items()},
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def deliver_until_exported(
    sqs: SQSClient,
    queue_url: str,
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
    watcher: DayWatcher,
    progress: ProgressBar,
    *,
    timeout: float,
    clock: Callable[[], float],
    on_failures: Callable[[int], None] = lambda _count: None,
) -> Outcome:
    """Play the SQS event source: receive (long poll, so a delayed message is taken as soon as it
    is visible), invoke, delete what succeeded (failed records return to the queue after its
    visibility timeout, as with Lambda); until every day is exported (then deliver what is
    visible at once and stop), the queue has nothing left that could export a day, or
    ``timeout`` passes."""
    deadline = clock() + timeout
    with aws(f"SQS GetQueueAttributes of {queue_url}"):
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    region = sqs.meta.region_name
    while True:
        progress.update(watcher.refresh())
        remaining = deadline - clock()
        if remaining <= 0:
            return "timeout" if watcher.pending else "exported"
        wait = min(SQS_LONG_POLL_SECONDS, math.ceil(remaining)) if watcher.pending else 0
        with aws(f"SQS ReceiveMessage from {queue_url}"):
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, AttributeNames=["All"]
            ).get("Messages", [])
        if not messages:
            if not watcher.pending:
                return "exported"
            if _queue_is_empty(sqs, queue_url):
                progress.update(watcher.refresh())
                return "queue_empty" if watcher.pending else "exported"
            continue
        response = invoke(sqs_event(messages, arn, region))
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        if failed:
            on_failures(len(failed))
        for message in messages:
            if message["MessageId"] not in failed:
                with aws(f"SQS DeleteMessage from {queue_url}"):
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _queue_is_empty(sqs: SQSClient, queue_url: str) -> bool:
    with aws(f"SQS GetQueueAttributes of {queue_url}"):
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesDelayed",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
    return not any(int(value) for value in attributes.values())


# -- commands -----------------------------------------------------------------------------------
def _summary_lines(summary: Mapping[str, Any], bucket: str | None = None) -> list[str]:
    status = summary.get("status")
    day = summary.get("date")
    if status == "exported":
        lines = [
            f"exported      {day}: {summary.get('records')} records ({summary.get('ineligible')} ineligible) "
            f"from {summary.get('pages')} pages",
        ]
        if summary.get("s3_key"):
            where = f"s3://{bucket}/{summary['s3_key']}" if bucket else summary["s3_key"]
            lines.append(f"S3 object     {where} ({summary.get('bytes')} bytes)")
        lines.append(
            f"DynamoDB      {summary.get('latest_written')} latest scores written, "
            f"{summary.get('latest_kept_newer')} kept a newer day"
        )
        return lines
    if status == "not_ready":
        return [
            f"not ready     {day}: SendGrid is still computing the day (202); the function re-scheduled attempt "
            f"{summary.get('next_attempt')} in {summary.get('next_attempt_delay_seconds')} s"
        ]
    if status == "continued":
        return [f"continued     {day}: handed to a fresh invocation after {summary.get('pages')} pages"]
    if status == "gave_up":
        return [f"gave up       {day}: SendGrid kept answering 202; the day went to the dead-letter queue"]
    return [json.dumps(summary)]


def cmd_run(app: App) -> int:
    summary = app.invoke({"date": app.args.date})
    app.emit(summary, _summary_lines(summary, app.target.bucket))
    if summary.get("status") == "exported":
        return EXIT_OK
    app.note(f"{app.args.date} is not exported (status {summary.get('status')}); check later with `status`")
    return EXIT_NEGATIVE


def cmd_backfill(app: App) -> int:
    args = app.args
    event = backfill_event(args.first, args.last, force=args.force)
    watcher: DayWatcher | None = None
    if args.wait:
        bucket = app.target.need("bucket")
        if args.local:
            app.target.need("queue_url")
        days = days_between(date.fromisoformat(args.first), date.fromisoformat(args.last))
        s3 = app.client("s3")
        require_bucket(s3, bucket)
        keys = {day: app.target.key_for(day) for day in days}
        baseline: dict[str, Version] = {}
        if args.force:
            for day, key in keys.items():
                version = head_version(s3, bucket, key)
                if version is not None:
                    baseline[day] = version
        watcher = DayWatcher(s3, bucket, keys, baseline)
    answer = app.invoke(event)
    if watcher is None:
        app.emit(answer, _backfill_lines(answer))
        return EXIT_OK
    if not app.json:
        for line in _backfill_lines(answer):
            print(line, flush=True)
    progress = ProgressBar(sys.stderr, len(watcher.days))
    try:
        if args.local:
            outcome = deliver_until_exported(
                app.client("sqs"),
                app.target.need("queue_url"),
                lambda e: invoke_local(e, verbose=bool(args.verbose)),
                watcher,
                progress,
                timeout=args.timeout,
                clock=app.clock,
                on_failures=lambda n: app.note(
                    f"{n} queued export(s) failed and return to the queue after its visibility timeout"
                    + ("" if args.verbose else " (--verbose shows the function's logs)")
                ),
            )
        else:
            outcome = poll_until_exported(watcher, progress, timeout=args.timeout, clock=app.clock, sleep=app.sleep)
    finally:
        progress.close()
    missing = watcher.pending
    document = {
        **answer,
        "wait": {
            "outcome": outcome,
            "days": len(watcher.days),
            "exported": len(watcher.exported),
            "missing": missing,
        },
    }
    app.emit(
        document, [f"exported      {len(watcher.exported)}/{len(watcher.days)} days ({args.first} .. {args.last})"]
    )
    if not missing:
        return EXIT_OK
    why = (
        f"within {args.timeout:g} s"
        if outcome == "timeout"
        else "and the retry queue has no message left for them (failed, given up or handled before: "
        "see the dead-letter queue and --verbose)"
    )
    app.note(f"{len(missing)} of {len(watcher.days)} days not exported {why}: {', '.join(missing)}")
    return EXIT_NEGATIVE


def _backfill_lines(answer: Mapping[str, Any]) -> list[str]:
    if answer.get("status") != "enqueued":
        return [json.dumps(answer)]
    lines = [f"enqueued      {answer.get('days')} days ({answer.get('from')} .. {answer.get('to')})"]
    skipped = answer.get("skipped_already_exported")
    if skipped:
        shown = ", ".join(str(s) for s in skipped[:10]) + (", ..." if len(skipped) > 10 else "")
        lines.append(f"skipped       {len(skipped)} already exported (--force exports them again): {shown}")
    return lines


def _item_lines(item: Mapping[str, Any]) -> list[str]:
    metrics = item.get("metrics")
    shown = " ".join(f"{k}={v}" for k, v in metrics.items()) if isinstance(metrics, dict) else "-"
    return [
        f"user_id     {item['user_id']}",
        f"username    {item.get('username') or '-'}",
        f"date        {item.get('date') or '-'}",
        f"score       {item['score'] if item.get('score') is not None else '-'}",
        f"metrics     {shown}",
        f"updated_at  {item.get('updated_at') or '-'}",
    ]


def cmd_lookup(app: App) -> int:
    table = app.target.need("table")
    dynamodb: DynamoDBClient = app.client("dynamodb")
    items: list[dict[str, Any]] = []
    if app.args.username is not None:
        query = {"username": app.args.username}
        with aws(f"DynamoDB Query of index {USERNAME_INDEX} on table {table}"):
            for page in dynamodb.get_paginator("query").paginate(
                TableName=table,
                IndexName=USERNAME_INDEX,
                KeyConditionExpression="#n = :n",
                ExpressionAttributeNames={"#n": "username"},
                ExpressionAttributeValues={":n": {"S": app.args.username}},
            ):
                keys = [item["user_id"]["S"] for item in page.get("Items", [])]
                # the index holds keys only (so daily score updates never write it): read the items
                for key in keys:
                    item = dynamodb.get_item(TableName=table, Key={"user_id": {"S": key}}).get("Item")
                    if item:
                        items.append(item)
    else:
        query = {"user_id": app.args.user_id}
        if app.args.user_id != CONTROL_KEY:
            with aws(f"DynamoDB GetItem on table {table}"):
                item = dynamodb.get_item(TableName=table, Key={"user_id": {"S": app.args.user_id}}).get("Item")
            items = [item] if item else []
    found = sorted(
        (subuser(i) for i in items if i.get("user_id", {}).get("S") != CONTROL_KEY),
        key=lambda s: _natural(str(s["user_id"])),
    )
    lines: list[str] = []
    for i, item in enumerate(found):
        lines.extend(([""] if i else []) + _item_lines(item))
    app.emit({"query": query, "subusers": found}, lines)
    if found:
        return EXIT_OK
    what = f"username {app.args.username!r}" if app.args.username is not None else f"user_id {app.args.user_id!r}"
    app.note(f"no latest score for {what} in table {table}")
    return EXIT_NEGATIVE


@dataclass
class ScanResult:
    subusers: list[dict[str, Any]]
    scanned: int = 0
    read_units: float = 0.0


def scan_low_scores(
    dynamodb: DynamoDBClient, table: str, max_score: Decimal, segments: int = SCAN_SEGMENTS
) -> ScanResult:
    """Parallel Scan, ``score <= :max``, only the printed attributes; every page of every segment."""
    names = {f"#{i}": name for i, name in enumerate(ITEM_FIELDS)}
    by_name = {name: key for key, name in names.items()}

    def segment(number: int) -> ScanResult:
        result = ScanResult(subusers=[])
        with aws(f"DynamoDB Scan of table {table} (segment {number + 1}/{segments})"):
            for page in dynamodb.get_paginator("scan").paginate(
                TableName=table,
                Segment=number,
                TotalSegments=segments,
                FilterExpression=f"{by_name['score']} <= :max",
                ProjectionExpression=", ".join(names),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":max": {"N": str(max_score)}},
                ReturnConsumedCapacity="TOTAL",
            ):
                result.scanned += page.get("ScannedCount", 0)
                result.read_units += float(page.get("ConsumedCapacity", {}).get("CapacityUnits", 0) or 0)
                result.subusers.extend(
                    subuser(item) for item in page.get("Items", []) if item.get("user_id", {}).get("S") != CONTROL_KEY
                )
        return result

    with ThreadPoolExecutor(max_workers=segments) as pool:
        parts = list(pool.map(segment, range(segments)))
    return ScanResult(
        subusers=sort_by_score(s for part in parts for s in part.subusers),
        scanned=sum(part.scanned for part in parts),
        read_units=sum(part.read_units for part in parts),
    )


def cmd_low_scores(app: App) -> int:
    table = app.target.need("table")
    result = scan_low_scores(app.client("dynamodb"), table, app.args.max_score)
    shown = result.subusers[: app.args.limit] if app.args.limit else result.subusers
    max_score = plain(app.args.max_score)
    document = {
        "max_score": max_score,
        "matched": len(result.subusers),
        "scanned": result.scanned,
        "read_units": result.read_units,
        "subusers": shown,
    }
    lines = [f"{'score':>6}  {'user_id':<12} {'username':<24} date"] if shown else []
    lines += [f"{s['score']!s:>6}  {s['user_id']:<12} {s.get('username') or '-':<24} {s.get('date')}" for s in shown]
    lines.append(
        f"{len(result.subusers)} subusers with a latest score <= {max_score}"
        + (f" (showing {len(shown)})" if len(shown) < len(result.subusers) else "")
        + f"; scanned {result.scanned} items, {result.read_units:g} read units"
    )
    app.emit(document, lines)
    if result.subusers:
        return EXIT_OK
    app.note(f"no subuser in table {table} has a latest score <= {max_score}")
    return EXIT_NEGATIVE


def cmd_status(app: App) -> int:
    bucket = app.target.need("bucket")
    key = app.target.key_for(app.args.date)
    s3: S3Client = app.client("s3")
    where = f"s3://{bucket}/{key}"
    head = head_object(s3, bucket, key)
    if head is None:
        require_bucket(s3, bucket)
        app.emit(
            {"date": app.args.date, "exported": False, "bucket": bucket, "key": key},
            [f"not exported  {app.args.date}: no object {where}"],
        )
        app.note(f"{app.args.date} is not exported: no object {where}")
        return EXIT_NEGATIVE
    metadata = head.get("Metadata", {})
    records: int | None = None
    source = "metadata"
    if metadata.get("records", "").isdigit():
        records = int(metadata["records"])
    else:
        source = "counted"
        with aws(f"S3 GetObject of {where}"):
            body = s3.get_object(Bucket=bucket, Key=key, IfMatch=head["ETag"])["Body"]
            records = count_lines(body.iter_chunks(1024 * 1024))
    modified = head["LastModified"]
    document = {
        "date": app.args.date,
        "exported": True,
        "bucket": bucket,
        "key": key,
        "bytes": head["ContentLength"],
        "last_modified": modified.isoformat(),
        "records": records,
        "records_from": source,
        "exported_at": metadata.get("exported-at"),
    }
    app.emit(
        document,
        [
            f"exported      {app.args.date}: {where}",
            f"size          {head['ContentLength']} bytes, {records} lines"
            + (" (counted)" if source == "counted" else ""),
            f"modified      {modified.isoformat()}",
        ],
    )
    return EXIT_OK


# -- entry point --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # --help (0) and usage errors (2); argparse has printed the message
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    app = App(args)
    try:
        return int(args.handler(app))
    except CliError as exc:
        App.note(one_line(str(exc)))
        return exc.exit_code
    except ConfigError as exc:
        App.note(f"configuration: {one_line(str(exc))}")
        return EXIT_CONFIG
    except SeqExportError as exc:
        App.note(f"the function failed: {type(exc).__name__}: {one_line(str(exc))}")
        return EXIT_SERVICE
    except (NoCredentialsError, PartialCredentialsError, NoRegionError, ProfileNotFound) as exc:
        App.note(f"configuration: {one_line(str(exc))}")
        return EXIT_CONFIG
    except (ClientError, BotoCoreError) as exc:
        operation = getattr(exc, "operation_name", None)
        App.note(f"AWS {operation + ' ' if operation else ''}failed: {one_line(describe_aws_error(exc))}")
        return EXIT_SERVICE
    except KeyboardInterrupt:
        App.note("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
