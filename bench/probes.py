"""What the driver measures through a ``Bench``: each contender at one N, run in its fresh process
and checked for its whole job; the guarantee probe (newest day wins, whatever the order);
moto's own capacity answers; and the cold start, handler against bare, with the handler's
imports by time.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

from bench import dlt_pipeline
from bench.floors import day_items
from bench.processes import ROOT, Bench, Run
from bench.report import scored_count
from seq_export.layout import DEFAULT_PREFIX, DEFAULT_SOURCE, TABLE_KEY, day_key

#: What each contender runs: ``python -m`` these.
CONTENDERS = {
    "floor-fetch": ["bench.floors", "fetch"],
    "floor-write": ["bench.floors", "write"],
    "floor-s3": ["bench.floors", "s3"],
    "ours": ["bench.ours"],
    "ours-s3only": ["bench.ours", "--s3-only"],
    "naive": ["bench.naive_exporter"],
    "dlt": ["bench.dlt_pipeline"],
}

#: Contenders that run over a table already holding every subuser's day before (the daily steady state).
SEEDED = ("floor-write", "ours")

#: How far ahead the first of two concurrent exports starts: about its imports, so that it is
#: writing (and holds the lease) when the second one asks.
STAGGER_SECONDS = 1.5

#: What the guarantee probe keeps of our handler's answers.
ANSWER_KEYS = ("date", "status", "latest_written", "latest_kept_newer")


def run_contender(bench: Bench, n: int, contender: str, *, seed: bool = True) -> Run:
    bench.fresh_stack(n)
    if seed and contender in SEEDED:  # the day before, by the write floor (not timed): a daily run's table
        seeded = bench.measure(n, "seed", bench.spec(n, bench.older_day), CONTENDERS["floor-write"])
        if seeded.check or seeded.details.get("items") != scored_count(n):
            raise RuntimeError(f"seeding the table failed: {seeded.check or seeded.details}")
    spec = bench.spec(n)
    run = bench.measure(n, contender, spec, CONTENDERS[contender])
    if not run.check:
        run.ok, run.check = verify(bench, contender, n, run.details, day_key(DEFAULT_PREFIX, DEFAULT_SOURCE, spec.day))
    return run


def verify(bench: Bench, contender: str, n: int, details: dict[str, Any], key: str) -> tuple[bool, str]:
    """Whether a contender did its whole job: what it read, or what it wrote to S3 and DynamoDB."""
    if contender == "floor-fetch":
        return details.get("records") == n, f"records {details.get('records')}/{n}"
    if contender == "dlt":
        data = [k for k in bench.keys_under(f"{dlt_pipeline.DATASET}/{dlt_pipeline.TABLE}/") if k.endswith(".jsonl")]
        lines = sum(bench.object_lines(k)[0] for k in data)
        return lines == n, f"lines {lines}/{n} in {len(data)} data file(s)"
    if contender == "floor-s3":
        lines, size = bench.object_lines(key)
        return size == details.get("bytes") and lines == n, f"bytes {size}, lines {lines}/{n}"
    items, want = bench.item_count(), 0 if contender == "ours-s3only" else scored_count(n)
    if contender == "floor-write":
        return items == want, f"items {items}/{want}"
    answer = details.get("answer", {})  # ours names the key it wrote; the naive script writes the day's key
    lines, size = bench.object_lines(answer.get("s3_key") or key)
    figures = f"lines {lines}/{n} ({size} bytes); items {items}/{want}"
    if not answer:
        return lines == n and items == want, figures
    return answer.get("status") == "exported" and lines == n and items == want, f"{answer.get('status')}; {figures}"


def guarantee_probe(bench: Bench, n: int) -> dict[str, Any]:
    """Newest day wins: sequential days, a backfill after a newer day, two days at once."""
    scored = scored_count(n)
    newer, older = bench.day, bench.older_day
    probe: dict[str, Any] = {"n": n, "newer": newer, "older": older}

    def ours(day: str) -> list[str]:
        return ["bench.ours", "--event", json.dumps({"date": day})]

    # a. the older day, then the newer one over it: the newer one's cost is the steady state
    bench.fresh_stack(n)
    probe["first_day"] = _summary(bench.measure(n, "ours", bench.spec(n, older), ours(older)))
    probe["steady_state"] = _summary(bench.measure(n, "ours", bench.spec(n), ours(newer)))
    # b. the older day again (a backfill): the conditional path must keep every newer score
    backfill = bench.measure(n, "ours", bench.spec(n, older), ours(older))
    probe["backfill"] = _summary(backfill)
    dates = list(bench.table_dates().values())
    kept = backfill.details.get("answer", {}).get("latest_kept_newer")
    probe["backfill_ok"] = dates.count(newer) == len(dates) == scored and kept == scored
    probe["backfill_check"] = f"{dates.count(newer)}/{scored} items hold {newer}; kept_newer {kept}"
    # c. both days at once: started together, and each one a little ahead (so that it holds the lease)
    probe["concurrent"] = []
    for first, second, ahead in ((older, newer, 0.0), (older, newer, STAGGER_SECONDS), (newer, older, STAGGER_SECONDS)):
        bench.fresh_stack(n)
        bench.reset_counters()
        started = [bench.start(f"concurrent-{first}", bench.spec(n, first), ours(first))]
        time.sleep(ahead)
        started.append(bench.start(f"concurrent-{second}", bench.spec(n, second), ours(second)))
        children = [child.wait() for child in started]
        dates = list(bench.table_dates().values())
        answers = [child.report.get("details", {}).get("answer", {}) for child in children]
        probe["concurrent"].append(
            {
                "started_first": first,
                "ahead_s": ahead,
                "exit_codes": [child.code for child in children],
                "answers": [{k: answer.get(k) for k in ANSWER_KEYS} for answer in answers],
                "items_newest": dates.count(newer),
                "items": len(dates),
                "ok": all(child.code == 0 for child in children) and dates.count(newer) == len(dates) == scored,
            }
        )
    # d. the contrast: plain unconditional batch writes, newer day then older day
    bench.fresh_stack(n)
    for day in (newer, older):
        bench.measure(n, "floor-write", bench.spec(n, day), CONTENDERS["floor-write"])
    probe["plain_batch_overwritten"] = list(bench.table_dates().values()).count(older)
    probe["ok"] = probe["backfill_ok"] and all(c["ok"] for c in probe["concurrent"])
    return probe


def _summary(run: Run) -> dict[str, Any]:
    answer = run.details.get("answer", {})
    ok = run.check == "" and answer.get("status") == "exported"
    figures = {"wall_s": run.wall_s, "cpu_s": run.cpu_s, "aws_calls": run.aws_calls, "dynamodb": run.dynamodb}
    return {"ok": ok, **{k: answer.get(k) for k in ANSWER_KEYS}, **figures}


def moto_capacity_probe(bench: Bench) -> dict[str, Any]:
    """What moto answers to ReturnConsumedCapacity for writes of our shape (AWS rules differ)."""
    bench.fresh_stack(25)
    table, items = bench.resources.table, day_items(bench.day, 28)[:25]
    batch = bench.dynamodb.batch_write_item(
        RequestItems={table: [{"PutRequest": {"Item": item}} for item in items]}, ReturnConsumedCapacity="TOTAL"
    )
    put = bench.dynamodb.put_item(TableName=table, Item=items[0], ReturnConsumedCapacity="TOTAL")
    update = bench.dynamodb.update_item(
        TableName=table,
        Key={TABLE_KEY: {"S": "#probe"}},
        UpdateExpression="SET newest_date = :d",
        ExpressionAttributeValues={":d": {"S": bench.day}},
        ReturnConsumedCapacity="TOTAL",
    )
    get = bench.dynamodb.get_item(TableName=table, Key={TABLE_KEY: items[0][TABLE_KEY]}, ReturnConsumedCapacity="TOTAL")
    return {
        "batch_write_25_items": batch.get("ConsumedCapacity"),
        "put_item": put.get("ConsumedCapacity"),
        "update_item": update.get("ConsumedCapacity"),
        "get_item": get.get("ConsumedCapacity"),
    }


def cold_start(bench: Bench, repeats: int) -> dict[str, Any]:
    """Pairs of fresh processes, handler and bare, in alternating order; the ratio is per pair."""
    bench.fresh_stack(1)
    spec = bench.spec(1)
    samples: dict[str, list[dict[str, Any]]] = {"handler": [], "bare": []}
    ratios: list[float] = []
    for round_number in range(repeats + 1):  # round 0 warms the page cache and bytecode
        pair: dict[str, dict[str, Any]] = {}
        for mode in ("bare", "handler") if round_number % 2 else ("handler", "bare"):
            child = bench.start(f"cold-{mode}", spec, ["bench.cold_start", mode]).wait()
            if child.code != 0:
                raise RuntimeError(f"cold start ({mode}) failed; log {child.log.name}")
            pair[mode] = {**child.report, "process_wall_s": child.wall_s}
        if round_number:
            for mode, sample in pair.items():
                samples[mode].append(sample)
            ratios.append(pair["handler"]["total_s"] / pair["bare"]["total_s"])
    keys = ("total_s", "import_s", "clients_s", "cpu_s", "maxrss_mib", "process_wall_s")
    medians = {mode: {key: statistics.median(s[key] for s in runs) for key in keys} for mode, runs in samples.items()}
    return {
        "repeats": repeats,
        "median": medians,
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
        "samples": samples,
        "imports": import_breakdown(bench.child_env(spec)),
    }


def import_breakdown(env: dict[str, str], top: int = 12) -> list[dict[str, Any]]:
    """The handler's direct imports by cumulative time (``python -X importtime``)."""
    command = [sys.executable, "-X", "importtime", "-c", "import seq_export.handler"]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=120, check=False)  # noqa: S603
    rows: list[tuple[int, int, str]] = []
    for line in completed.stderr.decode().splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            _, cumulative, name = line[len("import time:") :].split("|")
            rows.append(((len(name) - len(name.lstrip())) // 2, int(cumulative), name.strip()))
    handler_at = next((i for i, row in enumerate(rows) if row[2] == "seq_export.handler"), None)
    if handler_at is None:
        return []
    depth = rows[handler_at][0]
    children: list[dict[str, Any]] = []
    for row_depth, microseconds, module in reversed(rows[:handler_at]):
        if row_depth <= depth:
            break
        if row_depth == depth + 1:
            children.append({"module": module, "cumulative_ms": microseconds / 1000})
    children.sort(key=lambda c: -c["cumulative_ms"])
    return [{"module": "seq_export.handler", "cumulative_ms": rows[handler_at][1] / 1000}, *children[:top]]
