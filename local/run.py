"""Run the daily export locally, end to end, with nothing but Python: ``make run`` or
``python -m local.run --help``.

Starts moto (S3, DynamoDB, SQS, Secrets Manager) and the SEQ simulator on free loopback ports
(one simulated SendGrid host per source with ``--sources 2``), creates the stack's resources
there, invokes the real Lambda handler with a scheduled event (or ``--date``), then plays the SQS
event source for the retry queue (the account's day, other sources' days, re-runs after a 202)
until it is empty, saying what each delivered message was and what became of it. The report of
each source's day is ``local.report``'s.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from seq_export.config import MAX_PAGE_SIZE, SQS_MAX_DELAY_SECONDS, Env
from seq_export.dates import check_exportable, parse_day, today_utc, yesterday_utc
from seq_export.errors import InvalidEventError
from seq_export.layout import DEFAULT_ACCOUNT_PREFIX, DEFAULT_SOURCE
from seq_export.models import ACCOUNT, SUBUSERS
from seq_export_cli.errors import EXIT_CONFIG

PROG = "python -m local.run"
#: What installs the local stack's own dependencies (moto server, requests, Powertools): the extra
#: `run` of pyproject.toml, which `pip install .` (the `seq-export` command alone) leaves out.
INSTALL_HINT = "run `make run`, or `pip install -e '.[run]'` in the repository root"

try:
    import boto3

    from local.report import outcome_text, report, status_of
    from local.seq_simulator import Scenario
    from local.stack import AWS_TEST_ENV, LocalStack, Resources, SourcePlan, local_stack, patched_environ
    from seq_export_cli.app import ENV_NAMES
    from seq_export_cli.invoke import invoke_local
    from seq_export_cli.local_lambda import SqsEventSource
except ModuleNotFoundError as missing:
    if __name__ != "__main__":  # imported: the importer sees the error itself
        raise
    package = (missing.name or "").partition(".")[0] or str(missing)
    click.echo(f"Error: the local stack needs {package!r}, which is not installed: {INSTALL_HINT}.", err=True)
    sys.exit(EXIT_CONFIG)

#: The second source of ``--sources 2``: EU-pinned subusers at the EU host, with a key of their
#: own, ids of their own, a fifth as many subusers, and no parent account of their own there.
EU_SOURCE, EU_FIRST_USER_ID, EU_SHARE = "eu", 900_001, 5
_F = TypeVar("_F", bound=Callable[..., Any])


def plans(sources: int, subusers: int, not_ready: int) -> tuple[SourcePlan, ...]:
    """The simulated sources: ``default`` alone (a single-source stack, no ``SEQ_SOURCES``), or
    ``global`` and ``eu``, each on a host of its own."""
    first = Scenario(subusers=subusers, not_ready=not_ready)
    if sources == 1:
        return (SourcePlan(DEFAULT_SOURCE, first),)
    eu = Scenario(subusers=max(1, subusers // EU_SHARE), not_ready=not_ready, first_user_id=EU_FIRST_USER_ID)
    return SourcePlan("global", first), SourcePlan(EU_SOURCE, eu, account_scores=False)


def _exportable_day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``--date``/``DATE`` by the function's own rules: YYYY-MM-DD, finished, in SendGrid's window."""
    if value is None:
        return None
    try:
        day = parse_day(value, what="day")
        check_exportable(day, today_utc(), what="day")
    except InvalidEventError as exc:
        raise click.BadParameter(str(exc)) from None
    return day.isoformat()


def _option(name: str, envvar: str, help_text: str, **kwargs: Any) -> Callable[[_F], _F]:
    """An option that its environment variable can give too (``make run`` passes them so); help
    shows the variable and the default, and an error names both."""
    return click.option(name, envvar=envvar, show_envvar=True, show_default=True, help=help_text, **kwargs)


def _number(
    name: str, envvar: str, help_text: str, *, default: int, low: int, high: int | None = None
) -> Callable[[_F], _F]:
    """A whole number from ``low`` to ``high``: a value outside is a usage error before anything starts."""
    return _option(name, envvar, help_text, type=click.IntRange(low, high), default=default, metavar="N")


@click.command(
    help="Run the daily export locally, end to end: moto and the SEQ simulator on free ports of 127.0.0.1, the "
    "real handler invoked as Lambda would, then Lambda's SQS event source played for the retry queue, one line "
    "per delivered message. Every option can also be given as the environment variable shown (as `make run` does)."
)
@_option(
    "--date",
    "DATE",
    'Day to export, with a direct {"date": D} event (subusers only; one per source, naming it, with several '
    "sources). Default: a scheduled event for now, which exports yesterday (UTC) and queues the account's day "
    "(and every other source's day).",
    metavar="YYYY-MM-DD",
    callback=_exportable_day,
)
@_number("--subusers", "SUBUSERS", "Subusers the SEQ simulator serves.", default=2500, low=1)
@_number(
    "--sources",
    "SOURCES",
    "SendGrid sources, each a simulated host of its own with its own key: 1 (the single source "
    f"`default`, no {Env.SEQ_SOURCES}) or 2 (`global`, and `{EU_SOURCE}` with a fifth as many subusers, "
    f"ids from {EU_FIRST_USER_ID}, and no parent account scores, in {Env.SEQ_SOURCES}).",
    default=1,
    low=1,
    high=2,
)
@_number("--not-ready", "NOT_READY", "Answers of 202 the simulator plays before the day is ready.", default=0, low=0)
@_number(
    "--delay",
    "DELAY",
    "Seconds before the first re-run after a 202 (the function's NOT_READY_DELAY_SECONDS).",
    default=2,
    low=0,
    high=SQS_MAX_DELAY_SECONDS,
)
@_number(
    "--max-attempts",
    "MAX_ATTEMPTS",
    "Answers of 202 per day before giving up (MAX_NOT_READY_ATTEMPTS).",
    default=16,
    low=1,
)
@_number(
    "--page-size",
    "PAGE_SIZE",
    "Subusers per SendGrid page (the function's SEQ_PAGE_SIZE).",
    default=MAX_PAGE_SIZE,
    low=1,
    high=MAX_PAGE_SIZE,
)
@_option("--verbose", "VERBOSE", "Show the function's JSON logs and EMF metrics on stderr.", is_flag=True)
@_option(
    "--keep",
    "KEEP",
    "After the run, keep moto and the simulator up until Ctrl-C and print the `export VAR=value` lines with "
    "which `seq-export` commands in another shell use this local stack.",
    is_flag=True,
)
def run(  # noqa: PLR0917 - Click passes the options by keyword
    date: str | None,
    subusers: int,
    sources: int,
    not_ready: int,
    delay: int,
    max_attempts: int,
    page_size: int,
    verbose: bool,
    keep: bool,
) -> None:
    started = time.perf_counter()
    with local_stack(*plans(sources, subusers, not_ready)) as stack:
        env = stack.function_env(
            **{
                Env.ACCOUNT_SCORES_PREFIX: DEFAULT_ACCOUNT_PREFIX,
                Env.NOT_READY_DELAY_SECONDS: str(delay),
                Env.MAX_NOT_READY_ATTEMPTS: str(max_attempts),
                Env.SEQ_PAGE_SIZE: str(page_size),
            },
            POWERTOOLS_LOG_LEVEL="INFO",  # the job lines read the function's INFO records; shown with --verbose
        )
        with patched_environ(env):
            from seq_export import wiring  # noqa: PLC0415 - imported in the function's environment

            wiring.use_dependencies(None)
            print(f"moto server   {stack.endpoint}")
            _print_hosts(stack)
            code, day = _export(stack, date, verbose=verbose)
            print(f"took          {time.perf_counter() - started:.2f} s")
            if keep:
                user_ids = [str(source.plan.scenario.first_user_id) for source in stack.sources]
                _keep(keep_banner({**AWS_TEST_ENV, "AWS_ENDPOINT_URL": stack.endpoint, **env}, day, user_ids))
    if code:
        raise click.exceptions.Exit(code)


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (2 for a usage error) instead of exiting."""
    try:
        run.main(args=argv, prog_name=PROG)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def _print_hosts(stack: LocalStack) -> None:
    if len(stack.sources) == 1:
        print(f"SEQ simulator {stack.simulator.url}  ({stack.simulator.scenario.subusers} subusers)")
        return
    for source in stack.sources:
        account = "" if source.plan.account_scores else ", no parent account scores"
        print(f"SEQ simulator {source.url}  (source {source.name}: {source.plan.scenario.subusers} subusers{account})")


def _export(stack: LocalStack, date: str | None, *, verbose: bool) -> tuple[int, str]:
    """Invoke the handler, deliver the retry queue, report; returns the exit code and the day."""
    names = [source.name for source in stack.sources]
    named = len(names) > 1
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    events: list[dict[str, Any]] = [{"scheduled_time": now}]
    if date:
        events = [{"date": date, "source": name} for name in names] if named else [{"date": date}]
    with _job_log() as log:
        for event in events:
            print(f"invoke        {json.dumps(event)}")
            try:
                summary = invoke_local(event, verbose=verbose)
            except Exception as exc:  # noqa: BLE001 - a person reads this, not a program
                print(f"FAILED        {type(exc).__name__}: {exc}", file=sys.stderr)
                return 1, date or yesterday_utc().isoformat()
            print(f"answer        {json.dumps(summary)}")
            print(f"outcome       {job_line(summary, summary, named=named)}")
        accounts = _drain(stack.resources, log, verbose=verbose, named=named)
    notes = {}
    for source in stack.sources:
        if not source.plan.account_scores:
            notes[source.name] = f"not exported: source {source.name} has account_scores off"
        elif source.name in accounts:
            notes[source.name] = f"not exported; its last job: {accounts[source.name]}"
        elif date:
            notes[source.name] = 'not exported: a {"date": D} event exports the subusers\' day only'
        else:
            notes[source.name] = "not exported: no account job ran"
    day = str(summary["date"])
    return report(stack, day, notes), day


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
            same_job = all(entry.get(key) == job.get(key) for key in ("source", "date", "attempt"))
            same_job = same_job and entry.get("kind", SUBUSERS) == job.get("kind", SUBUSERS)
            if entry.get("message_id") == message_id or (same_job and status_of(entry)):
                found = entry
        return found


@contextmanager
def _job_log() -> Iterator[_JobLog]:
    from seq_export.observability import logger  # noqa: PLC0415 - Powertools reads its level at import

    log = _JobLog(logger.registered_formatter)
    std_logger = logging.getLogger(logger.name)
    std_logger.addHandler(log)
    old_level = logger.log_level
    if old_level > logging.INFO:  # the records that end a job are INFO, whatever the process set
        logger.setLevel(logging.INFO)
    try:
        yield log
    finally:
        std_logger.removeHandler(log)
        if logger.log_level != old_level:
            logger.setLevel(old_level)


def job_line(job: Mapping[str, Any], outcome: Mapping[str, Any] | None, *, named: bool = False) -> str:
    """``subusers 2026-11-22 attempt 2: exported 20 records``: which job (its source first when
    ``named``: a stack of several sources), and what became of it (``outcome``: the job's summary
    or the function's record that ended it)."""
    kind = job.get("kind", SUBUSERS)
    source = f"{job.get('source')} " if named else ""
    return f"{source}{kind} {job.get('date')} attempt {job.get('attempt')}: {outcome_text(kind, outcome)}"


def _drain(resources: Resources, log: _JobLog, *, verbose: bool, named: bool) -> dict[str, str]:
    """Act as the SQS event source until the retry queue is empty: the parent account's day and
    the other sources' days, which the daily run queues, and re-runs after a 202 (once their
    delay has passed). Prints one line per delivered message; returns what became of the last
    account job of each source that ran one."""
    source = SqsEventSource(boto3.client("sqs"), resources.queue_url)
    delivered: list[dict[str, Any]] = []
    accounts: dict[str, str] = {}

    def deliver(event: dict[str, Any]) -> dict[str, Any]:
        delivered[:] = event["Records"]
        log.entries.clear()
        return invoke_local(event, verbose=verbose)

    while True:
        waiting = source.waiting()
        if not waiting["visible"] and not waiting["delayed"]:
            return accounts
        print(f"retry queue   {waiting['visible']} visible, {waiting['delayed']} delayed; receiving...")
        response = source.deliver_once(deliver)
        if response is None:
            continue
        for record in delivered:
            job = _job_of(record["body"])
            outcome = log.outcome_of(record["messageId"], job)
            print(f"queued job    {job_line(job, outcome, named=named)}")
            if job.get("kind") == ACCOUNT:
                accounts[str(job.get("source"))] = outcome_text(ACCOUNT, outcome)
        if response.get("batchItemFailures"):
            return accounts


def _job_of(body: str) -> dict[str, Any]:
    """Kind, date and attempt of a queued job, as its message body says."""
    with suppress(ValueError):
        job = json.loads(body)
        if isinstance(job, dict):
            return job
    return {"kind": "unreadable message", "date": repr(body[:60])}


def keep_banner(env: Mapping[str, str], day: str, user_ids: Sequence[str] = ("100001",)) -> list[str]:
    """What ``--keep`` prints: every variable the ``seq-export`` commands read, with its value
    (boto3's endpoint, credentials and region; the stack's resources; the function's environment
    for ``--local``, ``SEQ_SOURCES`` included when there are several sources), and how to call
    the function, which has no deployed Lambda here. ``user_ids``: a subuser of each source."""
    function_variable = ENV_NAMES["function_name"]
    return [
        "",
        "The local stack stays up until Ctrl-C. In another shell, paste:",
        *(f"export {name}={shlex.quote(value)}" for name, value in env.items() if name != function_variable),
        f"There is no deployed Lambda here, so no {function_variable}: `run` and `backfill` take --local",
        "and call the function's handler in the CLI's own process. For example:",
        f"  .venv/bin/seq-export status --date {day}",
        *(f"  .venv/bin/seq-export lookup {user_id}" for user_id in user_ids),
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


if __name__ == "__main__":
    sys.exit(main())
