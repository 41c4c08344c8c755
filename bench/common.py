"""What the driver and its child processes share: the job spec, the measurement, the page loop.

Every contender runs in a fresh child process, given the function's environment and its job as
JSON in ``BENCH_SPEC``. It does its setup (imports, clients), then :func:`measure_job` measures the
job alone and writes one JSON object to the ``--out`` file; the driver adds the process's rusage.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import click
import requests

from local.invoke import peak_rss_kib
from seq_export.config import MAX_PAGE_SIZE, Settings
from seq_export.layout import day_key
from seq_export.seq_client import MAX_PAGES, SUBUSER_SCORES_PATH

SPEC_VARIABLE = "BENCH_SPEC"


@dataclass(frozen=True)
class Spec:
    """One job for one child process; the rest is the function's own environment (its settings)."""

    day: str
    subusers: int
    api_key: str  # the key itself: the environment names only its secret
    workers: int = 8  # threads of the write floor

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> Spec:
        return cls(**json.loads(os.environ[SPEC_VARIABLE]))

    @cached_property
    def settings(self) -> Settings:
        return Settings.from_env()

    @property
    def key(self) -> str:
        """The day's S3 key, where ours writes (and so the naive script and the S3 floor)."""
        return day_key(self.settings.scores_prefix, self.settings.source_names[0], self.day)


def child_command(doc: str | None) -> Callable[[Callable[..., int]], click.Command]:
    """The command line of a child, ``python -m MODULE ... --out FILE``, with Click as every command
    line of the project (a bad option: ``Error: ...``, exit 2). The decorated function takes ``out``
    and its own options (Click decorators under this one) and returns the exit code."""

    def command(job: Callable[..., int]) -> click.Command:
        @functools.wraps(job)  # with the options already declared on ``job``
        def child(**options: Any) -> None:
            sys.exit(job(**options))

        out = click.option("--out", required=True, help="Where to write the measurements (JSON).")
        return click.command(help=(doc or "").split("\n\n")[0])(out(child))

    return command


def _cpu() -> tuple[float, float]:
    """User and system CPU seconds of this process and of the children it reaped."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + children.ru_utime, own.ru_stime + children.ru_stime


def measure_job(out: str, job: Callable[[], dict[str, Any]]) -> int:
    """Run ``job`` alone on the clock; write its wall time, CPU seconds, peak RSS and what it did."""
    before, started = _cpu(), time.perf_counter()
    details = job()
    wall = time.perf_counter() - started
    user, system = (after - start for after, start in zip(_cpu(), before, strict=True))
    result: dict[str, Any] = {"wall_s": wall, "cpu_user_s": user, "cpu_sys_s": system, "cpu_s": user + system}
    result |= {"maxrss_mib": peak_rss_kib() / 1024, "details": details}
    Path(out).write_text(json.dumps(result, default=str))
    return 0


def pages(spec: Spec, parse: Callable[[bytes], Any]) -> Iterator[dict[str, Any]]:
    """Every page of the day with a bare ``requests`` loop, one after the other (the cursor allows
    nothing else), each body parsed with ``parse``; bounded as our client is."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {spec.api_key}"}
    params: dict[str, str | int] = {"date": spec.day, "limit": MAX_PAGE_SIZE}
    for _ in range(MAX_PAGES):
        response = session.get(
            spec.settings.sources[0].base_url + SUBUSER_SCORES_PATH, params=params, headers=headers, timeout=30
        )
        response.raise_for_status()
        body: dict[str, Any] = parse(response.content)
        yield body
        after_key = (body.get("_metadata") or {}).get("next_params", {}).get("after_key")
        if not after_key:
            return
        params["after_key"] = after_key
