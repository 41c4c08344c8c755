"""``seq-export report``: a day's fleet health from the lake, per source, without writing a query.

It reads each source's object of the day and that source's previous exported day's from S3 (so
it works for any day still in the bucket): subusers per score band and ineligible, the mean score, the biggest
drops and rises against the previous exported day, and the lowest scorers. Bands follow the
function's rule (``score_bands.band_of``: a score's integer part, so 3.5 is in band 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import click
from rich.console import Group
from rich.table import Table
from rich.text import Text

from seq_export.layout import DEFAULT_SOURCE
from seq_export.models import SUBUSERS, json_number
from seq_export.score_bands import BANDS, band_of
from seq_export_cli.app import App, with_app
from seq_export_cli.errors import EXIT_NEGATIVE, EXIT_OK
from seq_export_cli.options import Day, default_day, shared_options, source_option
from seq_export_cli.output import per_source, sections, table
from seq_export_cli.s3_objects import day_lines, exported_days, head_object

BAR_WIDTH = 40


@dataclass
class DayReport:
    day: str
    previous_day: str | None
    source: str = DEFAULT_SOURCE
    bands: dict[int, int] = field(default_factory=lambda: dict.fromkeys(BANDS, 0))
    ineligible: int = 0
    mean: float | None = None
    drops: list[dict[str, Any]] = field(default_factory=list)
    rises: list[dict[str, Any]] = field(default_factory=list)
    lowest: list[dict[str, Any]] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {
            "date": self.day,
            "source": self.source,
            "previous_date": self.previous_day,
            "subusers": sum(self.bands.values()) + self.ineligible,
            "bands": {str(band): count for band, count in self.bands.items()},
            "ineligible": self.ineligible,
            "mean_score": self.mean,
            "drops": self.drops,
            "rises": self.rises,
            "lowest": self.lowest,
        }


def build_report(
    day: str,
    lines: list[dict[str, Any]],
    previous: dict[str, Decimal] | None,
    *,
    limit: int,
    source: str = DEFAULT_SOURCE,
) -> DayReport:
    """The report of ``source``'s ``day`` from its lines and the previous exported day's scores
    by user id."""
    report = DayReport(day=day, previous_day=None, source=source)
    scored: list[tuple[Decimal, dict[str, Any]]] = []
    moves: list[tuple[Decimal, dict[str, Any]]] = []
    for line in lines:
        if line.get("score") is None:
            report.ineligible += 1
            continue
        score = Decimal(str(line["score"]))
        report.bands[band_of(score)] += 1
        scored.append((score, line))
        before = (previous or {}).get(str(line["user_id"]))
        if before is not None and score != before:
            moves.append((score - before, _entry(line, score, before)))
    if scored:
        report.mean = float(sum(score for score, _ in scored) / len(scored))
    report.lowest = [_entry(line, score) for score, line in sorted(scored, key=lambda pair: pair[0])[:limit]]
    report.drops = [entry for change, entry in sorted(moves, key=lambda pair: pair[0]) if change < 0][:limit]
    report.rises = [entry for change, entry in sorted(moves, key=lambda pair: -pair[0]) if change > 0][:limit]
    return report


def _entry(line: dict[str, Any], score: Decimal, before: Decimal | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "user_id": str(line["user_id"]),
        "username": line.get("username"),
        "score": json_number(score),
    }
    if before is not None:  # numbers as SendGrid sent them (1, not 1.0), as lookup answers them
        entry |= {"previous_score": json_number(before), "change": json_number(score - before)}
    return entry


@click.command("report", short_help="A day's fleet health per source: bands, mean, movers, lowest.")
@click.option(
    "--date", "day", type=Day(finished=True), default=default_day, help="The day to report.  [default: yesterday, UTC]"
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    default=10,
    show_default=True,
    help="Print only N rows per list.",
)
@source_option("Report this source only.  [default: every configured source, one report each]")
@shared_options
@with_app
def report(app: App, *, day: str, limit: int, source: str | None) -> int:
    """A day's fleet health from the lake, per source: subusers per score band and ineligible,
    the mean, the biggest drops and rises against the source's previous exported day, and the
    lowest scorers.

    Exits 1 when the day is not exported (of any asked source).
    """
    target = app.target
    chosen = target.chosen_sources(source)
    bucket = target.need("bucket")
    s3 = app.client("s3")
    titled = target.several_sources
    reports = {name: _source_report(app, s3, bucket, name, day, limit=limit) for name in chosen}
    documents = [
        result.document() if result is not None else {"date": day, "source": name, "exported": False}
        for name, result in reports.items()
    ]
    lines = sections(
        [
            (name, _lines(result) if result is not None else [f"not exported  subusers {day}: nothing to report"])
            for name, result in reports.items()
        ],
        titled=titled,
    )
    shown = Group(
        *(
            _tables(result, titled=titled)
            if result is not None
            else Text(f"{f'source {name}: ' if titled else ''}not exported  subusers {day}: nothing to report")
            for name, result in reports.items()
        )
    )
    app.output.answer(per_source(documents, day=day), lines, shown)
    return EXIT_OK if all(result is not None for result in reports.values()) else EXIT_NEGATIVE


def _source_report(app: App, s3: Any, bucket: str, source: str, day: str, *, limit: int) -> DayReport | None:
    """``source``'s report of ``day`` against its previous exported day; None when not exported."""
    prefix = app.target.prefix
    if head_object(s3, bucket, app.target.key_for(day, SUBUSERS, source)) is None:
        return None
    earlier = [d for d in exported_days(s3, bucket, prefix, source) if d < day]
    previous_day = earlier[-1] if earlier else None
    previous = None
    if previous_day is not None:
        previous = {
            str(line["user_id"]): Decimal(str(line["score"]))
            for line in day_lines(s3, bucket, prefix, source, previous_day)
            if line.get("score") is not None
        }
    result = build_report(day, list(day_lines(s3, bucket, prefix, source, day)), previous, limit=limit, source=source)
    result.previous_day = previous_day
    return result


def _lines(report: DayReport) -> list[str]:
    total = sum(report.bands.values()) + report.ineligible
    mean = f"{report.mean:.3f}" if report.mean is not None else "-"
    lines = [f"report        subusers {report.day}: {total} subusers, mean score {mean}"]
    lines += [f"band {band}        {count}" for band, count in report.bands.items()]
    lines.append(f"ineligible    {report.ineligible}")
    against = f"against {report.previous_day}" if report.previous_day else "(no earlier exported day)"
    for title, entries in (("drops", report.drops), ("rises", report.rises)):
        lines.append(f"{title:<13} {len(entries)} shown {against}")
        lines += [
            f"  {e['user_id']:<12} {e.get('username') or '-':<24} {e['previous_score']:g} -> {e['score']:g}"
            for e in entries
        ]
    lines.append(f"lowest        {len(report.lowest)} shown")
    lines += [f"  {e['user_id']:<12} {e.get('username') or '-':<24} {e['score']:g}" for e in report.lowest]
    return lines


def _tables(report: DayReport, *, titled: bool = False) -> Group:
    total = sum(report.bands.values()) + report.ineligible
    mean = f"{report.mean:.3f}" if report.mean is not None else "-"
    widest = max([*report.bands.values(), report.ineligible, 1])
    whose = f"source {report.source}: " if titled else ""
    bars = Table(title=Text(f"{whose}subusers {report.day}: {total} subusers, mean score {mean}"), title_justify="left")
    bars.add_column("band")
    bars.add_column("subusers", justify="right")
    bars.add_column("")
    for band, count in report.bands.items():
        bars.add_row(str(band), str(count), "█" * round(BAR_WIDTH * count / widest))
    bars.add_row("ineligible", str(report.ineligible), "░" * round(BAR_WIDTH * report.ineligible / widest))
    against = f"against {report.previous_day}" if report.previous_day else "(no earlier exported day)"
    moved = [
        table(
            f"{whose}biggest {title} {against}",
            ["user_id", "username", "before>", "now>", "change>"],
            [
                (e["user_id"], e.get("username"), f"{e['previous_score']:g}", f"{e['score']:g}", f"{e['change']:+g}")
                for e in entries
            ],
        )
        for title, entries in (("drops", report.drops), ("rises", report.rises))
    ]
    lowest = table(
        f"{whose}lowest scorers",
        ["user_id", "username", "score>"],
        [(e["user_id"], e.get("username"), f"{e['score']:g}") for e in report.lowest],
    )
    return Group(bars, *moved, lowest)
