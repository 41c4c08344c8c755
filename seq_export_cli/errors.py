"""Exit codes and the CLI's expected failures: each is one line on stderr, never a traceback.

The table (``EXIT_CODES``) is the contract scripts rely on; docs/cli.md and ``--help`` print it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import click
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from seq_export.errors import describe_aws_error

PROG = "seq-export"
EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_SERVICE = 4
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success: the day is exported, the subuser found, the query answered",
    EXIT_NEGATIVE: "a negative answer: not found, not exported (yet), nothing matched, --wait ran out or saw a "
    "day dead-lettered, a malformed line left a day unmigrated, the dead-letter queue holds a message",
    EXIT_USAGE: "usage: an unknown option, a malformed or out-of-range value (checked before any AWS call), "
    "a source the stack does not have",
    EXIT_CONFIG: "configuration: a missing variable or stack output, an unknown stack, no credentials or region",
    EXIT_SERVICE: "AWS refused or failed a call, or the export function failed",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}

#: botocore's errors that mean the caller's setup is incomplete, not that AWS failed.
SETUP_ERRORS = (NoCredentialsError, PartialCredentialsError, NoRegionError, ProfileNotFound)


class CliError(Exception):
    """An expected failure: one line on stderr and ``exit_code``, never a traceback."""

    exit_code = EXIT_SERVICE


class UsageError(click.UsageError):
    """A value the command cannot use, found after parsing (e.g. --from after --to): shown as
    Click shows its own usage errors (the command's usage line, then ``Error: ...``), exit 2."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message, ctx=click.get_current_context(silent=True))


class TargetConfigError(CliError):
    """A setting the command needs is missing (variable, stack output, credentials, region)."""

    exit_code = EXIT_CONFIG


class ServiceError(CliError):
    """AWS refused or failed a call, or the function answered with an error."""

    exit_code = EXIT_SERVICE


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def aws_failure(what: str, exc: ClientError | BotoCoreError) -> CliError:
    """The ``CliError`` for a botocore error raised while doing ``what``."""
    if isinstance(exc, SETUP_ERRORS):
        return TargetConfigError(f"{what}: {exc}")
    return ServiceError(f"{what} failed: {describe_aws_error(exc)}")


@contextlib.contextmanager
def aws_failures_named(what: str) -> Iterator[None]:
    """Turn botocore's errors inside the block into a ``CliError`` naming ``what`` failed."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise aws_failure(what, exc) from None


def conditional(what: str, refused: str, call: Callable[[], object]) -> bool:
    """Make a conditional AWS write: True when made, False when AWS refused it with ``refused``
    (the condition did not hold); any other botocore error is a ``CliError`` naming ``what``."""
    try:
        call()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == refused:
            return False
        raise aws_failure(what, exc) from None
    except BotoCoreError as exc:
        raise aws_failure(what, exc) from None
    return True
