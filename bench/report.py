"""The benchmark's report: the table, pairwise ratios, the performance targets, the plot."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.ranged import ranged_table, ranged_target
from local.seq_simulator import Scenario

Row = dict[str, Any]
LABELS = {
    "floor-fetch": "floor: fetch only",
    "floor-write": "floor: DynamoDB writes only",
    "floor-s3": "floor: one S3 put only",
    "ours": "ours (handler)",
    "ours-s3only": "ours, S3 part only",
    "naive": "naive script",
    "dlt": "dlt (S3 only)",
}
S3_OBJECT_WRITES = ("S3.PutObject", "S3.CompleteMultipartUpload", "S3.CopyObject")
SHORT_SERVICES = {"DynamoDB": "DDB", "SecretsManager": "SM"}
WALL_FACTOR = 1.2
RSS_FACTOR = 1.3
COLD_FACTOR = 1.3
WCU_CONSTANT_LIMIT = 10


def scored_count(subusers: int) -> int:
    """Subusers with a score in the simulator's default scenario (every n-th has none)."""
    return subusers - subusers // Scenario().ineligible_every


@dataclass
class Target:
    name: str
    met: bool | None  # None: not evaluated in this run (a size missing)
    figures: str

    @property
    def verdict(self) -> str:
        return "n/a" if self.met is None else ("MET" if self.met else "NOT MET")


@dataclass
class Report:
    runs: list[Row]
    sizes: list[int]
    latency: float
    versions: dict[str, str]
    probe: dict[str, Any]
    capacity: dict[str, Any]
    cold: dict[str, Any]
    elapsed_s: float
    started_at: str
    command: str
    seeded: bool = True
    ranged: list[Row] = field(default_factory=list)  # the key-ranges section (bench/ranged.py)

    def run(self, n: int, contender: str) -> Row | None:
        return next((r for r in self.runs if r["n"] == n and r["contender"] == contender and r["ok"]), None)

    # -- targets ---------------------------------------------------------------------------
    def targets(self) -> list[Target]:
        return [
            self._each_ours(
                "SendGrid requests per day exactly ceil(N / 1000)",
                lambda n, r: f"{r['sendgrid_requests']} (want {math.ceil(n / 1000)})",
                lambda n, r: r["sendgrid_requests"] == math.ceil(n / 1000),
            ),
            self._each_ours(
                "one S3 write of the day's object per day, and one of the split points it leaves",
                lambda _n, r: f"{_object_writes(r)} ({_ops(r['aws_calls'], 'S3.')})",
                lambda _n, r: _object_writes(r) == 2,
            ),
            self._each_ours(
                "no DynamoDB reads on the daily path",
                lambda _n, r: f"{r['dynamodb']['read_calls']} read calls, {r['dynamodb']['rcu']:g} RCU",
                lambda _n, r: r["dynamodb"]["read_calls"] == 0,
            ),
            self._write_units(),
            self._newest_wins(),
            self._wall(),
            self._cpu(),
            self._dlt(),
            self._rss(),
            self._cold(),
            Target(*ranged_target(self.ranged)),
        ]

    def _ours(self) -> list[tuple[int, Row]]:
        return [(n, run) for n in self.sizes if (run := self.run(n, "ours")) is not None]

    def _each_ours(self, name: str, figures: Callable[[int, Row], str], met: Callable[[int, Row], bool]) -> Target:
        """A target that every N's run of ours must meet."""
        rows = self._ours()
        parts = "; ".join(f"N={n:,}: {figures(n, r)}" for n, r in rows)
        return Target(name, all(met(n, r) for n, r in rows) if rows else None, parts)

    def _write_units(self) -> Target:
        rows = self._ours()
        excess, parts = [], []
        for n, r in rows:
            d, scored = r["dynamodb"], scored_count(n)
            excess.append(d["wcu"] - scored)
            parts.append(
                f"N={n:,}: {d['wcu']:g} WCU for {scored:,} scored = table {d['table_wcu']:g} + "
                f"index {d['index_wcu']:g} (excess {d['wcu'] - scored:+g})"
            )
        probe_n = self.probe.get("n", 0)
        if first := self.probe.get("first_day", {}).get("dynamodb"):
            parts.append(
                f"a first day ever (empty table, N={probe_n:,}): table {first['table_wcu']:g} + index "
                f"{first['index_wcu']:g}, each new subuser enters the username index once"
            )
        if steady := self.probe.get("steady_state", {}).get("dynamodb"):
            parts.append(
                f"steady state (second day over the first, N={probe_n:,}): table {steady['table_wcu']:g} + "
                f"index {steady['index_wcu']:g} for {scored_count(probe_n):,} scored"
            )
        met = bool(rows) and len(set(excess)) == 1 and excess[0] <= WCU_CONSTANT_LIMIT
        table_only = [r["dynamodb"]["table_wcu"] - scored_count(n) for n, r in rows]
        if rows and not met and len(set(table_only)) == 1 and table_only[0] <= WCU_CONSTANT_LIMIT:
            parts.append(
                f"the table alone meets it (excess {table_only[0]:+g} per day); the index writes do not fit it"
            )
        return Target(
            f"at most 1 DynamoDB write unit per scored subuser plus a constant (<= {WCU_CONSTANT_LIMIT}) per day",
            met if rows else None,
            "; ".join(parts),
        )

    def _newest_wins(self) -> Target:
        name, probe = "the newest day wins when days export at the same time", self.probe
        if not probe:
            return Target(name, None, "probe not run")
        concurrent = "; ".join(
            f"{c['started_first']} started {c['ahead_s']:g} s ahead: {c['items_newest']}/{c['items']} items hold "
            f"{probe['newer']} (exit {c['exit_codes']})"
            for c in probe["concurrent"]
        )
        figures = (
            f"N={probe['n']:,}: backfill of {probe['older']} after {probe['newer']}: {probe['backfill_check']}; "
            f"concurrent: {concurrent}; plain batch writes of {probe['older']} after {probe['newer']} left "
            f"{probe['plain_batch_overwritten']} items on the older day"
        )
        return Target(name, bool(probe["ok"]), figures)

    def _wall(self) -> Target:
        name = f"wall time at most {WALL_FACTOR} x max(fetch floor, write floor) at 100,000"
        n = 100_000 if 100_000 in self.sizes else max(self.sizes)
        ours, fetch, write = self.run(n, "ours"), self.run(n, "floor-fetch"), self.run(n, "floor-write")
        if not (ours and fetch and write):
            return Target(name, None, "a run is missing")
        floor = max(fetch["wall_s"], write["wall_s"])
        where = f"N={n:,}" + ("" if n == 100_000 else " (100,000 not in this run)")
        figures = (
            f"{where}: ours {ours['wall_s']:.2f} s vs fetch floor {fetch['wall_s']:.2f} s, write floor "
            f"{write['wall_s']:.2f} s: {ours['wall_s'] / floor:.2f} x the larger (limit {WALL_FACTOR})"
        )
        return Target(name, ours["wall_s"] <= WALL_FACTOR * floor, figures)

    def _cpu(self) -> Target:
        per_1000 = [
            (n, ours["cpu_s"] / n * 1000, naive["cpu_s"] / n * 1000)
            for n in self.sizes
            if (ours := self.run(n, "ours")) and (naive := self.run(n, "naive"))
        ]
        return Target(
            "exporter CPU seconds per 1,000 subusers at most the naive script's",
            all(a <= b for _, a, b in per_1000) if per_1000 else None,
            "; ".join(
                f"N={n:,}: ours {a:.3f} vs naive {b:.3f} CPU s per 1,000 ({a / b:.2f} x)" for n, a, b in per_1000
            ),
        )

    def _dlt(self) -> Target:
        """dlt does the S3 part only: ours is held to that job (its S3 part), the whole job is shown."""
        parts, s3_ratios = [], []
        for n in self.sizes:
            ours, dlt, s3 = self.run(n, "ours"), self.run(n, "dlt"), self.run(n, "ours-s3only")
            if not dlt or not (ours or s3):
                continue
            text = f"N={n:,}: dlt {dlt['wall_s']:.2f} s"
            if s3:
                s3_ratios.append(s3["wall_s"] / dlt["wall_s"])
                text += f", ours' S3 part {s3['wall_s']:.2f} s ({s3_ratios[-1]:.2f} x)"
            if ours:
                text += (
                    f", ours' whole job (S3 + DynamoDB) {ours['wall_s']:.2f} s ({ours['wall_s'] / dlt['wall_s']:.2f} x)"
                )
            write = self.run(n, "floor-write")
            if ours and write and ours["wall_s"] >= dlt["wall_s"] and write["wall_s"] >= dlt["wall_s"]:
                text += f" (the DynamoDB write floor alone takes {write['wall_s']:.2f} s here)"
            parts.append(text)
        met = all(r < 1 for r in s3_ratios) if s3_ratios else None
        return Target("faster than dlt on the S3-only job at every N", met, "; ".join(parts))

    def _rss(self) -> Target:
        name = f"peak RSS at 100,000 at most {RSS_FACTOR} x peak RSS at 1,000"
        small, large = min(self.sizes), max(self.sizes)
        a, b = self.run(small, "ours"), self.run(large, "ours")
        if small == large or not (a and b):
            return Target(name, None, "needs two sizes")
        ratio = b["maxrss_mib"] / a["maxrss_mib"]
        where = "" if (small, large) == (1_000, 100_000) else f" (sizes {small:,} and {large:,} in this run)"
        figures = (
            f"{b['maxrss_mib']:.1f} MiB at N={large:,} vs {a['maxrss_mib']:.1f} MiB at N={small:,}: "
            f"{ratio:.2f} x{where}"
        )
        return Target(name, ratio <= RSS_FACTOR, figures)

    def _cold(self) -> Target:
        name = f"cold start at most {COLD_FACTOR} x bare boto3 + requests with the same clients"
        if not self.cold:
            return Target(name, None, "not run")
        handler, bare = self.cold["median"]["handler"], self.cold["median"]["bare"]
        ratio = float(self.cold["ratio_median"])
        figures = (
            f"median of {self.cold['repeats']} pairs of fresh processes: {ratio:.2f} x (pairs "
            f"{', '.join(f'{r:.2f}' for r in self.cold['ratios'])}); handler import {handler['import_s']:.3f} s + "
            f"clients {handler['clients_s']:.3f} s = {handler['total_s']:.3f} s, bare {bare['import_s']:.3f} s + "
            f"{bare['clients_s']:.3f} s = {bare['total_s']:.3f} s (CPU {handler['cpu_s']:.3f} vs {bare['cpu_s']:.3f} s)"
        )
        return Target(name, ratio <= COLD_FACTOR, figures)


def _object_writes(run: Row) -> int:
    return sum(count for name, count in run["aws_calls"].items() if name.startswith(S3_OBJECT_WRITES))


def _ops(calls: dict[str, int], prefix: str = "") -> str:
    ordered = sorted(calls.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{_short(name)} {count:,}" for name, count in ordered if name.startswith(prefix)) or "none"


def _short(operation: str) -> str:
    service, dot, name = operation.partition(".")
    return SHORT_SERVICES.get(service, service) + dot + name


def _ratio(a: Row | None, b: Row | None, key: str = "wall_s") -> str:
    return f"{a[key] / b[key]:.2f}" if a and b and b[key] else "-"


def render_markdown(report: Report) -> str:
    v = report.versions
    lines = [
        "# seq-export benchmark",
        "",
        f"{report.started_at}: `{report.command}`, {report.elapsed_s:.0f} s in all. SendGrid round trip "
        f"simulated as {report.latency * 1000:.0f} ms per page. {v['cpus']} CPUs, Python {v['python']}, "
        f"boto3 {v['boto3']}, moto {v['moto']}, Powertools {v['aws-lambda-powertools']}, dlt {v['dlt']} "
        f"(s3fs {v['s3fs']}). moto and the simulator run in processes of their own; each contender runs in "
        "a fresh process and measures its job after its imports and clients (cold start is measured apart). "
        + (
            "Ours and the write floor write over a table that already holds every subuser's day before (the "
            "daily steady state); the naive script starts from an empty table."
            if report.seeded
            else "Every contender starts from an empty table (--no-seed): index writes are first-day writes."
        ),
        "",
        "| N | contender | wall s | CPU s | CPU s / 1k | peak RSS MiB | SendGrid requests | AWS calls | "
        "DynamoDB WCU (table + index) / RCU | moto CPU s | check |",
        "|---:|---|---:|---:|---:|---:|---:|---|---|---:|---|",
    ]
    for run in report.runs:
        d = run["dynamodb"] or {}
        wcu = f"{d.get('wcu', 0):g} ({d.get('table_wcu', 0):g} + {d.get('index_wcu', 0):g}) / {d.get('rcu', 0):g}"
        lines.append(
            f"| {run['n']:,} | {LABELS.get(run['contender'], run['contender'])} | {run['wall_s']:.2f} | "
            f"{run['cpu_s']:.2f} | {run['cpu_s'] / run['n'] * 1000:.3f} | {run['maxrss_mib']:.1f} | "
            f"{run['sendgrid_requests']:,} | {_ops(run['aws_calls'])} | {wcu} | {run['moto_cpu_s']:.2f} | "
            f"{'ok' if run['ok'] else 'FAILED'}: {run['check']} |"
        )
    lines += [
        "",
        "Ratios inside this run, same N and latency (wall time unless CPU is named):",
        "",
        "| N | ours / fetch floor | ours / write floor | ours / max(floors) | ours / naive | ours CPU / naive CPU "
        "| ours / dlt | ours CPU / dlt CPU | ours S3 part / dlt |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in report.sizes:
        ours = report.run(n, "ours")
        fetch, write = report.run(n, "floor-fetch"), report.run(n, "floor-write")
        floor = max((fetch, write), key=lambda r: r["wall_s"] if r else -1.0) if (fetch or write) else None
        lines.append(
            f"| {n:,} | {_ratio(ours, fetch)} | {_ratio(ours, write)} | {_ratio(ours, floor)} | "
            f"{_ratio(ours, report.run(n, 'naive'))} | {_ratio(ours, report.run(n, 'naive'), 'cpu_s')} | "
            f"{_ratio(ours, report.run(n, 'dlt'))} | {_ratio(ours, report.run(n, 'dlt'), 'cpu_s')} | "
            f"{_ratio(report.run(n, 'ours-s3only'), report.run(n, 'dlt'))} |"
        )
    lines += ranged_table(report.ranged)
    lines += ["", "## Targets", ""]
    for target in report.targets():
        lines.append(f"- **{target.verdict}** {target.name}: {target.figures}")
    lines += ["", "## DynamoDB capacity", ""]
    lines.append(
        "Computed from the item sizes of every write moto received (DynamoDB's rules: ceil(size / 1 KiB) per "
        "item written; a global secondary index adds ceil((projected size + 100) / 1 KiB) whenever the write "
        "changes what the index holds; reads 0.5 per item up to 4 KiB), because moto's own "
        "ReturnConsumedCapacity is not usable for this. Asked for writes of our shape, moto answered:"
    )
    for name, answer in report.capacity.items():
        lines.append(f"- {name}: `{answer}`")
    if report.probe:
        p = report.probe
        lines += ["", "## Guarantee probe", ""]
        for label, key in (
            ("first day (empty table)", "first_day"),
            ("second day over the first (steady state)", "steady_state"),
            ("older day again (backfill, conditional path)", "backfill"),
        ):
            s = p[key]
            lines.append(
                f"- {label}, N={p['n']:,}, {s['date']}: {s['wall_s']:.2f} s wall, {s['cpu_s']:.2f} s CPU, "
                f"written {s['latest_written']}, kept newer {s['latest_kept_newer']}; {_ops(s['aws_calls'])}; "
                f"WCU {s['dynamodb'].get('table_wcu', 0):g} table + {s['dynamodb'].get('index_wcu', 0):g} index"
            )
        for c in p["concurrent"]:
            lines.append(
                f"- both days at once, {c['started_first']} started {c['ahead_s']:g} s ahead: {c['items_newest']}/"
                f"{c['items']} items hold {p['newer']}; answers {c['answers']}"
            )
        lines.append(
            f"- contrast: plain BatchWriteItem of {p['older']} after {p['newer']} (the write floor) left "
            f"{p['plain_batch_overwritten']} items on the older day"
        )
    if report.cold:
        lines += [
            "",
            "## Cold start",
            "",
            "| | total s | import s | clients s | CPU s | peak RSS MiB | process wall s |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for mode, label in (
            ("handler", "seq_export.handler + build_dependencies()"),
            ("bare", "boto3 + requests, 4 clients + Session"),
        ):
            m = report.cold["median"][mode]
            lines.append(
                f"| {label} | {m['total_s']:.3f} | {m['import_s']:.3f} | {m['clients_s']:.3f} | {m['cpu_s']:.3f} | "
                f"{m['maxrss_mib']:.1f} | {m['process_wall_s']:.3f} |"
            )
        imports = report.cold.get("imports") or []
        if imports:
            lines += [
                "",
                "What importing the handler costs, by its direct imports (`python -X importtime`, cumulative):",
                "",
            ]
            lines.append(", ".join(f"{i['module']} {i['cumulative_ms']:.0f} ms" for i in imports))
    lines += [
        "",
        "Contenders: *floor: fetch only* pages through the day with a bare requests loop; *floor: DynamoDB "
        "writes only* sends our BatchWriteItem calls (25 items) from a bare thread pool; *floor: one S3 put "
        "only* puts an object of the day's size; *ours* is the Lambda handler (scheduled event, daily path); "
        "*ours, S3 part only* is the same with a latest-score store that writes nothing; *naive script* is "
        "bench/naive_exporter.py (put_item per scored subuser, one put_object); *dlt* is dlt's rest_api "
        "source into its filesystem destination (JSON lines on the same S3), no DynamoDB.",
    ]
    return "\n".join(lines) + "\n"


def write_plot(report: Report, path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - a bench-only dependency

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, (wall, cpu) = plt.subplots(1, 2, figsize=(12, 4.8))
    for contender, label in LABELS.items():
        points = [(n, run) for n in report.sizes if (run := report.run(n, contender)) is not None]
        if not points:
            continue
        style = "-" if not contender.startswith("floor") else "--"
        xs = [n for n, _ in points]
        wall.plot(xs, [r["wall_s"] for _, r in points], style, marker="o", label=label)
        cpu.plot(xs, [r["cpu_s"] for _, r in points], style, marker="o", label=label)
    for axis, title in ((wall, "wall time (s)"), (cpu, "exporter CPU (s, user + sys)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("subusers (N)")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    wall.legend(fontsize="small")
    figure.suptitle(f"seq-export benchmark, {report.latency * 1000:.0f} ms per SendGrid page, {report.started_at}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
