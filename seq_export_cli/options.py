"""What the commands accept: argument types that turn a bad value into a usage error (exit 2)
before anything calls AWS, and the options every command shares.

The shared options (``--json``, ``--stack``, ``--region``, ``--profile``) are accepted before or
after the command (``seq-export --json status`` and ``seq-export status --json``): both places
write into the one ``Options`` of the invocation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import click

from seq_export.dates import check_exportable, parse_day, today_utc, yesterday_utc
from seq_export.errors import InvalidEventError
from seq_export.models import KINDS, SCORE_MAX, SCORE_MIN, SOURCE_NAME, SUBUSERS

#: How long ``--wait`` waits unless ``--timeout`` says otherwise.
DEFAULT_WAIT_TIMEOUT = 900.0

#: ``--kind all``: every kind a source exports (``App.kinds_of``); the other choices are the
#: function's kinds.
ALL_KINDS = "all"
KIND_CHOICES: tuple[str, ...] = (*KINDS, ALL_KINDS)
#: SendGrid's scale, as the function checks every score (``models.SCORE_MIN``, ``SCORE_MAX``).
SCALE = f"{SCORE_MIN} to {SCORE_MAX}"

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass
class Options:
    """The shared options of one invocation, wherever on the line they were given."""

    json: bool = False
    stack: str | None = None
    region: str | None = None
    profile: str | None = None
    verbose: bool = False


class Day(click.ParamType[str]):
    """A UTC day ``YYYY-MM-DD``; with ``exportable``, only a finished day within SendGrid's window
    (the function's own rule, ``dates.check_exportable``), so nothing unfinished is exported; with
    ``finished``, any day up to yesterday (a later day has nothing to read yet)."""

    name = "YYYY-MM-DD"

    def __init__(self, *, exportable: bool = False, finished: bool = False) -> None:
        self.exportable = exportable
        self.finished = finished

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        what = f"{param.opts[0]}" if param is not None else "date"
        try:
            day = parse_day(value, what=what)
            if self.exportable:
                check_exportable(day, today_utc(), what=what)
        except InvalidEventError as exc:
            self.fail(str(exc), param, ctx)
        if self.finished and day > yesterday_utc():
            self.fail(
                f"{what} {day.isoformat()} has not ended yet (UTC): the newest day is {yesterday_utc()}", param, ctx
            )
        return day.isoformat()


class Score(click.ParamType[Decimal]):
    """A score within SendGrid's scale, ``SCALE`` (decimals allowed: 2.5)."""

    name = "SCORE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        try:
            score = Decimal(str(value))
        except InvalidOperation:
            self.fail(f"expected a score from {SCALE}, got {value!r}", param, ctx)
        if not score.is_finite() or not SCORE_MIN <= score <= SCORE_MAX:
            self.fail(f"scores are {SCALE}, got {value!r}", param, ctx)
        return score


class NonBlank(click.ParamType[str]):
    """Text with something in it: an empty user id or username is a usage error, not a lookup."""

    name = "TEXT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if not text:
            self.fail("must not be empty", param, ctx)
        return text


class SourceName(click.ParamType[str]):
    """A source's name as the function spells it (a-z, 0-9 and -, 1 to 32); whether the stack
    has such a source is checked against its configured sources (``Target.chosen_sources``)."""

    name = "NAME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if not SOURCE_NAME.fullmatch(text):
            self.fail(f"a source name is 1 to 32 characters of a-z, 0-9 and -, got {value!r}", param, ctx)
        return text


def source_option(help_text: str) -> Callable[[_F], _F]:
    """``--source NAME``: one configured source (default: every one)."""
    return click.option("--source", type=SourceName(), default=None, help=help_text)


def default_day() -> str:
    """What the schedule exports: yesterday (UTC)."""
    return yesterday_utc().isoformat()


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value not in (None, False) and param.name is not None:
        setattr(ctx.ensure_object(Options), param.name, value)


def shared_options(command: _F) -> _F:
    """``--json``, ``--stack``, ``--region`` and ``--profile``, written into ``Options``."""
    for option in reversed(
        (
            click.option(
                "--json",
                is_flag=True,
                expose_value=False,
                callback=_store,
                help="One JSON document on stdout, for scripts.",
            ),
            click.option(
                "--stack",
                metavar="NAME",
                expose_value=False,
                callback=_store,
                help="Read bucket, prefixes, table, queue, function and sources from this CloudFormation stack's "
                "outputs (default: the environment variables).",
            ),
            click.option(
                "--region",
                expose_value=False,
                callback=_store,
                help="AWS region (default: AWS_REGION, then AWS_DEFAULT_REGION, then the profile's).",
            ),
            click.option("--profile", expose_value=False, callback=_store, help="AWS profile (default: AWS_PROFILE)."),
        )
    ):
        command = option(command)
    return command


def local_options(command: _F) -> _F:
    """``--local`` and ``--verbose`` (which only has something to show with ``--local``)."""
    command = click.option(
        "--verbose",
        is_flag=True,
        expose_value=False,
        callback=_store,
        help="With --local: show the function's JSON logs and EMF metrics on stderr.",
    )(command)
    return click.option(
        "--local",
        is_flag=True,
        help="Run the function's handler in this process instead of invoking the deployed function (needs the "
        "function's environment, as `python -m local.run --keep` prints it).",
    )(command)


def wait_options(wait_help: str) -> Callable[[_F], _F]:
    """``--wait`` (what it waits for is the command's) and ``--timeout``, which needs it."""

    def check_timeout(ctx: click.Context, _: click.Parameter, value: float | None) -> float:
        if value is not None and not ctx.params.get("wait"):
            raise click.UsageError("--timeout applies to --wait", ctx)
        return DEFAULT_WAIT_TIMEOUT if value is None else value

    def decorate(command: _F) -> _F:
        command = click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            metavar="SECONDS",
            callback=check_timeout,
            help="How long --wait waits, then exit 1 naming what is still pending "
            f"[default: {DEFAULT_WAIT_TIMEOUT:.0f}].",
        )(command)
        return click.option("--wait", is_flag=True, is_eager=True, help=wait_help)(command)

    return decorate


def kind_option(help_text: str) -> Callable[[_F], _F]:
    return click.option(
        "--kind",
        type=click.Choice(KIND_CHOICES),
        default=SUBUSERS,
        show_default=True,
        help=help_text,
    )
