"""``make bench``: the performance benchmark, from services to the printed table and the plot.

This module is the driver: its command line, the order of the measurements, the report written.
moto (with the AWS call counter) and the SEQ simulator (with a per-page latency) run in processes
of their own (``processes.py``). For every N and contender, moto is reset and the stack's
resources created anew, and the contender runs in a fresh child process that measures its job;
the driver adds the child's rusage and what the services counted, and checks what was written
(``probes.py``). Then the key-ranges section (``ranged.py``: a day in parallel key ranges beside
the same day in order), the guarantee probe, moto's own capacity answers, the cold start, and the
report (``report.py``: table, pairwise ratios, each performance target MET / NOT MET):
bench/README.md says what runs where and how to read it. Everything is bounded: page loops,
child time limits, waits for the services, the number of runs.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click

from bench.probes import CONTENDERS, cold_start, guarantee_probe, moto_capacity_probe, run_contender
from bench.processes import ROOT, Bench, Run
from bench.ranged import DEFAULT_CASES, RangedCase, measure_ranged, parse_cases
from bench.report import Report, render_markdown, write_plot

RESULTS = ROOT / "bench" / "results"

DEFAULT_SIZES = (1_000, 10_000, 100_000)

STARTED = time.perf_counter()


def say(text: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f} s] {text}", file=sys.stderr, flush=True)


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
    ranged_cases: list[RangedCase]


def parse_sizes(_ctx: click.Context, _param: click.Parameter, text: str) -> list[int]:
    try:
        sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of whole numbers") from None
    if not sizes or sizes[0] < 1 or sizes[-1] > 1_000_000:
        raise click.BadParameter("sizes must be between 1 and 1,000,000")
    return sizes


def parse_ranged_cases(_ctx: click.Context, _param: click.Parameter, text: str) -> list[RangedCase]:
    try:
        return parse_cases(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


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
@click.option(
    "--ranged-cases",
    default=DEFAULT_CASES,
    show_default=True,
    callback=parse_ranged_cases,
    metavar="N@SECONDS,...",
    help="Cases of the key-ranges section: subusers @ seconds per page ('none': skip the section).",
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
    ranged = measure_ranged(bench, args.ranged_cases, say)
    probe: dict[str, Any] = {}
    if args.probe_size and "ours" in args.contenders:
        probe = guarantee_probe(bench, min(args.probe_size, max(args.sizes)))
        say(f"guarantee probe at N={probe['n']}: {'ok' if probe['ok'] else 'FAILED'}")
    capacity = moto_capacity_probe(bench)
    cold = cold_start(bench, args.cold_repeats) if args.cold_repeats > 0 else {}
    if cold:
        handler, bare = cold["median"]["handler"]["total_s"], cold["median"]["bare"]["total_s"]
        say(f"cold start: handler {handler:.3f} s, bare {bare:.3f} s (medians)")
    return {"runs": [asdict(r) for r in runs], "ranged": ranged, "probe": probe, "capacity": capacity, "cold": cold}


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
    failures += [
        f"key ranges N={r['subusers']} @ {r['latency_s']:g} s: {r['check']}" for r in report.ranged if not r["ok"]
    ]
    if failures:
        print("FAILED runs:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 2
    if args.strict and not all(t.met for t in report.targets() if t.met is not None):
        return 1
    return 0


if __name__ == "__main__":
    cli()
