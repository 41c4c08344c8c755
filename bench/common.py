"""What the driver and its child processes share: the job spec, the stopwatch, the result file.

Every contender runs in a fresh child process. The driver passes the job as JSON in the
``BENCH_SPEC`` environment variable (with the function's own environment beside it); the
child does its setup (imports, clients), then measures only the job itself with
:class:`Stopwatch` and writes one JSON object to the ``--out`` file it was given. The driver
also reads the whole process's rusage with ``os.wait4``.
"""

from __future__ import annotations

import json
import os
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SPEC_VARIABLE = "BENCH_SPEC"
SCORES_PATH = "/v3/engagementquality/subusers/scores"
PAGE_SIZE = 1000
#: Every loop over pages in bench/ stops here, whatever the API says (10 million subusers).
MAX_PAGES = 10_000


@dataclass(frozen=True)
class Spec:
    """One job for one child process."""

    day: str
    subusers: int
    api_base_url: str
    api_key: str
    aws_endpoint: str
    bucket: str
    table: str
    key: str = ""  # S3 key the naive script and the S3 floor write
    workers: int = 8  # threads of the write floor
    variant: str = ""  # contender-specific switch
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> Spec:
        return cls(**json.loads(os.environ[SPEC_VARIABLE]))


def scored_count(subusers: int, ineligible_every: int = 7) -> int:
    """Subusers with a score in the simulator's default scenario (every 7th has none)."""
    return subusers - (subusers // ineligible_every if ineligible_every else 0)


def peak_rss_mib() -> float:
    """This process's peak resident set size, in MiB.

    ``VmHWM`` of ``/proc/self/status``, not ``ru_maxrss``: on Linux a child started by fork (or
    vfork) and exec inherits the parent's high-water mark in ``ru_maxrss``, so a small child of a
    large driver would report the driver's size.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, an upper bound


def _cpu(usage: resource.struct_rusage) -> tuple[float, float]:
    return usage.ru_utime, usage.ru_stime


class Stopwatch:
    """Wall time, CPU seconds (this process and any children it reaped) and peak RSS of a job."""

    def __init__(self) -> None:
        self._wall = 0.0
        self._self = (0.0, 0.0)
        self._children = (0.0, 0.0)
        self.result: dict[str, float] = {}

    def __enter__(self) -> Stopwatch:
        self._self = _cpu(resource.getrusage(resource.RUSAGE_SELF))
        self._children = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._wall
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        user = own.ru_utime - self._self[0] + children.ru_utime - self._children[0]
        system = own.ru_stime - self._self[1] + children.ru_stime - self._children[1]
        self.result = {
            "wall_s": wall,
            "cpu_user_s": user,
            "cpu_sys_s": system,
            "cpu_s": user + system,
            "maxrss_mib": peak_rss_mib(),
        }


def write_result(path: str, watch: Stopwatch, **details: Any) -> None:
    """The child's report: its measurements plus what it did (records, pages, answer...)."""
    Path(path).write_text(json.dumps({**watch.result, "details": details}, default=str))
