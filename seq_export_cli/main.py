"""The ``seq-export`` command line: export days now or in a range, check them, look up scores.

``main`` builds the Click group from the commands' modules and turns every expected failure
into one line on stderr and its exit code (``errors.EXIT_CODES``), never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
from botocore.exceptions import BotoCoreError, ClientError

from seq_export import __version__
from seq_export.errors import ConfigError, SeqExportError, describe_aws_error
from seq_export_cli.app import ENV_NAMES
from seq_export_cli.backfill import backfill
from seq_export_cli.dead_letter_queue import dead_letters
from seq_export_cli.errors import (
    EXIT_CODES,
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    EXIT_SERVICE,
    EXIT_USAGE,
    PROG,
    SETUP_ERRORS,
    CliError,
    one_line,
)
from seq_export_cli.migrate import migrate_lake
from seq_export_cli.options import Options, shared_options
from seq_export_cli.report import report
from seq_export_cli.run import run
from seq_export_cli.scores import lookup, low_scores
from seq_export_cli.sources import sources
from seq_export_cli.status import status

EPILOG = (
    "Targets: --stack NAME reads the deployed stack's outputs; otherwise the variables "
    + ", ".join(ENV_NAMES.values())
    + ". Exit codes: "
    + "; ".join(f"{code} {meaning.split(':')[0]}" for code, meaning in EXIT_CODES.items())
    + "."
)


@click.group(
    name=PROG,
    epilog=EPILOG,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
# The version's one home is seq_export.__version__ (what pyproject.toml reads), not the installed
# metadata: an editable install keeps the version it was installed with.
@click.version_option(__version__, "--version", "-V", prog_name=PROG, message="%(prog)s %(version)s")
@shared_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Operate the SendGrid Engagement Quality export: run and backfill days of every source, check
    what is exported, look up subusers' latest scores, list and redrive the dead-letter queue,
    move a lake from before sources."""
    ctx.ensure_object(Options)
    if ctx.invoked_subcommand is None:  # no command: the help is the answer (stdout, exit 0)
        click.echo(ctx.get_help())
        ctx.exit(0)


for command in (run, backfill, status, report, sources, lookup, low_scores, migrate_lake, dead_letters):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code (``errors.EXIT_CODES``)."""
    try:
        return int(cli.main(args=list(argv) if argv is not None else None, prog_name=PROG, standalone_mode=False) or 0)
    except click.exceptions.Exit as exc:  # --help, --version
        return int(exc.exit_code)
    except click.UsageError as exc:
        exc.show()
        return EXIT_USAGE
    except click.Abort:
        _note("interrupted")
        return EXIT_INTERRUPTED
    except CliError as exc:
        _note(one_line(str(exc)))
        return exc.exit_code
    except ConfigError as exc:
        _note(f"configuration: {one_line(str(exc))}")
        return EXIT_CONFIG
    except SeqExportError as exc:
        _note(f"the function failed: {type(exc).__name__}: {one_line(str(exc))}")
        return EXIT_SERVICE
    except SETUP_ERRORS as exc:
        _note(f"configuration: {one_line(str(exc))}")
        return EXIT_CONFIG
    except (ClientError, BotoCoreError) as exc:
        operation = getattr(exc, "operation_name", None)
        _note(f"AWS {operation + ' ' if operation else ''}failed: {one_line(describe_aws_error(exc))}")
        return EXIT_SERVICE
    except KeyboardInterrupt:
        _note("interrupted")
        return EXIT_INTERRUPTED


def _note(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
