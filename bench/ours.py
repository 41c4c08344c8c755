"""Our exporter, through the real Lambda handler, in a process of its own (as ``local/invoke.py``).

``python -m bench.ours --out FILE [--event JSON] [--s3-only]`` with the function's environment
set (``Resources.env`` plus ``AWS_ENDPOINT_URL``). The container's dependencies are built
first, as a warm Lambda container holds them (cold start is measured apart); the measured job
is one ``lambda_handler`` call with a scheduled event, so it exports yesterday, the daily path.

``--s3-only`` injects a latest-score store that writes nothing (``build_dependencies(store=...)``):
the S3 part of the job alone, to set beside dlt, which does only that part. Everything else is
the production wiring.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import boto3

from bench.common import child_parser, run_job
from local.lambda_runtime import FakeLambdaContext
from seq_export import wiring
from seq_export.config import Settings
from seq_export.dates import iso_timestamp
from seq_export.handler import lambda_handler
from seq_export.latest_store import DayWriter, LatestStore
from seq_export.models import ScoreChange, ScoreRecord


class NoWrites(DayWriter):
    """A day of the latest-score table that writes nothing (so it claims no lease to release)."""

    def write(self, records: Sequence[ScoreRecord]) -> list[ScoreChange]:
        del records  # the S3 part alone
        return []


class NoStore(LatestStore):
    def open_day(self, day: str, updated_at: str) -> DayWriter:
        return NoWrites(self, day, updated_at)


def main(argv: list[str] | None = None) -> int:
    parser = child_parser("bench.ours", __doc__)
    parser.add_argument("--event", help="the event, as JSON (default: scheduled now, so yesterday)")
    parser.add_argument("--s3-only", action="store_true", help="write nothing to DynamoDB")
    args = parser.parse_args(argv)
    settings, session = Settings.from_env(), boto3.session.Session()
    store = NoStore(session.client("dynamodb"), settings.latest_scores_table) if args.s3_only else None
    wiring.use_dependencies(wiring.build_dependencies(settings, session=session, store=store))
    now = iso_timestamp(datetime.now(UTC))
    event: dict[str, Any] = json.loads(args.event) if args.event else {"scheduled_time": now}
    return run_job(args.out, lambda: {"answer": lambda_handler(event, FakeLambdaContext())})


if __name__ == "__main__":
    sys.exit(main())
