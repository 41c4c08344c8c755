"""Our exporter, through the real Lambda handler, in a process of its own (as ``local/invoke.py``).

``python -m bench.ours --out FILE [--event JSON] [--s3-only]`` with the function's environment
set (``Resources.env`` plus ``AWS_ENDPOINT_URL``). The container's dependencies are built
first, as a warm Lambda container holds them (cold start is measured apart); the measured job
is one ``lambda_handler`` call with a scheduled event, so it exports yesterday, the daily path.

``--s3-only`` swaps the latest-score table for a store that writes nothing: the S3 part of the
job alone, to set beside dlt, which does only that part. Everything else is the production
wiring.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bench.common import Stopwatch, write_result


def _s3_only(deps: Any) -> Any:
    """The same dependencies, with a latest-score store that writes nothing."""
    from seq_export.latest_store import DayWriter, LatestStore  # noqa: PLC0415 - after the handler's imports

    class NoWrites(DayWriter):
        def write(self, records: Sequence[Any]) -> list[Any]:
            del records  # nothing is written: the S3 part alone
            return []

        def close(self) -> None:
            return None

    class NoStore(LatestStore):
        def open_day(self, day: str, updated_at: str) -> DayWriter:
            return NoWrites(self, day, updated_at)

    exporter = deps.exporter
    exporter._store = NoStore(exporter._store._client, exporter._store._table)
    return dataclasses.replace(deps, exporter=exporter)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ours", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="where to write the measurements (JSON)")
    parser.add_argument("--event", help="the event, as JSON (default: scheduled now, so yesterday)")
    parser.add_argument("--s3-only", action="store_true", help="write nothing to DynamoDB")
    args = parser.parse_args(argv)
    from local.stack import FakeLambdaContext  # noqa: PLC0415 - imports are setup, not the job
    from seq_export import handler  # noqa: PLC0415

    deps = handler.build_dependencies()
    handler.use_dependencies(_s3_only(deps) if args.s3_only else deps)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event: dict[str, Any] = json.loads(args.event) if args.event else {"scheduled_time": now}
    with Stopwatch() as watch:
        answer = handler.lambda_handler(event, FakeLambdaContext())
    write_result(args.out, watch, answer=answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
