"""The benchmark's processes: the two services (moto with the AWS call counter, the SEQ simulator
with a per-page latency), each spoken to on its standard input and output, and every
contender's fresh child, reaped with its own rusage. ``Bench`` holds them with the stack's
resources on moto, measures one child against what the services counted, and reads back what
was written. Every wait is bounded: a service's answer, a child's run, a service's stop.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3

from bench.common import SPEC_VARIABLE, Spec
from local.stack import AWS_TEST_ENV, create_resources, new_api_key, reset_moto
from seq_export.dates import days_between, yesterday_utc
from seq_export.layout import CONTROL_KEY, TABLE_KEY

ROOT = Path(__file__).resolve().parent.parent

CHILD_TIMEOUT_SECONDS = 3600.0

SERVICE_TIMEOUT_SECONDS = 60.0


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
    #: The simulator's figures by day: requests, 429s and the most requests in flight at once.
    sendgrid_days: dict[str, dict[str, int]] = field(default_factory=dict)


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


class Bench:
    """The two services, the stack's resources on moto, and the contenders' processes."""

    def __init__(self, latency: float, workdir: Path, workers: int) -> None:
        self.workdir, self.workers, self.children, self.subusers = workdir, workers, 0, 0
        self.latency = latency
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

    def reset_counters(self, latency: float | None = None) -> float:
        """Zero the counts at moto and the simulator, which answers each page ``latency`` seconds
        late until the next reset (None: the bench's latency); returns moto's CPU seconds so far."""
        self.seq.ask(f"reset {self.subusers} {self.latency if latency is None else latency}")
        return float(self.moto.ask("reset")["server_cpu_s"])

    def child_env(self, spec: Spec, env: dict[str, str] | None = None) -> dict[str, str]:
        """A child's environment: the function's, ``env`` over it (settings of one run), the spec."""
        function_env = self.resources.env(self.seq.url)
        return {**self.base_env, **self.aws_env, **function_env, **(env or {}), SPEC_VARIABLE: spec.to_json()}

    def spec(self, n: int, day: str = "") -> Spec:
        return Spec(day=day or self.day, subusers=n, api_key=self.api_key, workers=self.workers)

    def start(self, name: str, spec: Spec, module: Sequence[str], env: dict[str, str] | None = None) -> Child:
        self.children += 1
        return Child(module, self.child_env(spec, env), self.workdir / f"{self.children:03d}-{name}")

    def measure(
        self,
        n: int,
        contender: str,
        spec: Spec,
        module: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        latency: float | None = None,
    ) -> Run:
        """One child at ``latency`` (None: the bench's) with ``env`` over the function's environment."""
        moto_cpu_before = self.reset_counters(latency)
        child = self.start(contender, spec, module, env).wait()
        aws, seq = self.moto.ask("calls"), self.seq.ask("stats")
        run = Run(n=n, contender=contender, process_wall_s=child.wall_s, process_cpu_s=child.cpu_s)
        run.sendgrid_requests, run.aws_calls = int(seq["requests"]), dict(sorted(aws["calls"].items()))
        run.sendgrid_days = seq.get("days", {})
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

    def object_sha256(self, key: str) -> str:
        """The sha256 of an object's bytes; empty if it is missing."""
        try:
            body = self.s3.get_object(Bucket=self.resources.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return ""
        return hashlib.sha256(body).hexdigest()

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
