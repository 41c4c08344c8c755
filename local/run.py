"""Run the daily export locally, end to end, with nothing but Python: ``make run`` or
``python -m local.run --help``.

Starts moto (S3, DynamoDB, SQS, Secrets Manager) and the SEQ simulator on free loopback ports,
creates the stack's resources there, invokes the real Lambda handler with a scheduled event (or
``--date``), then plays the SQS event source for the retry queue (the account's day, re-runs
after a 202) until it is empty, saying what each delivered message was and what became of it.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Annotated, Any

import boto3
import typer

from local.lambda_runtime import SqsEventSource
from local.seq_simulator import Scenario, SeqSimulator
from local.stack import AWS_TEST_ENV, Resources, local_stack, patched_environ
from seq_export.config import MAX_PAGE_SIZE, SQS_MAX_DELAY_SECONDS
from seq_export.dates import check_exportable, parse_day, today_utc, yesterday_utc
from seq_export.errors import InvalidEventError
from seq_export.layout import DEFAULT_ACCOUNT_PREFIX, DEFAULT_PREFIX, day_key
from seq_export.models import ACCOUNT, SUBUSERS
from seq_export_cli.app import ENV_NAMES
from seq_export_cli.invoke import invoke_local

PROG = "python -m local.run"
app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


def _exportable_day(value: str | None) -> str | None:
    """``--date``/``DATE`` by the function's own rules: YYYY-MM-DD, finished, in SendGrid's window."""
    if value is None:
        return None
    try:
        day = parse_day(value, what="day")
        check_exportable(day, today_utc(), what="day")
    except InvalidEventError as exc:
        raise typer.BadParameter(str(exc)) from None
    return day.isoformat()


def _number(envvar: str, help_text: str, low: int, high: int | None = None) -> Any:
    return typer.Option(envvar=envvar, metavar="N", min=low, max=high, help=help_text)


@app.command(
    help="Run the daily export locally, end to end: moto and the SEQ simulator on free ports of 127.0.0.1, the "
    "real handler invoked as Lambda would, then Lambda's SQS event source played for the retry queue, one line "
    "per delivered message. Every option can also be given as the environment variable shown (as `make run` does)."
)
def run(  # noqa: PLR0917 - Typer passes the options by keyword
    date: Annotated[
        str | None,
        typer.Option(
            envvar="DATE",
            metavar="YYYY-MM-DD",
            callback=_exportable_day,
            help='Day to export, with a direct {"date": D} event (subusers only). '
            "Default: a scheduled event for now, which exports yesterday (UTC) and queues the account's day.",
        ),
    ] = None,
    subusers: Annotated[int, _number("SUBUSERS", "Subusers the SEQ simulator serves.", 1)] = 2500,
    not_ready: Annotated[
        int, _number("NOT_READY", "Answers of 202 the simulator plays before the day is ready.", 0)
    ] = 0,
    delay: Annotated[
        int,
        _number(
            "DELAY",
            "Seconds before the first re-run after a 202 (the function's NOT_READY_DELAY_SECONDS).",
            0,
            SQS_MAX_DELAY_SECONDS,
        ),
    ] = 2,
    max_attempts: Annotated[
        int, _number("MAX_ATTEMPTS", "Answers of 202 per day before giving up (MAX_NOT_READY_ATTEMPTS).", 1)
    ] = 16,
    page_size: Annotated[
        int, _number("PAGE_SIZE", "Subusers per SendGrid page (the function's SEQ_PAGE_SIZE).", 1, MAX_PAGE_SIZE)
    ] = MAX_PAGE_SIZE,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", envvar="VERBOSE", help="Show the function's JSON logs and EMF metrics on stderr."),
    ] = False,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep",
            envvar="KEEP",
            help="After the run, keep moto and the simulator up until Ctrl-C and print the `export VAR=value` "
            "lines with which `seq-export` commands in another shell use this local stack.",
        ),
    ] = False,
) -> None:
    started = time.perf_counter()
    with local_stack(Scenario(subusers=subusers, not_ready=not_ready)) as (simulator, resources, endpoint):
        env = resources.env(
            simulator.url,
            ACCOUNT_SCORES_PREFIX=DEFAULT_ACCOUNT_PREFIX,
            NOT_READY_DELAY_SECONDS=str(delay),
            MAX_NOT_READY_ATTEMPTS=str(max_attempts),
            SEQ_PAGE_SIZE=str(page_size),
            POWERTOOLS_LOG_LEVEL="INFO",  # the job lines read the function's INFO records; shown with --verbose
        )
        with patched_environ(env):
            from seq_export import wiring  # noqa: PLC0415 - imported in the function's environment

            wiring.use_dependencies(None)
            print(f"moto server   {endpoint}\nSEQ simulator {simulator.url}  ({subusers} subusers)")
            code, day = _export(resources, simulator, date, verbose=verbose)
            print(f"took          {time.perf_counter() - started:.2f} s")
            if keep:
                _keep(keep_banner({**AWS_TEST_ENV, "AWS_ENDPOINT_URL": endpoint, **env}, day))
    if code:
        raise typer.Exit(code)


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (2 for a usage error) instead of exiting."""
    try:
        app(args=argv, prog_name=PROG)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def _export(resources: Resources, simulator: SeqSimulator, date: str | None, *, verbose: bool) -> tuple[int, str]:
    """Invoke the handler, deliver the retry queue, report; returns the exit code and the day."""
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    event: dict[str, Any] = {"date": date} if date else {"scheduled_time": now}
    print(f"invoke        {json.dumps(event)}")
    with _job_log() as log:
        try:
            summary = invoke_local(event, verbose=verbose)
        except Exception as exc:  # noqa: BLE001 - a person reads this, not a program
            print(f"FAILED        {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1, date or yesterday_utc().isoformat()
        print(f"answer        {json.dumps(summary)}")
        print(f"outcome       {job_line(summary, summary)}")
        account = _drain(resources, log, verbose=verbose)
    if account is not None:
        account = f"not exported; its last job: {account}"
    elif date:
        account = 'not exported: a {"date": D} event exports the subusers\' day only'
    day = str(summary["date"])
    return _report(resources, day, simulator, account or "not exported: no account job ran"), day


class _JobLog(logging.Handler):
    """The function's log records, as the JSON lines it writes (appended keys included)."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(formatter)
        self.entries: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.entries.append(json.loads(self.format(record)))
        except ValueError:
            return

    def outcome_of(self, message_id: str, job: Mapping[str, Any]) -> dict[str, Any] | None:
        """The last record that says how the job of one SQS message ended."""
        found = None
        for entry in self.entries:
            same_job = all(entry.get(key) == job.get(key) for key in ("date", "attempt"))
            same_job = same_job and entry.get("kind", SUBUSERS) == job.get("kind", SUBUSERS)
            if entry.get("message_id") == message_id or (same_job and _status(entry)):
                found = entry
        return found


@contextmanager
def _job_log() -> Iterator[_JobLog]:
    from seq_export.observability import logger  # noqa: PLC0415 - Powertools reads its level at import

    log = _JobLog(logger.registered_formatter)
    std_logger = logging.getLogger(logger.name)
    std_logger.addHandler(log)
    try:
        yield log
    finally:
        std_logger.removeHandler(log)


#: The function's log messages that end a job without a summary's ``status`` of their own.
_STATUS_OF_MESSAGE = {
    "Scores not ready, re-scheduled": "not_ready",
    "Gave up: SendGrid still computing scores": "gave_up",
    "Day already completed by a duplicate of this continuation": "superseded",
    "Export failed": "failed",
    "Invalid queued job": "invalid",
}
#: What became of a job, by that status (fields from the summary or the log record).
_OUTCOMES = {
    "exported": "exported {records} records",
    "not_ready": "not ready (202), re-scheduled in {delay} s",
    "gave_up": "not ready (202) and out of attempts: gave up, the job went to the dead-letter queue",
    "continued": "cut short near the time limit, continues as attempt {next_attempt}",
    "superseded": "already completed by a duplicate of this continuation",
    "failed": "failed: {error}: {reason}; it stays on the queue",
    "invalid": "refused: {reason}; it stays on the queue",
}


def _status(entry: Mapping[str, Any]) -> str | None:
    status = entry.get("status") or _STATUS_OF_MESSAGE.get(str(entry.get("message")))
    return None if status is None else str(status)


def job_line(job: Mapping[str, Any], outcome: Mapping[str, Any] | None) -> str:
    """``subusers 2026-11-22 attempt 2: exported 20 records``: which job, and what became of it
    (``outcome``: the job's summary or the function's record that ended it)."""
    kind = job.get("kind", SUBUSERS)
    return f"{kind} {job.get('date')} attempt {job.get('attempt')}: {_outcome_text(kind, outcome)}"


def _outcome_text(kind: str, outcome: Mapping[str, Any] | None) -> str:
    if outcome is None:
        return "done before: a duplicate delivery, answered from the idempotency record"
    status = _status(outcome)
    if status == "exported" and kind == ACCOUNT:
        return "exported; the parent account is not eligible (no score)" if outcome.get("ineligible") else "exported"
    fields = defaultdict(lambda: "?", outcome)
    fields["delay"] = outcome.get("delay_seconds", outcome.get("next_attempt_delay_seconds"))
    return _OUTCOMES.get(str(status), str(status)).format_map(fields)


def _drain(resources: Resources, log: _JobLog, *, verbose: bool) -> str | None:
    """Act as the SQS event source until the retry queue is empty: the parent account's day,
    which the daily run queues, and re-runs after a 202 (once their delay has passed). Prints
    one line per delivered message; returns what became of the last account job, if one ran."""
    source = SqsEventSource(boto3.client("sqs"), resources.queue_url)
    delivered: list[dict[str, Any]] = []
    account: str | None = None

    def deliver(event: dict[str, Any]) -> dict[str, Any]:
        delivered[:] = event["Records"]
        log.entries.clear()
        return invoke_local(event, verbose=verbose)

    while True:
        waiting = source.waiting()
        if not waiting["visible"] and not waiting["delayed"]:
            return account
        print(f"retry queue   {waiting['visible']} visible, {waiting['delayed']} delayed; receiving...")
        response = source.deliver_once(deliver)
        if response is None:
            continue
        for record in delivered:
            job = _job_of(record["body"])
            outcome = log.outcome_of(record["messageId"], job)
            print(f"queued job    {job_line(job, outcome)}")
            if job.get("kind") == ACCOUNT:
                account = _outcome_text(ACCOUNT, outcome)
        if response.get("batchItemFailures"):
            return account


def _job_of(body: str) -> dict[str, Any]:
    """Kind, date and attempt of a queued job, as its message body says."""
    with suppress(ValueError):
        job = json.loads(body)
        if isinstance(job, dict):
            return job
    return {"kind": "unreadable message", "date": repr(body[:60])}


def keep_banner(env: Mapping[str, str], day: str) -> list[str]:
    """What ``--keep`` prints: every variable the ``seq-export`` commands read, with its value
    (boto3's endpoint, credentials and region; the stack's resources; the function's environment
    for ``--local``), and how to call the function, which has no deployed Lambda here."""
    function_variable = ENV_NAMES["function_name"]
    return [
        "",
        "The local stack stays up until Ctrl-C. In another shell, paste:",
        *(f"export {name}={shlex.quote(value)}" for name, value in env.items() if name != function_variable),
        f"There is no deployed Lambda here, so no {function_variable}: `run` and `backfill` take --local",
        "and call the function's handler in the CLI's own process. For example:",
        f"  .venv/bin/seq-export status --date {day}",
        "  .venv/bin/seq-export lookup 100001",
        "  .venv/bin/seq-export low-scores --max 1 --limit 5",
        f"  .venv/bin/seq-export run --local --date {day}",
        f"  .venv/bin/seq-export backfill --local --wait --force --from {day} --to {day}",
    ]


def _keep(banner: list[str]) -> None:
    """Keep the stack up for another shell's `seq-export` commands until Ctrl-C."""
    try:
        print("\n".join(banner), flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping the local stack")


def _report(resources: Resources, day: str, simulator: SeqSimulator, account_not_exported: str) -> int:
    s3 = boto3.client("s3")
    key = day_key(DEFAULT_PREFIX, day)
    try:
        body = s3.get_object(Bucket=resources.bucket, Key=key)["Body"].read().decode()
    except s3.exceptions.NoSuchKey:
        dlq = boto3.client("sqs").receive_message(QueueUrl=resources.dlq_url).get("Messages", [])
        print(f"NOT EXPORTED  {day}; dead-letter queue holds: {[m['Body'] for m in dlq]}", file=sys.stderr)
        return 1
    records = [json.loads(line) for line in body.splitlines()]
    scored = [r for r in records if r["score"] is not None]
    served = sum(1 for r in simulator.requests if r["status"] == 200 and r["params"].get("date") == day)
    print(
        f"\nexported      {day}: {len(records)} records ({len(records) - len(scored)} ineligible) "
        f"from {served} page{'' if served == 1 else 's'}; {len(simulator.requests)} SendGrid requests in all"
    )
    print(f"S3 object     s3://{resources.bucket}/{key} ({len(body.encode())} bytes)")
    print(f"first line    {body.splitlines()[0] if records else '(empty day)'}")
    if scored:
        sample = scored[0]["user_id"]
        dynamodb = boto3.client("dynamodb")
        item = dynamodb.get_item(TableName=resources.table, Key={"user_id": {"S": sample}})["Item"]
        scan = dynamodb.get_paginator("scan").paginate(
            TableName=resources.table, Select="COUNT", FilterExpression="attribute_exists(score)"
        )
        count = sum(page["Count"] for page in scan)
        print(f"DynamoDB      {count} subusers with a latest score; lookup user_id {sample}:")
        print(f"              {json.dumps(item, sort_keys=True)}")
    account_key = day_key(DEFAULT_ACCOUNT_PREFIX, day)
    try:
        account = s3.get_object(Bucket=resources.bucket, Key=account_key)["Body"].read().decode().strip()
    except s3.exceptions.NoSuchKey:
        print(f"account       {day}: {account_not_exported}")
        return 0
    eligible = json.loads(account)["score"] is not None
    print(f"account       {day}: exported{'' if eligible else ' (the parent account is not eligible: no score)'}")
    print(f"              s3://{resources.bucket}/{account_key}: {account}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
