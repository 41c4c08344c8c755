"""The ``seq-export`` command line: run and backfill the export, look up scores, check days.

Usage: ``seq-export [--json] [--stack NAME] COMMAND ...``; ``seq-export COMMAND --help`` for each.

* ``run --date D`` invokes the deployed function with ``{"date": D}`` and prints its summary;
  ``--local`` runs the handler in this process instead (with the function's own environment).
* ``backfill --from D1 --to D2 [--force] [--wait]`` sends ``{"from", "to"}`` and, with
  ``--wait``, shows ``N/M days exported`` on stderr until every day's object is in S3. With
  ``--local --wait`` this process also plays Lambda's SQS event source for the retry queue.
* ``lookup USER_ID`` / ``lookup --username NAME``: GetItem on the latest-score table, or a
  Query on its username index.
* ``low-scores --max S [--limit N]``: subusers whose latest score is at or below S.
* ``status --date D``: whether the day's object exists, its size, time and line count.

Exit codes (``errors``): 0 success; 1 a negative answer; 2 usage; 3 configuration; 4 AWS or the
function failed. ``--json`` prints one JSON document on stdout (also for negative answers);
messages and the progress bar always go to stderr.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from seq_export.dates import DAY_PATTERN, parse_day
from seq_export.errors import ConfigError, InvalidEventError, SeqExportError, describe_aws_error
from seq_export_cli.app import App
from seq_export_cli.commands import cmd_backfill, cmd_run, cmd_status
from seq_export_cli.errors import EXIT_CONFIG, EXIT_SERVICE, EXIT_USAGE, PROG, SETUP_ERRORS, CliError, one_line
from seq_export_cli.scores import cmd_lookup, cmd_low_scores
from seq_export_cli.waiting import DEFAULT_WAIT_TIMEOUT


# -- argument types -----------------------------------------------------------------------------
def day_arg(text: str) -> str:
    if not DAY_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"expected a day YYYY-MM-DD, got {text!r}")
    try:
        parse_day(text)
    except InvalidEventError:
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


# -- the parser ---------------------------------------------------------------------------------
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


def _local_option(parser: argparse.ArgumentParser, extra: str = "") -> None:
    parser.add_argument(
        "--local",
        action="store_true",
        help="run the function's handler in this process instead of invoking the deployed function; needs the "
        "function's full environment (as `make run` / `python -m local.run --keep` sets it)." + extra,
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
    except SETUP_ERRORS as exc:
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
