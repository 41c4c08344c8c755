"""``make bench``: the performance benchmark, from services to the printed table and the plot.

moto (with the AWS call counter) and the SEQ simulator (with a per-page latency) run in processes
of their own. For every N and contender, moto is reset and the stack's resources created anew,
and the contender runs in a fresh child process that measures its job; the driver adds the
child's rusage and what the services counted, and checks what was written. Then the guarantee
probe, moto's own capacity answers, the cold start, and the report (table, pairwise ratios, each
performance target MET / NOT MET): bench/README.md says what runs where and how to read it.
Everything is bounded: page loops, child time limits, waits for the services, the number of runs.
"""

from __future__ import annotations

import json
import os
import platform
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import boto3
import click

from bench import dlt_pipeline
from bench.common import SPEC_VARIABLE, Spec
from bench.floors import day_items
from bench.report import Report, render_markdown, scored_count, write_plot
from local.stack import AWS_TEST_ENV, create_resources, new_api_key, reset_moto
from seq_export.dates import days_between, yesterday_utc
from seq_export.layout import CONTROL_KEY, DEFAULT_PREFIX, DEFAULT_SOURCE, TABLE_KEY, day_key

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_SIZES = (1_000, 10_000, 100_000)
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
CHILD_TIMEOUT_SECONDS = 3600.0
SERVICE_TIMEOUT_SECONDS = 60.0
#: How far ahead the first of two concurrent exports starts: about its imports, so that it is
#: writing (and holds the lease) when the second one asks.
STAGGER_SECONDS = 1.5
#: What the guarantee probe keeps of our handler's answers.
ANSWER_KEYS = ("date", "status", "latest_written", "latest_kept_newer")
STARTED = time.perf_counter()


def say(text: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f} s] {text}", file=sys.stderr, flush=True)


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


# -- processes -----------------------------------------------------------------------------
def python_m(args: Sequence[str], env: dict[str, str], log: Path, *, piped: bool = False) -> subprocess.Popen[bytes]:
    """``python -m ARGS`` from the repository root; its output to ``log`` (only stderr when ``piped``)."""
    pipe = subprocess.PIPE if piped else None
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", *args],
            cwd=ROOT,
            env=env,
            stdin=pipe or subprocess.DEVNULL,
            stdout=pipe or out,
            stderr=out,
        )


class Service:
    """``python -m bench.services ...``: one JSON line when ready, then one per command sent."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.process = python_m(["bench.services", *args], env, log, piped=True)
        self.url = str(self.ask("")["url"])

    def ask(self, command: str) -> dict[str, Any]:
        """Send a command (none: read the announcement) and read the answer, waiting a bounded time."""
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("a service needs its standard input and output piped")
        if command:
            stdin.write(command.encode() + b"\n")
            stdin.flush()
        ready, _, _ = select.select([stdout], [], [], SERVICE_TIMEOUT_SECONDS)
        line = stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError(f"service {self.process.args!r} did not answer {command!r}; see {self.log.name}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            self.process.stdin.close()  # the service returns when its standard input closes
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


class Child:
    """A contender's fresh process, reaped with ``os.wait4``: its own CPU time, not the services'."""

    def __init__(self, module: Sequence[str], env: dict[str, str], stem: Path) -> None:
        self.out, self.log = Path(f"{stem}.json"), Path(f"{stem}.log")
        self.code, self.wall_s, self.cpu_s = -1, 0.0, 0.0
        self.report: dict[str, Any] = {}
        self.started = time.perf_counter()
        self.process = python_m([*module, "--out", str(self.out)], env, self.log)

    def wait(self) -> Child:
        killer = threading.Timer(CHILD_TIMEOUT_SECONDS, self.process.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(self.process.pid, 0)
        finally:
            killer.cancel()
        self.wall_s = time.perf_counter() - self.started
        self.code = self.process.returncode = os.waitstatus_to_exitcode(status)
        self.cpu_s = usage.ru_utime + usage.ru_stime  # (not ru_maxrss: a child inherits the parent's)
        if self.code == 0 and self.out.exists():
            self.report = json.loads(self.out.read_text())
        return self


# -- the benchmark --------------------------------------------------------------------------
class Bench:
    """The two services, the stack's resources on moto, and the contenders' processes."""

    def __init__(self, latency: float, workdir: Path, workers: int) -> None:
        self.workdir, self.workers, self.children, self.subusers = workdir, workers, 0, 0
        self.api_key = new_api_key()
        self.base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BENCH_", "POWERTOOLS_"))}
        self.moto = Service(["moto"], self.base_env, workdir / "moto.log")
        seq_args = ["seq", "--latency", str(latency), "--api-key", self.api_key]
        self.seq = Service(seq_args, self.base_env, workdir / "seq.log")
        self.aws_env = {**AWS_TEST_ENV, "AWS_ENDPOINT_URL": self.moto.url}
        os.environ.update(self.aws_env)  # this process's own clients reach moto too
        self.session = boto3.session.Session()
        self.s3, self.dynamodb = self.session.client("s3"), self.session.client("dynamodb")
        yesterday = yesterday_utc()
        self.older_day, self.day = days_between(yesterday - timedelta(days=1), yesterday)
        self.fresh_stack(0)

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.seq.stop()
        self.moto.stop()

    def fresh_stack(self, subusers: int) -> None:
        """moto emptied, resources created again, the counter told the tables' keys and indexes."""
        reset_moto(self.moto.url)
        self.moto.ask("forget")
        self.resources = create_resources(self.session, self.api_key)
        names = (self.resources.table, self.resources.idempotency_table)
        tables = {name: self.dynamodb.describe_table(TableName=name)["Table"] for name in names}
        self.moto.ask("tables " + json.dumps(tables, default=str))
        self.subusers = subusers

    def reset_counters(self) -> float:
        """Zero the counts at moto and the simulator; returns moto's CPU seconds so far."""
        self.seq.ask(f"reset {self.subusers}")
        return float(self.moto.ask("reset")["server_cpu_s"])

    def child_env(self, spec: Spec) -> dict[str, str]:
        function_env = self.resources.env(self.seq.url)
        return {**self.base_env, **self.aws_env, **function_env, SPEC_VARIABLE: spec.to_json()}

    def spec(self, n: int, day: str = "") -> Spec:
        return Spec(day=day or self.day, subusers=n, api_key=self.api_key, workers=self.workers)

    def start(self, name: str, spec: Spec, module: Sequence[str]) -> Child:
        self.children += 1
        return Child(module, self.child_env(spec), self.workdir / f"{self.children:03d}-{name}")

    def measure(self, n: int, contender: str, spec: Spec, module: Sequence[str]) -> Run:
        moto_cpu_before = self.reset_counters()
        child = self.start(contender, spec, module).wait()
        aws, seq = self.moto.ask("calls"), self.seq.ask("stats")
        run = Run(n=n, contender=contender, process_wall_s=child.wall_s, process_cpu_s=child.cpu_s)
        run.sendgrid_requests, run.aws_calls = int(seq["requests"]), dict(sorted(aws["calls"].items()))
        run.aws_errors, run.dynamodb = aws["errors"], aws["dynamodb"]
        run.moto_cpu_s = float(aws["server_cpu_s"]) - moto_cpu_before
        if child.code != 0 or not child.report:
            run.check = f"child exited {child.code}; log {child.log.name}"
        else:
            run.wall_s, run.cpu_s = child.report["wall_s"], child.report["cpu_s"]
            run.maxrss_mib, run.details = child.report["maxrss_mib"], child.report["details"]
        return run

    # verification (after the counters were read, so it is not counted)
    def object_lines(self, key: str) -> tuple[int, int]:
        """Lines and bytes of an object; none if it is missing."""
        try:
            body = self.s3.get_object(Bucket=self.resources.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return 0, 0
        return body.count(b"\n"), len(body)

    def keys_under(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.resources.bucket, Prefix=prefix, PaginationConfig={"MaxItems": 10_000}
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def table_dates(self) -> dict[str, str]:
        """user_id -> date of every subuser item (the control item has no date)."""
        pages = self.dynamodb.get_paginator("scan").paginate(
            TableName=self.resources.table,
            ProjectionExpression="#k, #d",
            ExpressionAttributeNames={"#k": TABLE_KEY, "#d": "date"},
            PaginationConfig={"MaxItems": 2_000_000},
        )
        return {item[TABLE_KEY]["S"]: item["date"]["S"] for page in pages for item in page["Items"] if "date" in item}

    def item_count(self) -> int:
        """Subuser items in the latest-score table (moto's live ItemCount, less the control item)."""
        table = self.resources.table
        count = self.dynamodb.describe_table(TableName=table)["Table"].get("ItemCount", 0)
        control = self.dynamodb.get_item(TableName=table, Key={TABLE_KEY: {"S": CONTROL_KEY}})
        return count - int("Item" in control)


# -- contenders -----------------------------------------------------------------------------
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


# -- guarantee probe ------------------------------------------------------------------------
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


# -- cold start -----------------------------------------------------------------------------
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


# -- main -----------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "cpus": str(os.cpu_count())}
    for name in ("boto3", "botocore", "moto", "requests", "aws-lambda-powertools", "dlt", "s3fs", "matplotlib"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


@dataclass(frozen=True)
class Options:
    """The command line, every value checked by Click before anything starts."""

    sizes: list[int]
    latency: float
    contenders: list[str]
    workers: int
    repeat: int
    seed: bool
    cold_repeats: int
    probe_size: int
    out: Path
    strict: bool


def parse_sizes(_ctx: click.Context, _param: click.Parameter, text: str) -> list[int]:
    try:
        sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of whole numbers") from None
    if not sizes or sizes[0] < 1 or sizes[-1] > 1_000_000:
        raise click.BadParameter("sizes must be between 1 and 1,000,000")
    return sizes


def parse_contenders(_ctx: click.Context, _param: click.Parameter, text: str) -> list[str]:
    contenders = [c for c in text.split(",") if c]
    unknown = set(contenders) - set(CONTENDERS)
    if unknown:
        raise click.BadParameter(f"unknown contenders {sorted(unknown)}")
    return contenders


@click.command(help=(__doc__ or "").split("\n\n")[0])
@click.option(
    "--sizes",
    default=",".join(map(str, DEFAULT_SIZES)),
    show_default=True,
    callback=parse_sizes,
    metavar="N,...",
    help="Subusers of each measured day, comma-separated.",
)
@click.option(
    "--latency",
    type=click.FloatRange(0, 5),
    default=0.1,
    show_default=True,
    help="Seconds before each SendGrid answer.",
)
@click.option(
    "--contenders",
    default=",".join(CONTENDERS),
    callback=parse_contenders,
    metavar="NAME,...",
    help=f"A subset of {','.join(CONTENDERS)} (default: all).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Threads of the write floor (as our store).",
)
@click.option(
    "--repeat",
    type=click.IntRange(1, 9),
    default=1,
    show_default=True,
    help="Runs of each contender; the median is kept.",
)
@click.option(
    "--seed/--no-seed",
    default=True,
    show_default=True,
    help="Run ours and the write floor over a table holding the day before (--no-seed: empty).",
)
@click.option(
    "--cold-repeats", type=click.IntRange(0, 50), default=7, show_default=True, help="Cold-start pairs of processes."
)
@click.option(
    "--probe-size",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="N of the guarantee probe (0 skips).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=RESULTS,
    show_default="bench/results",
    help="Directory of latest.md, latest.json, bench.png.",
)
@click.option("--strict", is_flag=True, help="Exit 1 when a target is not met (default: report only).")
def cli(**options: Any) -> None:
    sys.exit(main(Options(**options)))


def measure_all(args: Options, bench: Bench) -> dict[str, Any]:
    """Every contender at every N (the median of ``--repeat`` runs), the probes, the cold start."""
    say(f"moto {bench.moto.url}, SEQ simulator {bench.seq.url} (latency {args.latency * 1000:.0f} ms)")
    runs: list[Run] = []
    for n in args.sizes:
        for contender in args.contenders:
            tries = [run_contender(bench, n, contender, seed=args.seed) for _ in range(args.repeat)]
            run = sorted(tries, key=lambda t: (not t.ok, t.wall_s))[len(tries) // 2]
            if len(tries) > 1:
                run.details["repeats_wall_s"] = [t.wall_s for t in tries]
                run.details["repeats_cpu_s"] = [t.cpu_s for t in tries]
            runs.append(run)
            figures = f"{run.wall_s:8.2f} s wall {run.cpu_s:7.2f} s CPU"
            say(f"N={n:>7} {contender:<12} {figures}  {'ok' if run.ok else 'FAILED'}: {run.check}")
    probe: dict[str, Any] = {}
    if args.probe_size and "ours" in args.contenders:
        probe = guarantee_probe(bench, min(args.probe_size, max(args.sizes)))
        say(f"guarantee probe at N={probe['n']}: {'ok' if probe['ok'] else 'FAILED'}")
    capacity = moto_capacity_probe(bench)
    cold = cold_start(bench, args.cold_repeats) if args.cold_repeats > 0 else {}
    if cold:
        handler, bare = cold["median"]["handler"]["total_s"], cold["median"]["bare"]["total_s"]
        say(f"cold start: handler {handler:.3f} s, bare {bare:.3f} s (medians)")
    return {"runs": [asdict(r) for r in runs], "probe": probe, "capacity": capacity, "cold": cold}


def main(args: Options) -> int:
    """The whole benchmark; the exit code: 2 when a contender failed, 1 for a missed target with ``--strict``."""
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for stale in logs.glob("*.log"):
        stale.unlink()
    with tempfile.TemporaryDirectory(prefix="seq-bench-") as scratch:
        try:
            with Bench(args.latency, Path(scratch), args.workers) as bench:
                measured = measure_all(args, bench)
        finally:
            for item in Path(scratch).glob("*.log"):
                (logs / item.name).write_bytes(item.read_bytes()[-200_000:])
    report = Report(
        **measured,
        sizes=args.sizes,
        latency=args.latency,
        versions=versions(),
        elapsed_s=time.perf_counter() - STARTED,
        started_at=started_at,
        command=" ".join(["python -m bench.run", *sys.argv[1:]]),
        seeded=args.seed,
    )
    markdown = render_markdown(report)
    print(markdown)
    (args.out / "latest.md").write_text(markdown)
    (args.out / "latest.json").write_text(json.dumps(asdict(report), indent=1, default=str))
    write_plot(report, args.out / "bench.png")
    print(f"wrote {args.out}/latest.md, bench.png and latest.json; {report.elapsed_s:.0f} s in all")
    failures = [f"N={r['n']} {r['contender']}: {r['check']}" for r in report.runs if not r["ok"]]
    if failures:
        print("FAILED runs:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 2
    if args.strict and not all(t.met for t in report.targets() if t.met is not None):
        return 1
    return 0


if __name__ == "__main__":
    cli()
