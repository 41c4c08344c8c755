"""Our exporter, through the real Lambda handler, in a process of its own (as ``local/invoke.py``).

``python -m bench.ours --out FILE [--event JSON] [--s3-only] [--exported-at ISO]`` with the function's environment
set (``Resources.env`` plus ``AWS_ENDPOINT_URL``). The container's dependencies are built
first, as a warm Lambda container holds them (cold start is measured apart); the measured job
is one ``lambda_handler`` call with a scheduled event, so it exports yesterday, the daily path.

``--s3-only`` injects a latest-score store that writes nothing (``build_dependencies(store=...)``):
the S3 part of the job alone, to set beside dlt, which does only that part. Everything else is
the production wiring. ``--exported-at`` fixes the day's ``exported_at`` (``build_dependencies(clock=...)``),
so two exports of one day, in key ranges and in order, write the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import boto3
import click

from bench.common import child_command, measure_job
from seq_export import wiring
from seq_export.config import Settings
from seq_export.dates import iso_timestamp, parse_instant
from seq_export.handler import lambda_handler
from seq_export.latest_store import DayWriter, LatestStore
from seq_export.models import ScoreChange, ScoreRecord
from seq_export_cli.local_lambda import FakeLambdaContext


class NoWrites(DayWriter):
    """A day of the latest-score table that writes nothing (so it claims no lease to release)."""

    def write(self, records: Sequence[ScoreRecord]) -> list[ScoreChange]:
        del records  # the S3 part alone
        return []


class NoStore(LatestStore):
    def open_day(self, day: str, updated_at: str) -> DayWriter:
        return NoWrites(self, day, updated_at)


def fixed_clock(moment: str) -> Callable[[], datetime]:
    """A clock that always says ``moment`` (ISO-8601 with its UTC offset, ``Z`` accepted)."""
    try:
        fixed = parse_instant(moment)
    except ValueError:
        fixed = None
    if fixed is None or fixed.tzinfo is None:
        raise click.BadParameter(f"{moment!r} is not an ISO-8601 instant with a UTC offset", param_hint="--exported-at")
    instant: datetime = fixed
    return lambda: instant


@child_command(__doc__)
@click.option("--event", help="The event, as JSON (default: scheduled now, so yesterday).")
@click.option("--s3-only", is_flag=True, help="Write nothing to DynamoDB.")
@click.option("--exported-at", metavar="ISO", help="The instant written as every line's exported_at (default: now).")
def main(out: str, event: str | None, s3_only: bool, exported_at: str | None) -> int:
    settings, session = Settings.from_env(), boto3.session.Session()
    store = NoStore(session.client("dynamodb"), settings.latest_scores_table) if s3_only else None
    clock = fixed_clock(exported_at) if exported_at else None
    wiring.use_dependencies(wiring.build_dependencies(settings, session=session, store=store, clock=clock))
    now = iso_timestamp(datetime.now(UTC))
    invocation: dict[str, Any] = json.loads(event) if event else {"scheduled_time": now}
    return measure_job(out, lambda: {"answer": lambda_handler(invocation, FakeLambdaContext())})


if __name__ == "__main__":
    main()
