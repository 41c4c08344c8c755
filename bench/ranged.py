"""The key-ranges section: one day fetched as parallel key ranges, beside the same day in order.

For each case (subusers, latency), on a fresh stack: our handler (S3 only) exports the day before
in order at latency 0, which leaves the split points a real day leaves; then the day itself with
key ranges on at the case's latency, with a fixed ``exported_at`` (``bench.ours --exported-at``);
then the same day in order (``SEQ_RANGED_FETCH=false``), same instant. The in-order export runs at
the case's latency when its floor (pages x latency) is at most ``MEASURED_FLOOR_LIMIT_S``; above
that it runs at latency 0, for its object and request count only, and its floor is computed.
Both objects must be byte-identical (sha256 read back from moto).

The rows are plain dicts (``latest.json``); ``ranged_table`` and ``ranged_target`` render them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.processes import Bench, Run
from seq_export.config import DEFAULT_MAX_IN_FLIGHT, MAX_PAGE_SIZE, Env
from seq_export.dates import iso_timestamp

Row = dict[str, Any]

DEFAULT_CASES = "100000@0.1,100000@1,1000000@0.1"

#: Above this floor (seconds) the in-order export is not waited out: its floor is computed.
MEASURED_FLOOR_LIMIT_S = 15.0

#: The target: at this case, key ranges take at most this fraction of the in-order floor.
TARGET_SUBUSERS, TARGET_LATENCY, TARGET_FRACTION = 100_000, 1.0, 0.25


@dataclass(frozen=True)
class RangedCase:
    subusers: int
    latency: float  # seconds per SendGrid page

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.subusers / MAX_PAGE_SIZE))

    @property
    def floor_s(self) -> float:
        """The in-order fetch can take no less: one page after the other, each a round trip."""
        return self.pages * self.latency

    @property
    def measured_in_order(self) -> bool:
        return self.floor_s <= MEASURED_FLOOR_LIMIT_S


def parse_cases(text: str) -> list[RangedCase]:
    """``N@LATENCY,...`` (e.g. ``100000@1,1000000@0.1``); empty or ``none``: no case."""
    if text.strip().lower() in ("", "none"):
        return []
    cases = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        subusers, at, latency = part.partition("@")
        try:
            case = RangedCase(int(subusers.replace("_", "")), float(latency))
        except ValueError:
            raise ValueError(f"{part!r} is not SUBUSERS@SECONDS") from None
        if not at or not 1 <= case.subusers <= 1_000_000 or not 0 < case.latency <= 5:
            raise ValueError(f"{part!r}: subusers 1 to 1,000,000 at more than 0, at most 5 seconds a page")
        cases.append(case)
    return cases


def measure_ranged(bench: Bench, cases: Sequence[RangedCase], say: Callable[[str], None]) -> list[Row]:
    rows = []
    for case in cases:
        row = run_case(bench, case)
        in_order = f"{row['sequential_wall_s']:.2f} s" if case.measured_in_order else "computed"
        say(
            f"key ranges N={case.subusers:>7} @ {case.latency:g} s: ranged {row['ranged_wall_s']:.2f} s "
            f"({row['ranged_over_floor']:.2f} x the {case.floor_s:g} s floor), in order {in_order}, "
            f"{row['key_ranges']} ranges, max in flight {row['max_in_flight']}  "
            f"{'ok' if row['ok'] else 'FAILED'}: {row['check']}"
        )
        rows.append(row)
    return rows


def run_case(bench: Bench, case: RangedCase) -> Row:
    """One case on a fresh stack: the day before in order, then the day ranged and in order."""
    n, day = case.subusers, bench.day
    bench.fresh_stack(n)
    exported_at = iso_timestamp(datetime.now(UTC))

    def ours(on: str) -> list[str]:
        return ["bench.ours", "--s3-only", "--exported-at", exported_at, "--event", json.dumps({"date": on})]

    older = bench.measure(n, "ranged-older-day", bench.spec(n, bench.older_day), ours(bench.older_day), latency=0.0)
    ranged = bench.measure(n, "ranged", bench.spec(n), ours(day), latency=case.latency)
    ranged_sha = bench.object_sha256(_answer(ranged).get("s3_key") or "")
    ranged_lines = bench.object_lines(_answer(ranged).get("s3_key") or "")[0]
    in_order_latency = case.latency if case.measured_in_order else 0.0
    off = {Env.SEQ_RANGED_FETCH: "false"}
    in_order = bench.measure(n, "in-order", bench.spec(n), ours(day), env=off, latency=in_order_latency)
    in_order_sha = bench.object_sha256(_answer(in_order).get("s3_key") or "")
    seen = ranged.sendgrid_days.get(day, {})
    setting = int(bench.child_env(bench.spec(n)).get(Env.SEQ_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT))
    row: Row = {
        "subusers": n,
        "latency_s": case.latency,
        "pages": case.pages,
        "floor_s": case.floor_s,
        "sequential_measured": case.measured_in_order,
        "sequential_latency_s": in_order_latency,
        "sequential_wall_s": in_order.wall_s if case.measured_in_order else None,
        "sequential_run_wall_s": in_order.wall_s,
        "ranged_wall_s": ranged.wall_s,
        "ranged_cpu_s": ranged.cpu_s,
        "ranged_over_floor": ranged.wall_s / case.floor_s,
        "ranged_requests": seen.get("requests", 0),
        "sequential_requests": in_order.sendgrid_days.get(day, {}).get("requests", 0),
        "max_in_flight": seen.get("max_in_flight", 0),
        "max_in_flight_setting": setting,
        "rate_limited": seen.get("rate_limited", 0),
        "key_ranges": _answer(ranged).get("key_ranges", 0),
        "key_ranges_abandoned": _answer(ranged).get("key_ranges_abandoned"),
        "sequential_key_ranges": _answer(in_order).get("key_ranges", 0),
        "older_day_key_ranges": _answer(older).get("key_ranges", 0),
        "ranged_sha256": ranged_sha,
        "sequential_sha256": in_order_sha,
        "hashes_equal": bool(ranged_sha) and ranged_sha == in_order_sha,
        "exported_at": exported_at,
    }
    row["ok"], row["check"] = _check(n, {"day before": older, "ranged": ranged, "in order": in_order}, row)
    if row["ok"] and ranged_lines != n:
        row["ok"], row["check"] = False, f"ranged object has {ranged_lines}/{n} lines"
    return row


def _answer(run: Run) -> dict[str, Any]:
    answer: dict[str, Any] = run.details.get("answer", {})
    return answer


def _check(n: int, runs: dict[str, Run], row: Row) -> tuple[bool, str]:
    """Every export ran to ``exported`` and the two objects of the day are the same bytes."""
    for name, run in runs.items():
        if run.check:
            return False, f"{name}: {run.check}"
        if _answer(run).get("status") != "exported":
            return False, f"{name}: status {_answer(run).get('status')}"
    if not row["hashes_equal"]:
        return False, f"objects differ: ranged {row['ranged_sha256'][:12]}, in order {row['sequential_sha256'][:12]}"
    return True, f"both exported, {n:,} lines, same sha256 {row['ranged_sha256'][:12]}"


def ranged_target(rows: Sequence[Row]) -> tuple[str, bool | None, str]:
    """The key-ranges target (name, met or None when not measured, figures)."""
    name = (
        f"at {TARGET_SUBUSERS:,} subusers and {TARGET_LATENCY:g} s a page, the ranged fetch takes at most a quarter "
        f"of the sequential floor, with equal hashes and no more in flight than the setting ({DEFAULT_MAX_IN_FLIGHT})"
    )
    row = next((r for r in rows if (r["subusers"], r["latency_s"]) == (TARGET_SUBUSERS, TARGET_LATENCY)), None)
    if row is None:
        return name, None, "not measured in this run"
    if not row["ok"]:
        return name, False, f"the case failed: {row['check']}"
    ratio, limit = row["ranged_over_floor"], row["max_in_flight_setting"]
    met = ratio <= TARGET_FRACTION and row["hashes_equal"] and row["max_in_flight"] <= limit and row["key_ranges"] > 0
    figures = (
        f"ranged {row['ranged_wall_s']:.2f} s vs floor {row['floor_s']:g} s ({row['pages']} pages x "
        f"{row['latency_s']:g} s): {ratio:.3f} x (limit {TARGET_FRACTION:g}); {row['key_ranges']} key ranges, "
        f"{row['ranged_requests']} requests, at most {row['max_in_flight']} in flight (setting {limit}), "
        f"{row['rate_limited']} 429s; hashes {'equal' if row['hashes_equal'] else 'DIFFER'}"
    )
    return name, met, figures


def ranged_table(rows: Sequence[Row]) -> list[str]:
    """The section's markdown lines (none without rows)."""
    if not rows:
        return []
    lines = [
        "",
        "## Key ranges",
        "",
        "One day fetched as parallel key ranges (`ranged`) and in order (`SEQ_RANGED_FETCH=false`), our "
        "handler, S3 part only, same fixed `exported_at`, on a fresh stack whose day before was exported in "
        "order (it leaves the split points). The sequential floor is pages x latency (pages = ceil(N / 1000)); "
        f"when it is above {MEASURED_FLOOR_LIMIT_S:g} s the in-order export runs at latency 0 (for its object "
        "and request count) and its wall time is *computed* as that floor. Requests, the most in flight at "
        "once and 429s are the simulator's, for that day.",
        "",
        "| subusers | latency s | sequential floor s | sequential wall s | ranged wall s | ranged / floor | "
        "requests ranged / sequential | max in flight (setting) | 429s | key ranges | hashes equal | check |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        in_order = f"{r['sequential_wall_s']:.2f}" if r["sequential_measured"] else "computed (floor)"
        abandoned = f" (abandoned: {r['key_ranges_abandoned']})" if r["key_ranges_abandoned"] else ""
        lines.append(
            f"| {r['subusers']:,} | {r['latency_s']:g} | {r['floor_s']:g} | {in_order} | {r['ranged_wall_s']:.2f} | "
            f"{r['ranged_over_floor']:.3f} | {r['ranged_requests']:,} / {r['sequential_requests']:,} | "
            f"{r['max_in_flight']} ({r['max_in_flight_setting']}) | {r['rate_limited']} | "
            f"{r['key_ranges']}{abandoned} | {'yes' if r['hashes_equal'] else 'no'} | "
            f"{'ok' if r['ok'] else 'FAILED'}: {r['check']} |"
        )
    return lines
