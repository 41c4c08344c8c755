"""Run the daily export locally, end to end, with nothing but Python: ``make run`` or
``python -m local.run --help``.

Starts moto (S3, DynamoDB, SQS, Secrets Manager) and the SEQ simulator on free loopback ports
(one simulated SendGrid host per source with ``--sources 2``), creates the stack's resources
there, invokes the real Lambda handler with a scheduled event (or ``--date``), then delivers the
retry queue to it as Lambda would (the account's day, other sources' days, re-runs after a 202)
until it is empty, saying what each delivered message was and what became of it.

This module is the command line; the stack it starts is ``local.run_stack``'s, what it invokes and
delivers ``local.delivery``'s, and the report of each source's day ``local.report``'s. With
``--keep`` the stack stays up until Ctrl-C or SIGTERM, either a clean shutdown, and ``--env-file``
writes its variables for another shell to load (``. PATH``): ``--keep`` blocks, so a file, not
``eval "$(...)"`` of this command's output, is how a script takes them.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from seq_export.config import MAX_PAGE_SIZE, SQS_MAX_DELAY_SECONDS, Env
from seq_export.dates import check_exportable, parse_day, today_utc
from seq_export.errors import InvalidEventError
from seq_export_cli.errors import EXIT_CONFIG

PROG = "python -m local.run"
#: What installs the local stack's own dependencies (moto server, requests, Powertools): the extra
#: `run` of pyproject.toml, which `pip install .` (the `seq-export` command alone) leaves out.
INSTALL_HINT = "run `make run`, or `pip install -e '.[run]'` in the repository root"

try:
    from local.delivery import export
    from local.run_stack import (
        EU_FIRST_USER_ID,
        EU_SOURCE,
        function_env,
        keep_banner,
        plans,
        print_hosts,
        write_env_file,
    )
    from local.stack import AWS_TEST_ENV, local_stack, patched_environ
except ModuleNotFoundError as missing:
    if __name__ != "__main__":  # imported: the importer sees the error itself
        raise
    package = (missing.name or "").partition(".")[0] or str(missing)
    click.echo(f"Error: the local stack needs {package!r}, which is not installed: {INSTALL_HINT}.", err=True)
    sys.exit(EXIT_CONFIG)

_F = TypeVar("_F", bound=Callable[..., Any])


class _ListsItsOptions(click.Command):
    """An unknown option's error lists every real option: Click's guess by spelling would offer
    ``--verbose`` for ``--bogus``, which is no nearer to what was meant."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as unknown:
            options = ", ".join(name for param in self.get_params(ctx) for name in param.opts if name.startswith("--"))
            message = f"No such option {unknown.option_name!r}. The options are: {options}."
            raise click.NoSuchOption(unknown.option_name, message, ctx=ctx) from None


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
    cls=_ListsItsOptions,
    help="Run the daily export locally, end to end: moto and the SEQ simulator on free ports of 127.0.0.1, the "
    "real handler invoked as Lambda would, then Lambda's SQS event source played for the retry queue, one line "
    "per delivered message. Every option can also be given as the environment variable shown (as `make run` does).",
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
    "After the run, keep moto and the simulator up until Ctrl-C (or SIGTERM) and print the `export VAR=value` "
    "lines with which `seq-export` commands in another shell use this local stack. They hold fake AWS "
    "credentials, which replace that shell's own.",
    is_flag=True,
)
@_option(
    "--env-file",
    "ENV_FILE",
    "With --keep, also write the `export VAR=value` lines to this file (owner-only), for another shell to load "
    'with `. PATH` (or `eval "$(cat PATH)"`) while the stack is up.',
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    metavar="PATH",
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
    env_file: Path | None,
) -> None:
    if env_file is not None and not keep:
        raise click.UsageError("--env-file needs --keep: the variables point at a stack that stops with the run")
    started = time.perf_counter()
    with local_stack(*plans(sources, subusers, not_ready)) as stack:
        env = function_env(stack, delay=delay, max_attempts=max_attempts, page_size=page_size)
        with patched_environ(env):
            from seq_export import wiring  # noqa: PLC0415 - imported in the function's environment

            wiring.use_dependencies(None)
            print_hosts(stack)
            code, day = export(stack, date, verbose=verbose)
            print(f"took          {time.perf_counter() - started:.2f} s")
            if keep:
                user_ids = [str(source.plan.scenario.first_user_id) for source in stack.sources]
                shared = {**AWS_TEST_ENV, "AWS_ENDPOINT_URL": stack.endpoint, **env}
                written = write_env_file(env_file, shared) if env_file is not None else None
                _keep(keep_banner(shared, day, user_ids, env_file=written))
    if code:
        raise click.exceptions.Exit(code)


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (2 for a usage error) instead of exiting."""
    try:
        run.main(args=argv, prog_name=PROG)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def _keep(banner: list[str]) -> None:
    """Keep the stack up for another shell's `seq-export` commands until Ctrl-C or SIGTERM: a
    SIGTERM is the same clean shutdown (a shell's background job starts with Ctrl-C ignored, and
    a supervisor stops with SIGTERM)."""
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _interrupt)  # inside: a SIGTERM from here on is a clean stop
        print("\n".join(banner), flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping the local stack")
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
