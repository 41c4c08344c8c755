"""The plain script a user writes in an afternoon to do the same job (a benchmark reference).

A requests loop over the pages, ``put_item`` per scored subuser through boto3's Table
resource, all lines kept in a list, one ``put_object`` at the end. It is deliberately what it
looks like: no validation, no retries beyond botocore's defaults, memory that grows with the
day, and no guarantee that a newer day wins when two days run at once (a backfill can
overwrite today's score). It skips subusers without a score, so it makes fewer calls than a
script that wrote every record would: that is generous to it in the CPU comparison.

``python -m bench.naive_exporter --out FILE`` with ``BENCH_SPEC`` set (see bench/common.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import requests

from bench.common import MAX_PAGES, SCORES_PATH, Spec, Stopwatch, write_result


def export_day(day: str, *, base_url: str, api_key: str, table: Any, s3: Any, bucket: str, key: str) -> dict[str, int]:
    """Fetch every page of ``day``, upsert each scored subuser, put the JSON lines."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {api_key}"}
    params: dict[str, str | int] = {"date": day, "limit": 1000}
    exported_at = datetime.now(UTC).isoformat()
    lines: list[str] = []
    pages = written = 0
    for _ in range(MAX_PAGES):
        response = session.get(base_url + SCORES_PATH, params=params, headers=headers, timeout=30)
        response.raise_for_status()
        body = json.loads(response.text, parse_float=Decimal)  # the Table resource refuses floats
        pages += 1
        for record in body["result"]:
            line = {
                "date": day,
                "user_id": record["user_id"],
                "username": record.get("username"),
                "score": record.get("score"),
                "metrics": record.get("metrics"),
                "exported_at": exported_at,
            }
            lines.append(json.dumps(line, default=str))
            if record.get("score") is not None:
                table.put_item(Item={k: v for k, v in line.items() if v is not None} | {"updated_at": exported_at})
                written += 1
        after_key = (body.get("_metadata") or {}).get("next_params", {}).get("after_key")
        if not after_key:
            break
        params["after_key"] = after_key
    data = ("\n".join(lines) + "\n").encode() if lines else b""
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    return {"pages": pages, "records": len(lines), "written": written, "bytes": len(data)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.naive_exporter", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="where to write the measurements (JSON)")
    args = parser.parse_args(argv)
    spec = Spec.from_env()
    table = boto3.resource("dynamodb").Table(spec.table)
    s3 = boto3.client("s3")
    with Stopwatch() as watch:
        done = export_day(
            spec.day,
            base_url=spec.api_base_url,
            api_key=spec.api_key,
            table=table,
            s3=s3,
            bucket=spec.bucket,
            key=spec.key,
        )
    write_result(args.out, watch, **done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
