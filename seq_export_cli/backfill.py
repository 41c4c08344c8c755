"""``seq-export backfill``: export a range of days, one queued export per source, kind and day.

The function checks the range and queues the days (of every source, or of ``--source``); the
CLI says, per day, source and kind, what it queued and what it skipped, as already exported or
as already queued (by an earlier backfill still running, the daily run, ...), with counts that
add up to days x kinds x sources. With ``--wait`` it follows the queued days, and the ones
already queued, until their objects land in S3 or one of them reaches the dead-letter queue
(``waiting``); with ``--local`` it also delivers the queue, one day at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from seq_export.dates import days_between, parse_day
from seq_export.job_message import JobId
from seq_export.models import KINDS
from seq_export_cli.app import App, with_app
from seq_export_cli.errors import EXIT_NEGATIVE, EXIT_OK, ServiceError, UsageError
from seq_export_cli.invoke import invoke_local
from seq_export_cli.options import (
    ALL_KINDS,
    KIND_CHOICES,
    Day,
    local_options,
    shared_options,
    source_option,
    wait_options,
)
from seq_export_cli.output import counted, table
from seq_export_cli.s3_objects import Version
from seq_export_cli.waiting import follow, versions_before


@click.command("backfill", short_help="Export a range of days, one queued export per source, kind and day.")
@click.option("--from", "first", type=Day(exportable=True), required=True, help="First day.")
@click.option("--to", "last", type=Day(exportable=True), required=True, help="Last day (inclusive).")
@click.option(
    "--kind",
    type=click.Choice(KIND_CHOICES),
    default=ALL_KINDS,
    show_default=True,
    help="Whose days: the subusers', the parent account's own, or every kind the stack exports.",
)
@source_option("Backfill this source only.  [default: every configured source]")
@click.option("--force", is_flag=True, help="Export days again even if already exported.")
@wait_options(
    "Wait until every queued day's object lands in S3 (the days already queued too), with progress on "
    "stderr; a day that reaches the dead-letter queue ends the wait (exit 1)."
)
@local_options
@shared_options
@with_app
def backfill(
    app: App,
    *,
    first: str,
    last: str,
    kind: str,
    source: str | None,
    force: bool,
    wait: bool,
    timeout: float,
    local: bool,
) -> int:
    """Export a range of finished days within SendGrid's 90 (one queued export per source, kind
    and day).

    Days already exported, or already queued or running, are skipped unless --force. With
    --local --wait this process also delivers the retry queue's messages, one day at a time.
    """
    if first > last:
        raise UsageError(f"--from {first} is after --to {last}")
    event: dict[str, Any] = {"from": first, "to": last}
    if force:
        event["force"] = True
    if kind != ALL_KINDS:
        event["kind"] = kind
    app.check_local(local)
    chosen = app.target.chosen_sources(source)
    if source is not None:
        event["source"] = source
    baseline: dict[JobId, Version] = {}
    if wait:  # before anything is queued: what the wait needs, and each day's object as it is now
        app.dead_letter_queue_url()
        baseline = versions_before(app, _range(app, first, last, kind, chosen))
    answer = invoke_local(event, verbose=app.options.verbose) if local else app.invoke(event)
    queued = _queued(app, answer)
    document = _document(answer, queued)
    titled = app.target.several_sources
    if not wait or not app.output.json:  # what was queued, before any wait
        app.output.answer(document, _lines(answer, queued, titled=titled), _table(answer, queued, titled=titled))
    if not wait:
        return EXIT_OK
    outcome, watcher, dead_letters = follow(
        app, _followed(answer, queued), baseline, local=local, timeout=timeout, label="queued days exported"
    )
    missing = watcher.pending
    waited = {
        "outcome": outcome,
        "queued": len(watcher.days),
        "exported": len(watcher.exported),
        "missing": [job.to_dict() for job in missing],
        "dead_lettered": [letter.to_dict() for letter in dead_letters.found.values()],
    }
    app.output.answer(
        document | {"wait": waited},
        [f"exported          {len(watcher.exported)}/{len(watcher.days)} queued days ({first} .. {last})"],
    )
    for job, letter in dead_letters.found.items():
        app.output.note(f"{job} is in the dead-letter queue: {letter.why}")
    if not missing:
        return EXIT_OK
    why = {
        "timeout": f"within {timeout:g} s",
        "dead_lettered": "(the wait stopped at the dead letter)",
        "queue_empty": "and the retry queue has nothing left for them (failed, given up or handled before: "
        "see the dead-letter queue and --verbose)",
    }.get(outcome, "")
    app.output.note(
        f"{len(missing)} of {len(watcher.days)} queued days not exported {why}: "
        + ", ".join(_named(job, titled=titled) for job in missing)
    )
    return EXIT_NEGATIVE


#: (what the function queued or skipped: "enqueued", "already exported" or "already queued")
Row = tuple[JobId, str]
ENQUEUED, EXPORTED, QUEUED = "enqueued", "already exported", "already queued"


def _queued(app: App, answer: Mapping[str, Any]) -> list[Row]:
    """What the function's answer lists, by day, then source (as configured), then kind."""
    rows = [(_job(item), ENQUEUED) for item in answer.get("enqueued", [])]
    rows += [(_job(item), EXPORTED) for item in answer.get("skipped_already_exported", [])]
    rows += [(_job(item), QUEUED) for item in answer.get("skipped_already_queued", [])]
    sources = {name: index for index, name in enumerate(app.target.sources)}
    kinds = {name: index for index, name in enumerate(KINDS)}
    return sorted(
        rows,
        key=lambda row: (
            row[0].date,
            sources.get(row[0].source, len(sources)),
            row[0].source,
            kinds.get(row[0].kind, len(kinds)),
        ),
    )


def _job(item: Any) -> JobId:
    """One entry of the function's backfill summary, ``{"source", "kind", "date"}``."""
    if not isinstance(item, Mapping) or not all(isinstance(item.get(name), str) for name in ("source", "kind", "date")):
        raise ServiceError(f'the function\'s backfill summary lists {item!r}, not {{"source", "kind", "date"}}')
    return JobId(source=item["source"], kind=item["kind"], date=item["date"])


def _named(job: JobId, *, titled: bool) -> str:
    """A queued day as lines name it: its kind and day, and its source on a stack of several."""
    return str(job) if titled else f"{job.kind} {job.date}"


def _followed(answer: Mapping[str, Any], queued: list[Row]) -> dict[JobId, str | None]:
    """What ``--wait`` follows, each with the run that queued it: the jobs this backfill queued
    (its ``run``) and the ones already queued (the run holding each; a function that does not
    name runs leaves them None: no dead letter is matched to them)."""
    run = answer.get("run") if isinstance(answer.get("run"), str) else None
    holders = {
        _job(item): item.get("run") if isinstance(item.get("run"), str) else None
        for item in answer.get("skipped_already_queued", [])
    }
    return {job: run if outcome == ENQUEUED else holders.get(job) for job, outcome in queued if outcome != EXPORTED}


#: The function's lists by outcome: the document lists each day once, in ``by_day``, instead.
_LISTS = ("enqueued", "skipped_already_exported", "skipped_already_queued")


def _document(answer: Mapping[str, Any], queued: list[Row]) -> dict[str, Any]:
    """The function's answer with one list of days, each an object with its outcome (and, for a
    day already queued, the run holding it), in place of its three lists by outcome."""
    holders = {_job(item): item.get("run") for item in answer.get("skipped_already_queued", [])}
    return {
        **{name: value for name, value in answer.items() if name not in _LISTS},
        "counts": {
            "enqueued": sum(1 for _, outcome in queued if outcome == ENQUEUED),
            "skipped_already_exported": sum(1 for _, outcome in queued if outcome == EXPORTED),
            "skipped_already_queued": sum(1 for _, outcome in queued if outcome == QUEUED),
        },
        "by_day": [
            job.to_dict() | {"outcome": outcome} | ({"run": holders.get(job)} if outcome == QUEUED else {})
            for job, outcome in queued
        ],
    }


def _totals(answer: Mapping[str, Any], queued: list[Row], *, titled: bool) -> str:
    kinds = sorted({job.kind for job, _ in queued})
    sources = list(dict.fromkeys(job.source for job, _ in queued))
    across = f" x {counted(len(sources), 'source')} ({', '.join(sources)})" if titled else ""
    return (
        f"{counted(answer.get('days'), 'day')} x {counted(len(kinds), 'kind')} ({', '.join(kinds) or '-'}){across}, "
        f"{answer.get('from')} .. "
        f"{answer.get('to')}: {_counts(queued)}"
    )


def _counts(queued: list[Row]) -> str:
    """How many were queued and skipped (the already queued named only when there are any)."""
    enqueued = sum(1 for _, outcome in queued if outcome == ENQUEUED)
    exported = sum(1 for _, outcome in queued if outcome == EXPORTED)
    running = sum(1 for _, outcome in queued if outcome == QUEUED)
    counts = f"{enqueued} enqueued, {exported} already exported" + (f", {running} already queued" if running else "")
    return counts + (" (--force exports them again)" if exported or running else "")


def _lines(answer: Mapping[str, Any], queued: list[Row], *, titled: bool) -> list[str]:
    width = max((len(job.source) for job, _ in queued), default=0)
    lines = [
        f"{outcome:<17} " + (f"{job.source:<{width}}  " if titled else "") + f"{job.kind:<9} {job.date}"
        for job, outcome in queued
    ]
    return [*lines, _totals(answer, queued, titled=titled)]


def _table(answer: Mapping[str, Any], queued: list[Row], *, titled: bool) -> Any:
    columns = ["date", *(["source"] if titled else []), "kind", "outcome"]
    rows = [(job.date, *([job.source] if titled else []), job.kind, outcome) for job, outcome in queued]
    return table(f"backfill {answer.get('from')} .. {answer.get('to')}: {_counts(queued)}", columns, rows)


def _range(app: App, first: str, last: str, kind: str, sources: tuple[str, ...]) -> list[JobId]:
    """Every job the backfill may queue: each day of the range, of each source and kind."""
    return [
        JobId(source, one_kind, day)
        for day in days_between(parse_day(first), parse_day(last))
        for source in sources
        for one_kind in app.kinds_of(source, kind)
    ]
