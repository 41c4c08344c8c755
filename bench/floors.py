"""The floor: each part of the job done alone, with nothing else in the way.

``python -m bench.floors fetch|write|s3 --out FILE`` with ``BENCH_SPEC`` set.

* ``fetch``: every page of the day, one after the other (the cursor allows nothing else),
  with a plain ``requests.Session``; the body is parsed only to read the cursor.
* ``write``: the same DynamoDB BatchWriteItem calls our design makes for the day (the same
  items, 25 a call), issued from a bare ``ThreadPoolExecutor``; items are built before the
  clock starts. ``UnprocessedItems`` are sent again (a bounded number of times).
* ``s3``: one ``put_object`` of the day's object (the same lines); the body is built first.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import requests
from botocore.config import Config

from bench.common import MAX_PAGES, PAGE_SIZE, SCORES_PATH, Spec, Stopwatch, write_result
from local.seq_simulator import Scenario, subuser_record
from seq_export.latest_store import BATCH_LIMIT, to_item
from seq_export.models import validate_record

MAX_BATCH_ATTEMPTS = 8


def fetch_all(spec: Spec) -> dict[str, int]:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {spec.api_key}"}
    params: dict[str, str | int] = {"date": spec.day, "limit": PAGE_SIZE}
    pages = records = 0
    for _ in range(MAX_PAGES):
        response = session.get(spec.api_base_url + SCORES_PATH, params=params, headers=headers, timeout=30)
        response.raise_for_status()
        body = json.loads(response.content)
        pages += 1
        records += len(body["result"])
        after_key = (body.get("_metadata") or {}).get("next_params", {}).get("after_key")
        if not after_key:
            break
        params["after_key"] = after_key
    return {"pages": pages, "records": records}


def day_items(day: str, subusers: int, updated_at: str) -> list[dict[str, Any]]:
    """The items our exporter writes for the simulator's day (scored subusers only)."""
    scenario = Scenario(subusers=subusers)
    items = []
    for index in range(subusers):
        record = validate_record(subuser_record(day, index, scenario), day=day, where="floor")
        if record.eligible:
            items.append(to_item(record, updated_at))
    return items


def day_body(day: str, subusers: int, exported_at: str) -> bytes:
    """Our day's object, byte for byte the size the exporter writes (same lines, same format)."""
    scenario = Scenario(subusers=subusers)
    return "".join(
        validate_record(subuser_record(day, index, scenario), day=day, where="floor").to_json_line(exported_at)
        for index in range(subusers)
    ).encode()


def write_all(client: Any, table: str, items: Sequence[dict[str, Any]], workers: int) -> dict[str, int]:
    def put(chunk: Sequence[dict[str, Any]]) -> int:
        pending: list[Any] = [{"PutRequest": {"Item": item}} for item in chunk]
        for calls in range(1, MAX_BATCH_ATTEMPTS + 1):
            answer = client.batch_write_item(RequestItems={table: pending})
            pending = answer.get("UnprocessedItems", {}).get(table, [])
            if not pending:
                return calls
        raise RuntimeError(f"{len(pending)} items still unprocessed after {MAX_BATCH_ATTEMPTS} tries")

    chunks = [items[i : i + BATCH_LIMIT] for i in range(0, len(items), BATCH_LIMIT)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        calls = sum(pool.map(put, chunks))
    return {"items": len(items), "calls": calls}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floors", description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["fetch", "write", "s3"])
    parser.add_argument("--out", required=True, help="where to write the measurements (JSON)")
    args = parser.parse_args(argv)
    spec = Spec.from_env()
    config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=max(10, spec.workers))
    if args.part == "fetch":
        with Stopwatch() as watch:
            done = fetch_all(spec)
    elif args.part == "write":
        client = boto3.client("dynamodb", config=config)
        items = day_items(spec.day, spec.subusers, str(spec.extra.get("updated_at", "2026-01-01T00:00:00.000Z")))
        with Stopwatch() as watch:
            done = write_all(client, spec.table, items, spec.workers)
    else:
        s3 = boto3.client("s3", config=config)
        body = day_body(spec.day, spec.subusers, "2026-01-01T00:00:00.000Z")
        with Stopwatch() as watch:
            s3.put_object(Bucket=spec.bucket, Key=spec.key, Body=body)
        done = {"bytes": len(body)}
    write_result(args.out, watch, **done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
