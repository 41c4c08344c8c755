"""``make bench``: the benchmark of issue 6, from services to the printed table and the plot.

1. moto (server mode, with the AWS call counter) and the SEQ simulator (with a per-answer
   latency, default 100 ms) start in processes of their own, on free ports of 127.0.0.1;
2. for every N and every contender, moto is reset and the stack's resources created anew,
   then the contender runs in a fresh child process: the floors (fetch alone, DynamoDB writes
   alone, one S3 put alone), our exporter through the real handler (and its S3 part alone),
   the naive script and dlt. Each child measures its job; the driver adds the child's
   rusage, the SendGrid requests counted at the simulator and the AWS calls and DynamoDB
   capacity counted at moto, and checks what each one wrote;
3. a guarantee probe (the smallest N): the newest day still wins when two days export at
   once, the backfill (conditional) path's cost, the steady-state capacity of a second day;
4. cold start: fresh processes importing our handler and building its clients, against bare
   boto3 + requests with the same clients;
5. the table, pairwise ratios and each target of the issue as MET / NOT MET, printed and
   written to bench/results/latest.md, with bench/results/bench.png and latest.json.

Everything is bounded: page loops, child time limits, the number of runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import boto3
import requests

from bench.common import SPEC_VARIABLE, Spec, scored_count
from bench.report import Report, render_markdown, write_plot
from local.stack import AWS_TEST_ENV, Resources, create_resources, new_api_key, patched_environ
from seq_export.latest_store import CONTROL_KEY

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_SIZES = (1_000, 10_000, 100_000)
CONTENDERS = ("floor-fetch", "floor-write", "floor-s3", "ours", "ours-s3only", "naive", "dlt")
CHILD_TIMEOUT_SECONDS = 3600.0
SERVICE_START_SECONDS = 60.0
#: How far ahead the first of two concurrent exports starts: about its imports, so that it is
#: writing (and holds the lease) when the second one asks.
STAGGER_SECONDS = 1.5


@dataclass
class Run:
    """One contender at one N: the child's own figures and what the services counted."""

    n: int
    contender: str
    ok: bool = False
    check: str = ""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    maxrss_mib: float = 0.0
    process_wall_s: float = 0.0
    process_cpu_s: float = 0.0
    sendgrid_requests: int = 0
    aws_calls: dict[str, int] = field(default_factory=dict)
    aws_errors: dict[str, int] = field(default_factory=dict)
    dynamodb: dict[str, Any] = field(default_factory=dict)
    moto_cpu_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChildResult:
    code: int
    wall_s: float
    cpu_s: float
    report: dict[str, Any]
    log: str


# -- processes -----------------------------------------------------------------------------
class Service:
    """A child process that prints one JSON line when ready and serves until stdin closes."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self._log = log.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.info = self._announcement()

    def _announcement(self) -> dict[str, Any]:
        stdout = self.process.stdout
        if stdout is None:
            raise RuntimeError("a service needs its standard output piped")
        box: list[bytes] = []
        reader = threading.Thread(target=lambda: box.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(SERVICE_START_SECONDS)
        if not box or not box[0]:
            self.stop()
            raise RuntimeError(f"service {self.process.args!r} did not start; see {self._log.name}")
        info: dict[str, Any] = json.loads(box[0])
        return info

    def stop(self) -> None:
        if self.process.poll() is None:
            if self.process.stdin is not None:
                self.process.stdin.close()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self._log.close()


def start_child(args: Sequence[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
    )


def reap(process: subprocess.Popen[bytes], started: float, timeout: float = CHILD_TIMEOUT_SECONDS) -> ChildResult:
    """Wait for one child with ``os.wait4``: its own CPU time, not the services'."""
    killer = threading.Timer(timeout, process.kill)
    killer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        killer.cancel()
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return ChildResult(
        code=process.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,  # (ru_maxrss is not used: a child inherits the parent's)
        report={},
        log="",
    )


# -- the benchmark --------------------------------------------------------------------------
class Bench:
    def __init__(self, latency: float, workdir: Path, workers: int) -> None:
        self.latency = latency
        self.workdir = workdir
        self.workers = workers
        self.api_key = new_api_key()
        self.base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BENCH_", "POWERTOOLS_"))}
        self.moto: Service | None = None
        self.seq: Service | None = None
        self._resources: Resources | None = None
        self.http = requests.Session()
        self.subusers = 0
        self.day = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
        self.older_day = (datetime.now(UTC).date() - timedelta(days=2)).isoformat()
        self._log_number = 0

    # services
    def start(self) -> None:
        self.moto = Service(["-m", "bench.services", "moto"], self.base_env, self.workdir / "moto.log")
        self.seq = Service(
            ["-m", "bench.services", "seq", "--latency", str(self.latency), "--api-key", self.api_key],
            self.base_env,
            self.workdir / "seq.log",
        )

    def stop(self) -> None:
        for service in (self.seq, self.moto):
            if service is not None:
                service.stop()

    @property
    def endpoint(self) -> str:
        if self.moto is None:
            raise RuntimeError("start() first")
        return str(self.moto.info["endpoint"])

    @property
    def seq_url(self) -> str:
        if self.seq is None:
            raise RuntimeError("start() first")
        return str(self.seq.info["url"])

    @property
    def resources(self) -> Resources:
        if self._resources is None:
            raise RuntimeError("fresh_stack() first")
        return self._resources

    @contextmanager
    def aws(self) -> Iterator[boto3.session.Session]:
        with patched_environ({**AWS_TEST_ENV, "AWS_ENDPOINT_URL": self.endpoint}):
            yield boto3.session.Session()

    def fresh_stack(self, subusers: int) -> Resources:
        """moto emptied, resources created again, the counter told the tables' indexes."""
        self.http.post(f"{self.endpoint}/moto-api/reset", timeout=30).raise_for_status()
        self.http.post(f"{self.endpoint}/__bench/reset", params={"forget": "1"}, timeout=30).raise_for_status()
        with self.aws() as session:
            self._resources = create_resources(session, self.api_key)
            dynamodb = session.client("dynamodb")
            tables = {}
            for name in (self._resources.table, self._resources.idempotency_table):
                description = dynamodb.describe_table(TableName=name)["Table"]
                indexes: list[dict[str, Any]] = [
                    {
                        "name": index["IndexName"],
                        "keys": [k["AttributeName"] for k in index["KeySchema"]],
                        "projection": index["Projection"]["ProjectionType"],
                        "included": index["Projection"].get("NonKeyAttributes", []),
                    }
                    for index in description.get("GlobalSecondaryIndexes", [])
                ]
                # what the same index would cost with projection KEYS_ONLY (tallied apart)
                indexes += [
                    {**index, "name": f"{index['name']} as KEYS_ONLY", "projection": "KEYS_ONLY", "what_if": True}
                    for index in indexes
                    if index["projection"] != "KEYS_ONLY"
                ]
                tables[name] = {"keys": [k["AttributeName"] for k in description["KeySchema"]], "indexes": indexes}
        self.http.post(f"{self.endpoint}/__bench/tables", json=tables, timeout=30).raise_for_status()
        self.subusers = subusers
        return self._resources

    def reset_counters(self) -> float:
        """Zero the counts at moto and the simulator; returns moto's CPU seconds so far."""
        self.http.post(f"{self.endpoint}/__bench/reset", timeout=30).raise_for_status()
        self.http.post(
            f"{self.seq_url}/__bench/reset", params={"subusers": self.subusers}, timeout=30
        ).raise_for_status()
        return float(self.http.get(f"{self.endpoint}/__bench/calls", timeout=30).json()["server_cpu_s"])

    def counters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        aws = self.http.get(f"{self.endpoint}/__bench/calls", timeout=30).json()
        seq = self.http.get(f"{self.seq_url}/__bench/stats", timeout=30).json()
        return aws, seq

    def child_env(self, spec: Spec) -> dict[str, str]:
        return {
            **self.base_env,
            **AWS_TEST_ENV,
            "AWS_ENDPOINT_URL": self.endpoint,
            **self.resources.env(self.seq_url),
            SPEC_VARIABLE: spec.to_json(),
        }

    def spec(self, n: int, **changes: Any) -> Spec:
        values: dict[str, Any] = {
            "day": self.day,
            "subusers": n,
            "api_base_url": self.seq_url,
            "api_key": self.api_key,
            "aws_endpoint": self.endpoint,
            "bucket": self.resources.bucket,
            "table": self.resources.table,
            "key": f"bench/{n}/object.jsonl",
            "workers": self.workers,
        }
        values.update(changes)
        return Spec(**values)

    def _log(self, name: str) -> IO[bytes]:
        self._log_number += 1
        return (self.workdir / f"{self._log_number:03d}-{name}.log").open("wb")

    def launch(
        self, name: str, args: Sequence[str], spec: Spec
    ) -> tuple[subprocess.Popen[bytes], float, Path, IO[bytes]]:
        out = self.workdir / f"{self._log_number + 1:03d}-{name}.json"
        log = self._log(name)
        started = time.perf_counter()
        process = start_child([*args, "--out", str(out)], self.child_env(spec), log)
        return process, started, out, log

    def finish(self, launched: tuple[subprocess.Popen[bytes], float, Path, IO[bytes]]) -> ChildResult:
        process, started, out, log = launched
        result = reap(process, started)
        log.close()
        result.log = log.name
        if result.code == 0 and out.exists():
            result.report = json.loads(out.read_text())
        return result

    def measure(self, n: int, contender: str, spec: Spec, args: Sequence[str]) -> Run:
        moto_cpu_before = self.reset_counters()
        child = self.finish(self.launch(contender, args, spec))
        aws, seq = self.counters()
        run = Run(n=n, contender=contender)
        run.process_wall_s, run.process_cpu_s = child.wall_s, child.cpu_s
        run.sendgrid_requests = int(seq["requests"])
        run.aws_calls = dict(sorted(aws["calls"].items()))
        run.aws_errors = aws["errors"]
        run.dynamodb = aws["dynamodb"]
        run.moto_cpu_s = float(aws["server_cpu_s"]) - moto_cpu_before
        if child.code != 0 or not child.report:
            run.check = f"child exited {child.code}; log {child.log}"
            return run
        report = child.report
        run.wall_s, run.cpu_s, run.maxrss_mib = report["wall_s"], report["cpu_s"], report["maxrss_mib"]
        run.details = report["details"]
        return run

    # verification (after the counters were read, so it is not counted)
    def object_lines(self, key: str) -> tuple[int, int]:
        with self.aws() as session:
            body = session.client("s3").get_object(Bucket=self.resources.bucket, Key=key)["Body"].read()
        return body.count(b"\n"), len(body)

    def keys_under(self, prefix: str) -> list[str]:
        with self.aws() as session:
            pages = (
                session.client("s3")
                .get_paginator("list_objects_v2")
                .paginate(Bucket=self.resources.bucket, Prefix=prefix, PaginationConfig={"MaxItems": 10_000})
            )
            return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def table_dates(self) -> dict[str, str]:
        """user_id -> date of every subuser item (bounded by the sizes the probe uses)."""
        dates: dict[str, str] = {}
        with self.aws() as session:
            pages = (
                session.client("dynamodb")
                .get_paginator("scan")
                .paginate(
                    TableName=self.resources.table,
                    ProjectionExpression="user_id, #d",
                    ExpressionAttributeNames={"#d": "date"},
                    PaginationConfig={"MaxItems": 2_000_000},
                )
            )
            for page in pages:
                for item in page["Items"]:
                    if "date" in item and not item["user_id"]["S"].startswith("#"):
                        dates[item["user_id"]["S"]] = item["date"]["S"]
        return dates

    def item_count(self) -> int:
        """Subuser items in the latest-score table (moto's live ItemCount, less the control item)."""
        with self.aws() as session:
            dynamodb = session.client("dynamodb")
            count = int(dynamodb.describe_table(TableName=self.resources.table)["Table"]["ItemCount"])
            control = dynamodb.get_item(TableName=self.resources.table, Key={"user_id": {"S": CONTROL_KEY}})
        return count - (1 if "Item" in control else 0)


# -- contenders -----------------------------------------------------------------------------
#: Contenders that run over a table already holding every subuser's day before (the daily steady state).
SEEDED = ("floor-write", "ours")


def seed_previous_day(bench: Bench, n: int) -> None:
    """Write the day before's items (the write floor, neither timed nor counted): a daily run's table."""
    seeded = bench.measure(n, "seed", bench.spec(n, day=bench.older_day), ["-m", "bench.floors", "write"])
    if seeded.check or seeded.details.get("items") != scored_count(n):
        raise RuntimeError(f"seeding the table failed: {seeded.check or seeded.details}")


def run_contender(bench: Bench, n: int, contender: str, *, seed: bool = True) -> Run:
    bench.fresh_stack(n)
    if seed and contender in SEEDED:
        seed_previous_day(bench, n)
    scored = scored_count(n)
    if contender == "floor-fetch":
        run = bench.measure(n, contender, bench.spec(n), ["-m", "bench.floors", "fetch"])
        run.ok = run.details.get("records") == n
        run.check = run.check or f"records {run.details.get('records')}/{n}"
    elif contender == "floor-write":
        run = bench.measure(n, contender, bench.spec(n), ["-m", "bench.floors", "write"])
        items = bench.item_count()
        run.ok = items == scored
        run.check = run.check or f"items {items}/{scored}"
    elif contender == "floor-s3":
        spec = bench.spec(n)
        run = bench.measure(n, contender, spec, ["-m", "bench.floors", "s3"])
        if not run.check:
            lines, written = bench.object_lines(spec.key)
            run.ok = written == run.details.get("bytes") and lines == n
            run.check = f"bytes {written}, lines {lines}/{n}"
    elif contender in ("ours", "ours-s3only"):
        args = ["-m", "bench.ours", *(["--s3-only"] if contender == "ours-s3only" else [])]
        run = bench.measure(n, contender, bench.spec(n), args)
        answer = run.details.get("answer", {})
        if not run.check:
            lines, size = bench.object_lines(answer.get("s3_key", ""))
            items = bench.item_count()
            want_items = scored if contender == "ours" else 0
            run.ok = answer.get("status") == "exported" and lines == n and items == want_items
            run.check = f"{answer.get('status')}; lines {lines}/{n} ({size} bytes); items {items}/{want_items}"
    elif contender == "naive":
        spec = bench.spec(n)
        run = bench.measure(n, contender, spec, ["-m", "bench.naive_exporter"])
        if not run.check:
            lines, _ = bench.object_lines(spec.key)
            items = bench.item_count()
            run.ok = lines == n and items == scored
            run.check = f"lines {lines}/{n}; items {items}/{scored}"
    elif contender == "dlt":
        run = bench.measure(n, contender, bench.spec(n), ["-m", "bench.dlt_pipeline"])
        if not run.check:
            data = [k for k in bench.keys_under("dlt/subuser_scores/") if k.endswith(".jsonl")]
            lines = sum(bench.object_lines(k)[0] for k in data)
            run.ok = lines == n
            run.check = f"lines {lines}/{n} in {len(data)} data file(s)"
    else:
        raise ValueError(contender)
    return run


# -- guarantee probe ------------------------------------------------------------------------
def guarantee_probe(bench: Bench, n: int) -> dict[str, Any]:
    """Newest day wins: sequential days, a backfill after a newer day, two days at once."""
    scored = scored_count(n)
    newer, older = bench.day, bench.older_day
    probe: dict[str, Any] = {"n": n, "newer": newer, "older": older}

    def ours(day: str) -> list[str]:
        return ["-m", "bench.ours", "--event", json.dumps({"date": day})]

    # a. the older day, then the newer one over it: the newer one's cost is the steady state
    bench.fresh_stack(n)
    first = bench.measure(n, "ours", bench.spec(n, day=older), ours(older))
    steady = bench.measure(n, "ours", bench.spec(n), ours(newer))
    probe["first_day"] = _summary(first)
    probe["steady_state"] = _summary(steady)
    # b. the older day again (a backfill): the conditional path must keep every newer score
    backfill = bench.measure(n, "ours", bench.spec(n, day=older), ours(older))
    probe["backfill"] = _summary(backfill)
    dates = bench.table_dates()
    kept = backfill.details.get("answer", {}).get("latest_kept_newer")
    probe["backfill_ok"] = all(d == newer for d in dates.values()) and len(dates) == scored and kept == scored
    probe["backfill_check"] = (
        f"{sum(d == newer for d in dates.values())}/{scored} items hold {newer}; kept_newer {kept}"
    )
    # c. both days at once: started together, and each one a little ahead (so that it holds the lease)
    concurrent: list[dict[str, Any]] = []
    for first_day, second_day, ahead in (
        (older, newer, 0.0),
        (older, newer, STAGGER_SECONDS),
        (newer, older, STAGGER_SECONDS),
    ):
        bench.fresh_stack(n)
        bench.reset_counters()
        launched = [bench.launch(f"concurrent-{first_day}", ours(first_day), bench.spec(n, day=first_day))]
        time.sleep(ahead)
        launched.append(bench.launch(f"concurrent-{second_day}", ours(second_day), bench.spec(n, day=second_day)))
        results = [bench.finish(item) for item in launched]
        dates = bench.table_dates()
        answers = [r.report.get("details", {}).get("answer", {}) for r in results]
        concurrent.append(
            {
                "started_first": first_day,
                "ahead_s": ahead,
                "exit_codes": [r.code for r in results],
                "answers": [
                    {k: a.get(k) for k in ("date", "status", "latest_written", "latest_kept_newer")} for a in answers
                ],
                "items_newest": sum(d == newer for d in dates.values()),
                "items": len(dates),
                "ok": all(r.code == 0 for r in results)
                and len(dates) == scored
                and all(d == newer for d in dates.values()),
            }
        )
    probe["concurrent"] = concurrent
    # d. the contrast: plain unconditional batch writes, newer day then older day
    bench.fresh_stack(n)
    bench.measure(n, "floor-write", bench.spec(n), ["-m", "bench.floors", "write"])
    bench.measure(n, "floor-write", bench.spec(n, day=older), ["-m", "bench.floors", "write"])
    dates = bench.table_dates()
    probe["plain_batch_overwritten"] = sum(d == older for d in dates.values())
    probe["ok"] = probe["backfill_ok"] and all(c["ok"] for c in concurrent)
    return probe


def _summary(run: Run) -> dict[str, Any]:
    answer = run.details.get("answer", {})
    return {
        "ok": run.check == "" and answer.get("status") == "exported",
        "date": answer.get("date"),
        "wall_s": run.wall_s,
        "cpu_s": run.cpu_s,
        "latest_written": answer.get("latest_written"),
        "latest_kept_newer": answer.get("latest_kept_newer"),
        "aws_calls": run.aws_calls,
        "dynamodb": run.dynamodb,
    }


# -- consumed capacity as moto reports it ---------------------------------------------------
def moto_capacity_probe(bench: Bench) -> dict[str, Any]:
    """What moto answers to ReturnConsumedCapacity for writes of our shape (AWS rules differ)."""
    from bench.floors import day_items  # noqa: PLC0415 - imports production code; only here

    resources = bench.fresh_stack(25)
    items = day_items(bench.day, 28, "2026-01-01T00:00:00.000Z")[:25]
    with bench.aws() as session:
        dynamodb = session.client("dynamodb")
        batch = dynamodb.batch_write_item(
            RequestItems={resources.table: [{"PutRequest": {"Item": item}} for item in items]},
            ReturnConsumedCapacity="TOTAL",
        )
        put = dynamodb.put_item(TableName=resources.table, Item=items[0], ReturnConsumedCapacity="TOTAL")
        update = dynamodb.update_item(
            TableName=resources.table,
            Key={"user_id": {"S": "#probe"}},
            UpdateExpression="SET newest_date = :d",
            ExpressionAttributeValues={":d": {"S": bench.day}},
            ReturnConsumedCapacity="TOTAL",
        )
        get = dynamodb.get_item(
            TableName=resources.table, Key={"user_id": items[0]["user_id"]}, ReturnConsumedCapacity="TOTAL"
        )
    return {
        "batch_write_25_items": batch.get("ConsumedCapacity"),
        "put_item": put.get("ConsumedCapacity"),
        "update_item": update.get("ConsumedCapacity"),
        "get_item": get.get("ConsumedCapacity"),
    }


# -- cold start -----------------------------------------------------------------------------
def cold_start(bench: Bench, repeats: int) -> dict[str, Any]:
    """Pairs of fresh processes, handler and bare, in alternating order; the ratio is per pair."""
    bench.fresh_stack(1)
    spec = bench.spec(1)
    samples: dict[str, list[dict[str, Any]]] = {"handler": [], "bare": []}
    ratios: list[float] = []
    for round_number in range(repeats + 1):  # round 0 warms the page cache and bytecode
        order = ("bare", "handler") if round_number % 2 else ("handler", "bare")
        pair: dict[str, dict[str, Any]] = {}
        for mode in order:
            child = bench.finish(bench.launch(f"cold-{mode}", ["-m", "bench.cold_start", mode], spec))
            if child.code != 0:
                raise RuntimeError(f"cold start ({mode}) failed; log {child.log}")
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
        "imports": import_breakdown(bench, spec),
    }


def import_breakdown(bench: Bench, spec: Spec, top: int = 12) -> list[dict[str, Any]]:
    """The handler's direct imports by cumulative time (``python -X importtime``)."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import seq_export.handler"],
        cwd=ROOT,
        env=bench.child_env(spec),
        capture_output=True,
        timeout=120,
        check=False,
    )
    rows: list[tuple[int, int, str]] = []
    for line in completed.stderr.decode().splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append((depth, int(cumulative), name.strip()))
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


# -- main -----------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    found = {"python": platform.python_version(), "cpus": str(os.cpu_count())}
    for name in ("boto3", "botocore", "moto", "requests", "aws-lambda-powertools", "dlt", "s3fs", "matplotlib"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def parse_sizes(text: str) -> list[int]:
    sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1 or sizes[-1] > 1_000_000:
        raise argparse.ArgumentTypeError("sizes must be between 1 and 1,000,000")
    return sizes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES), help="comma-separated N")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds before each SendGrid answer (0.1)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help=f"subset of {','.join(CONTENDERS)}")
    parser.add_argument("--workers", type=int, default=8, help="threads of the write floor (default 8, as our store)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each contender; the median is kept (1)")
    parser.add_argument(
        "--seed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run ours and the write floor over a table holding the day before (default; --no-seed: empty table)",
    )
    parser.add_argument("--cold-repeats", type=int, default=7, help="cold-start pairs of processes (default 7)")
    parser.add_argument("--probe-size", type=int, default=1000, help="N of the guarantee probe (default 1000; 0 skips)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory of latest.md, latest.json, bench.png")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is not met (default: report only)")
    args = parser.parse_args(argv)
    args.contenders = [c for c in args.contenders.split(",") if c]
    unknown = set(args.contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}")
    if not 0 <= args.latency <= 5:
        parser.error("--latency must be between 0 and 5 seconds")
    if not 1 <= args.workers <= 64 or not 0 <= args.cold_repeats <= 50 or not 1 <= args.repeat <= 9:
        parser.error("--workers must be 1..64, --cold-repeats 0..50 and --repeat 1..9")
    return args


def measure_all(args: argparse.Namespace, command: str) -> tuple[Report, list[str]]:
    """Start the services, run every contender at every N, the probes and the cold start."""
    started, started_at = time.perf_counter(), datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    runs: list[Run] = []
    failures: list[str] = []
    probe: dict[str, Any] = {}
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for stale in logs.glob("*.log"):
        stale.unlink()
    with tempfile.TemporaryDirectory(prefix="seq-bench-") as scratch:
        bench = Bench(args.latency, Path(scratch), args.workers)
        say = _printer()
        try:
            bench.start()
            say(f"moto {bench.endpoint}, SEQ simulator {bench.seq_url} (latency {args.latency * 1000:.0f} ms)")
            for n in args.sizes:
                for contender in args.contenders:
                    tries = [run_contender(bench, n, contender, seed=args.seed) for _ in range(args.repeat)]
                    run = sorted(tries, key=lambda t: (not t.ok, t.wall_s))[len(tries) // 2]
                    if len(tries) > 1:
                        run.details["repeats_wall_s"] = [t.wall_s for t in tries]
                        run.details["repeats_cpu_s"] = [t.cpu_s for t in tries]
                    runs.append(run)
                    verdict = "ok" if run.ok else "FAILED"
                    figures = f"{run.wall_s:8.2f} s wall {run.cpu_s:7.2f} s CPU"
                    say(f"N={n:>7} {contender:<12} {figures}  {verdict}: {run.check}")
                    if not run.ok:
                        failures.append(f"N={n} {contender}: {run.check}")
            if args.probe_size and "ours" in args.contenders:
                probe = guarantee_probe(bench, min(args.probe_size, max(args.sizes)))
                say(f"guarantee probe at N={probe['n']}: {'ok' if probe['ok'] else 'FAILED'}")
            capacity = moto_capacity_probe(bench)
            cold = cold_start(bench, args.cold_repeats) if args.cold_repeats > 0 else {}
            if cold:
                medians = cold["median"]
                handler, bare = medians["handler"]["total_s"], medians["bare"]["total_s"]
                say(f"cold start: handler {handler:.3f} s, bare {bare:.3f} s (medians)")
        finally:
            bench.stop()
            for item in Path(scratch).glob("*.log"):
                (logs / item.name).write_bytes(item.read_bytes()[-200_000:])
    report = Report(
        runs=[asdict(r) for r in runs],
        sizes=args.sizes,
        latency=args.latency,
        versions=versions(),
        probe=probe,
        capacity=capacity,
        cold=cold,
        elapsed_s=time.perf_counter() - started,
        started_at=started_at,
        command=command,
        seeded=args.seed,
    )
    return report, failures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])])
    report, failures = measure_all(args, command)
    markdown = render_markdown(report)
    print(markdown)
    (args.out / "latest.md").write_text(markdown)
    (args.out / "latest.json").write_text(json.dumps(asdict(report), indent=1, default=str))
    write_plot(report, args.out / "bench.png")
    print(f"wrote {args.out}/latest.md, bench.png and latest.json; {report.elapsed_s:.0f} s in all")
    if failures:
        print("FAILED runs:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 2
    if args.strict and not all(t.met for t in report.targets() if t.met is not None):
        return 1
    return 0


def _printer() -> Callable[[str], None]:
    started = time.perf_counter()

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {text}", file=sys.stderr, flush=True)

    return say


if __name__ == "__main__":
    sys.exit(main())
