"""``seq-export sources``: the stack's configured sources and, per source, the newest day of each
kind in the lake, from S3 listings (one LIST per 1,000 days of a source and kind).

A source with folders in the lake but no longer configured is listed too, marked, so an
operator sees every source the tables read. Against a deployed stack the function's own
configuration is held against the stack's ``SourceNames`` (the Glue tables' source partitions): a
source the function exports but the tables do not project is invisible to Athena, and the
command says so and exits 1. Days still in the layout from before sources
existed are counted and point at ``seq-export migrate-lake``.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Group
from rich.text import Text

from seq_export.models import KINDS
from seq_export_cli.app import App, with_app
from seq_export_cli.errors import EXIT_NEGATIVE, EXIT_OK
from seq_export_cli.options import shared_options
from seq_export_cli.output import table
from seq_export_cli.s3_objects import exported_days, lake_sources, legacy_objects, require_bucket


@click.command("sources", short_help="The configured sources and each one's newest exported day per kind.")
@shared_options
@with_app
def sources(app: App) -> int:
    """The configured sources (the stack's SourceNames output, or SEQ_SOURCES) and, per source,
    the newest exported day and the number of exported days of each kind, from the lake's
    listings. Sources found in the lake but not configured are listed too, marked.

    Exits 0; 1 when the function exports a source the stack's SourceNames (the Athena tables'
    sources) lacks, or the reverse.
    """
    target = app.target
    bucket = target.need("bucket")
    s3 = app.client("s3")
    require_bucket(s3, bucket)
    in_lake = {name for kind in KINDS for name in lake_sources(s3, bucket, target.prefix_for(kind))}
    names = [*target.sources, *sorted(in_lake - set(target.sources))]
    entries: list[dict[str, Any]] = []
    for name in names:
        entry: dict[str, Any] = {"source": name, "configured": name in target.sources}
        for kind in KINDS:
            days = exported_days(s3, bucket, target.prefix_for(kind), name)
            entry[kind] = {"newest": days[-1] if days else None, "days": len(days)}
        entries.append(entry)
    legacy = {kind: len(legacy_objects(s3, bucket, target.prefix_for(kind))) for kind in KINDS}
    document = {
        "bucket": bucket,
        "configured_from": target.sources_from,
        "sources": entries,
        "legacy_days": legacy,
    }
    drift = _drift(app)
    document["not_in_source_names"], document["not_in_function"] = drift
    notes = [
        f"mismatch      the function exports {name} but the stack's SourceNames (ExtraSourceNames) lacks it: "
        "Athena cannot see its days; add it to ExtraSourceNames, in the same order as ExtraSources"
        for name in drift[0]
    ] + [
        f"mismatch      SourceNames lists {name} but the function does not export it: remove it from "
        "ExtraSourceNames or add it to ExtraSources"
        for name in drift[1]
    ]
    if target.stack is not None and target.function_name is not None and app.function_sources() is None:
        notes.append(
            f"not compared  the function {target.function_name}'s sources could not be read "
            "(lambda:GetFunctionConfiguration): the stack's SourceNames were not held against them"
        )
    notes += [
        f"legacy        {kind}: {count} day{'' if count == 1 else 's'} under {target.prefix_for(kind)} in the layout "
        "from before sources: `seq-export migrate-lake` moves them under a source"
        for kind, count in legacy.items()
        if count
    ]
    width = max(13, *(len(name) for name in names))
    lines = [f"{'sources':<{width}} {', '.join(target.sources)} ({target.sources_from})"]
    lines += [
        f"{e['source']:<{width}} "
        + "  ".join(f"{kind} {_newest(e[kind])}" for kind in KINDS)
        + ("" if e["configured"] else "  (not configured)")
        for e in entries
    ]
    rows = [
        (
            e["source"],
            "yes" if e["configured"] else "no",
            *(value for kind in KINDS for value in (e[kind]["newest"], e[kind]["days"])),
        )
        for e in entries
    ]
    columns = ["source", "configured", *(name for kind in KINDS for name in (f"{kind} newest", f"{kind} days>"))]
    shown = table(f"sources in s3://{bucket}: {', '.join(target.sources)} ({target.sources_from})", columns, rows)
    app.output.answer(document, lines + notes, Group(shown, *(Text(note) for note in notes)))
    return EXIT_NEGATIVE if any(drift) else EXIT_OK


def _drift(app: App) -> tuple[list[str], list[str]]:
    """(exported by the function but not in SourceNames, in SourceNames but not exported), when
    the function's configuration can be read; nothing to compare otherwise."""
    configured = app.function_sources()
    if configured is None or app.target.stack is None:
        return [], []
    exported = [source.name for source in configured]
    return [n for n in exported if n not in app.target.sources], [n for n in app.target.sources if n not in exported]


def _newest(found: dict[str, Any]) -> str:
    if not found["days"]:
        return "none exported"
    return f"newest {found['newest']} ({found['days']} day{'s' if found['days'] != 1 else ''})"
