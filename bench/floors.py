"""The floor: each part of the job done alone, with nothing else in the way.

``python -m bench.floors fetch|write|s3 --out FILE`` with ``BENCH_SPEC`` set. ``fetch``: every page
of the day with a bare requests loop, parsed only for the cursor; ``write``: the DynamoDB
BatchWriteItem calls our design makes for the day (the same items, 25 a call) from a bare thread
pool, ``UnprocessedItems`` sent again (bounded); ``s3``: one ``put_object`` of the day's object
(the same lines). Items and body are built before the clock starts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import click
from botocore.config import Config

from bench.common import Spec, child_command, measure_job, pages
from local.seq_simulator import Scenario, subuser_record
from seq_export import record_codec
from seq_export.latest_store import chunks, to_item
from seq_export.layout import DEFAULT_SOURCE
from seq_export.models import ScoreRecord, validate_record

MAX_BATCH_ATTEMPTS = 8
UPDATED_AT = "2026-01-01T00:00:00.000Z"


def day_records(day: str, subusers: int) -> list[ScoreRecord]:
    """The simulator's day as our exporter reads it: the same records, validated the same way."""
    scenario = Scenario(subusers=subusers)
    return [
        validate_record(subuser_record(day, i, scenario), source=DEFAULT_SOURCE, day=day, where="floor")
        for i in range(subusers)
    ]


def day_items(day: str, subusers: int) -> list[dict[str, Any]]:
    """The items our exporter writes for the day (scored subusers only)."""
    return [to_item(record, UPDATED_AT) for record in day_records(day, subusers) if record.eligible]


def write_all(client: Any, table: str, items: Sequence[dict[str, Any]], workers: int) -> dict[str, int]:
    def put(chunk: Sequence[dict[str, Any]]) -> int:
        pending: list[Any] = [{"PutRequest": {"Item": item}} for item in chunk]
        for calls in range(1, MAX_BATCH_ATTEMPTS + 1):
            pending = client.batch_write_item(RequestItems={table: pending}).get("UnprocessedItems", {}).get(table, [])
            if not pending:
                return calls
        raise RuntimeError(f"{len(pending)} items still unprocessed after {MAX_BATCH_ATTEMPTS} tries")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return {"items": len(items), "calls": sum(pool.map(put, chunks(items)))}


@child_command(__doc__)
@click.argument("part", type=click.Choice(["fetch", "write", "s3"]))
def main(out: str, part: str) -> int:
    spec = Spec.from_env()
    config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=max(10, spec.workers))
    if part == "fetch":

        def fetch() -> dict[str, int]:
            records = [len(page["result"]) for page in pages(spec, json.loads)]
            return {"pages": len(records), "records": sum(records)}

        return measure_job(out, fetch)
    if part == "write":
        client = boto3.client("dynamodb", config=config)
        items = day_items(spec.day, spec.subusers)
        return measure_job(out, lambda: write_all(client, spec.settings.latest_scores_table, items, spec.workers))
    s3 = boto3.client("s3", config=config)
    body = record_codec.encode(day_records(spec.day, spec.subusers), UPDATED_AT)

    def put() -> dict[str, int]:
        s3.put_object(Bucket=spec.settings.scores_bucket, Key=spec.key, Body=body)
        return {"bytes": len(body)}

    return measure_job(out, put)


if __name__ == "__main__":
    main()
