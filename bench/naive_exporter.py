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

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3

from bench.common import Spec, child_command, measure_job, pages


def export_day(spec: Spec, table: Any, s3: Any) -> dict[str, int]:
    """Fetch every page of the day, upsert each scored subuser, put the JSON lines."""
    exported_at = datetime.now(UTC).isoformat()
    lines: list[str] = []
    pages_read = written = 0
    for page in pages(spec, lambda content: json.loads(content, parse_float=Decimal)):  # the Table refuses floats
        pages_read += 1
        for record in page["result"]:
            line = {
                "date": spec.day,
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
    data = ("\n".join(lines) + "\n").encode() if lines else b""
    s3.put_object(Bucket=spec.settings.scores_bucket, Key=spec.key, Body=data)
    return {"pages": pages_read, "records": len(lines), "written": written, "bytes": len(data)}


@child_command(__doc__)
def main(out: str) -> int:
    spec = Spec.from_env()
    table, s3 = boto3.resource("dynamodb").Table(spec.settings.latest_scores_table), boto3.client("s3")
    return measure_job(out, lambda: export_day(spec, table, s3))


if __name__ == "__main__":
    main()
