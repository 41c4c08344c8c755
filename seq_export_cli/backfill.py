"""``seq-export backfill``: export a range of days, one queued export per day and kind.

The function checks the range and queues the days; the CLI says, per day and kind, what it
queued and what it skipped as already exported, with counts that add up to days x kinds. With
``--wait`` it follows the queued days until their objects are in S3 (``waiting``); with
``--local`` it also delivers the queue, one day at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from seq_export.dates import days_between, parse_day
from seq_export_cli.app import App, with_app
from seq_export_cli.errors import EXIT_NEGATIVE, EXIT_OK, UsageError
from seq_export_cli.invoke import invoke_local
from seq_export_cli.options import KINDS, Day, local_options, shared_options, wait_options
from seq_export_cli.output import table
from seq_export_cli.s3_objects import Version, head_version, require_bucket
from seq_export_cli.waiting import (
    DayWatcher,
    Outcome,
    deliver_locally,
    label,
    poll_until_exported,
)


@click.command("backfill", short_help="Export a range of days, one queued export per day.")
@click.option("--from", "first", type=Day(exportable=True), required=True, help="First day.")
@click.option("--to", "last", type=Day(exportable=True), required=True, help="Last day (inclusive).")
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    default="all",
    show_default=True,
    help="Whose days: the subusers', the parent account's own, or every kind the stack exports.",
)
@click.option("--force", is_flag=True, help="Export days again even if already exported.")
@wait_options("Wait until every queued day's object is in S3, with progress on stderr.")
@local_options
@shared_options
@with_app
def backfill(
    app: App, *, first: str, last: str, kind: str, force: bool, wait: bool, timeout: float, local: bool
) -> int:
    """Export a range of finished days within SendGrid's 90 (one queued export per day and kind).

    Days already exported are skipped unless --force. With --local --wait this process also
    delivers the retry queue's messages, one day at a time.
    """
    if first > last:
        raise UsageError(f"--from {first} is after --to {last}")
    event: dict[str, Any] = {"from": first, "to": last}
    if force:
        event["force"] = True
    if kind != "all":
        event["kind"] = kind
    app.check_local(local)
    baseline = _versions_before(app, first, last, kind) if wait and force else {}
    answer = invoke_local(event, verbose=app.options.verbose) if local else app.invoke(event)
    queued = _by_day_and_kind(answer)
    document = _document(answer, queued)
    if not wait or not app.output.json:  # what was queued, before any wait
        app.output.answer(document, _lines(answer, queued), _table(answer, queued))
    if not wait:
        return EXIT_OK
    outcome, watcher = _wait(app, queued, baseline, local=local, timeout=timeout)
    missing = watcher.pending
    waited = {"outcome": outcome, "queued": len(watcher.days), "exported": len(watcher.exported), "missing": missing}
    app.output.answer(
        document | {"wait": waited},
        [f"exported          {len(watcher.exported)}/{len(watcher.days)} queued days ({first} .. {last})"],
    )
    if not missing:
        return EXIT_OK
    why = (
        f"within {timeout:g} s"
        if outcome == "timeout"
        else "and the retry queue has nothing left for them (failed, given up or handled before: "
        "see the dead-letter queue and --verbose)"
    )
    app.output.note(f"{len(missing)} of {len(watcher.days)} queued days not exported {why}: {', '.join(missing)}")
    return EXIT_NEGATIVE


def _by_day_and_kind(answer: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(day, kind, what happened) from the function's answer, by day then kind."""
    rows = [(*_split(item), "enqueued") for item in answer.get("enqueued", [])]
    rows += [(*_split(item), "already exported") for item in answer.get("skipped_already_exported", [])]
    order = {name: index for index, name in enumerate(KINDS)}
    return sorted(rows, key=lambda row: (row[0], order.get(row[1], len(order))))


def _split(item: str) -> tuple[str, str]:
    kind, _, day = item.partition(":")
    return day, kind


def _document(answer: Mapping[str, Any], queued: list[tuple[str, str, str]]) -> dict[str, Any]:
    return {
        **answer,
        "counts": {
            "enqueued": sum(1 for row in queued if row[2] == "enqueued"),
            "skipped_already_exported": sum(1 for row in queued if row[2] != "enqueued"),
        },
        "by_day": [{"date": day, "kind": kind, "outcome": outcome} for day, kind, outcome in queued],
    }


def _lines(answer: Mapping[str, Any], queued: list[tuple[str, str, str]]) -> list[str]:
    enqueued = sum(1 for row in queued if row[2] == "enqueued")
    skipped = len(queued) - enqueued
    kinds = sorted({row[1] for row in queued})
    lines = [f"{outcome:<17} {kind:<9} {day}" for day, kind, outcome in queued]
    lines.append(
        f"{answer.get('days')} days x {len(kinds)} kinds ({', '.join(kinds) or '-'}), {answer.get('from')} .. "
        f"{answer.get('to')}: {enqueued} enqueued, {skipped} already exported"
        + (" (--force exports them again)" if skipped else "")
    )
    return lines


def _table(answer: Mapping[str, Any], queued: list[tuple[str, str, str]]) -> Any:
    return table(
        f"backfill {answer.get('from')} .. {answer.get('to')}: {_lines(answer, queued)[-1].split(': ', 1)[-1]}",
        ["date", "kind", "outcome"],
        queued,
    )


def _versions_before(app: App, first: str, last: str, kind: str) -> dict[str, Version]:
    """With --force, each day's object before the backfill: it counts once replaced."""
    bucket = app.target.need("bucket")
    s3 = app.client("s3")
    require_bucket(s3, bucket)
    kinds = KINDS[:2] if kind == "all" else (kind,)
    versions: dict[str, Version] = {}
    for day in days_between(parse_day(first), parse_day(last)):
        for one_kind in kinds:
            version = head_version(s3, bucket, app.target.key_for(day, one_kind))
            if version is not None:
                versions[label(day, one_kind)] = version
    return versions


def _wait(
    app: App, queued: list[tuple[str, str, str]], baseline: Mapping[str, Version], *, local: bool, timeout: float
) -> tuple[Outcome, DayWatcher]:
    bucket = app.target.need("bucket")
    s3 = app.client("s3")
    require_bucket(s3, bucket)
    keys = {label(day, kind): app.target.key_for(day, kind) for day, kind, outcome in queued if outcome == "enqueued"}
    watcher = DayWatcher(s3, bucket, keys, baseline)
    with app.output.progress(len(keys), "queued days exported") as progress:
        if local:
            outcome = deliver_locally(app, watcher, progress, timeout=timeout)
        else:
            outcome = poll_until_exported(watcher, progress, timeout=timeout, clock=app.clock, sleep=app.sleep)
    return outcome, watcher
