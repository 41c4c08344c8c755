"""``seq-export run``: export one day now (yesterday by default, as the schedule does) and say
what happened, per source and kind: one direct invocation each, since the function exports one
source's day per invocation (``--source``: that source only). ``--local`` runs the handler in
this process, with page progress on a terminal. ``--wait`` follows a day the function could not
finish at once (SendGrid answered 202, or it continued past the time limit) until its object
lands in S3 or it reaches the dead-letter queue (``waiting``): against a deployed stack by
polling, as its event source delivers the re-scheduled attempts; with ``--local`` by delivering
the retry queue in this process (there is no Lambda event source locally).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from seq_export.job_message import JobId
from seq_export.layout import RECORDS_METADATA
from seq_export.models import ACCOUNT
from seq_export_cli.app import App, with_app
from seq_export_cli.dead_letters import DeadLetter
from seq_export_cli.errors import EXIT_NEGATIVE, EXIT_OK, CliError, ServiceError
from seq_export_cli.invoke import invoke_local
from seq_export_cli.options import (
    Day,
    default_day,
    kind_option,
    local_options,
    shared_options,
    source_option,
    wait_options,
)
from seq_export_cli.output import counted, per_source, sections
from seq_export_cli.s3_objects import Version, head_object
from seq_export_cli.waiting import DayWatcher, Outcome, follow, versions_before

#: What the function answers for a day it has not finished yet: it is queued, so --wait follows it.
UNFINISHED = ("not_ready", "continued")


def summary_lines(summary: Mapping[str, Any], bucket: str | None = None) -> list[str]:
    """What the function answered, in words: what happened to which day and kind."""
    status = summary.get("status")
    kind = summary.get("kind") or "subusers"
    what = f"{kind} {summary.get('date')}"
    where = summary.get("s3_key")
    if where and bucket:
        where = f"s3://{bucket}/{where}"
    if status == "exported" and summary.get("from_retry_queue"):
        return [
            f"exported      {what}: {summary.get('records')} records, by a retry delivered from the queue "
            "once SendGrid was ready",
            f"S3 object     {where} ({summary.get('bytes')} bytes)",
        ]
    if status in UNFINISHED and summary.get("wait") == "dead_lettered":
        letter = summary.get("dead_letter") or {}
        return [f"dead letter   {what}: in the dead-letter queue ({letter.get('why')}); --wait stopped there"]
    if status in UNFINISHED and summary.get("wait"):
        why = "--timeout passed" if summary["wait"] == "timeout" else "the retry queue has nothing left for it"
        return [f"not exported  {what}: not exported when --wait stopped ({why}; see the dead-letter queue)"]
    if status == "exported" and kind == ACCOUNT:
        scored = "not eligible for a score that day" if summary.get("ineligible") else "its score"
        return [f"exported      {what}: the parent account's own line ({scored})", f"S3 object     {where}"]
    if status == "exported":
        return [
            f"exported      {what}: {counted(summary.get('records'), 'record')} "
            f"({summary.get('ineligible')} ineligible) from {counted(summary.get('pages'), 'page')}",
            f"S3 object     {where} ({counted(summary.get('bytes'), 'byte')})",
            f"DynamoDB      {summary.get('latest_written')} latest scores written, "
            f"{summary.get('latest_kept_newer')} kept a newer day",
        ]
    if status == "not_ready":
        return [
            f"not ready     {what}: SendGrid is still computing the day (202); attempt "
            f"{summary.get('next_attempt')} is queued in {summary.get('next_attempt_delay_seconds')} s"
        ]
    if status == "continued":
        return [f"continued     {what}: handed to a fresh invocation after {counted(summary.get('pages'), 'page')}"]
    if status == "failed":
        return [f"failed        {what}: {summary.get('error')}"]
    if status == "gave_up":
        return [
            f"gave up       {what}: SendGrid still answered 202 at attempt {summary.get('attempt')}, the last; "
            "the dead-letter message is the job anew, at attempt 1"
        ]
    return [f"{status or 'answered'}      {what}: {dict(summary)}"]


@click.command("run", short_help="Export one day now (yesterday by default), of every source.")
@click.option(
    "--date",
    "day",
    type=Day(exportable=True),
    default=default_day,
    help="The day to export: a finished UTC day within SendGrid's 90 days.  [default: yesterday, UTC]",
)
@kind_option("Whose scores: the subusers', the parent account's own, or both.")
@source_option("Export this source only.  [default: every configured source, one invocation each]")
@local_options
@wait_options(
    "When SendGrid answers 202 (or the day continues past the time limit), follow it until its object lands in "
    "S3 (with --local: deliver the queued retries); a day that reaches the dead-letter queue ends the wait."
)
@shared_options
@with_app
def run(app: App, *, day: str, kind: str, source: str | None, local: bool, wait: bool, timeout: float) -> int:
    """Export one day now and say what happened, per source and kind.

    Exits 0 when every asked source and kind is exported; 1 when SendGrid is still computing the
    day (202, re-scheduled), it was given up, or --wait saw it dead-lettered or ran out; 4 when
    the function failed for one (the other sources are still exported and reported).
    """
    app.check_local(local)
    target = app.target
    chosen = target.chosen_sources(source)
    jobs = [JobId(name, one_kind, day) for name in chosen for one_kind in app.kinds_of(name, kind)]
    baseline: dict[JobId, Version] = {}
    if wait:  # before anything is exported: what the wait needs, and each object as it is now
        app.dead_letter_queue_url()
        baseline = versions_before(app, jobs)
    results: dict[JobId, dict[str, Any]] = {}
    failures: list[CliError] = []
    for job in jobs:  # one source failing does not keep the others from being exported
        try:
            results[job] = _export(app, job, local=local)
        except ServiceError as exc:
            if len(jobs) == 1:
                raise
            failures.append(exc)
            results[job] = {"status": "failed", **job.to_dict(), "error": str(exc)}
    waited = {job: summary for job, summary in results.items() if summary.get("status") in UNFINISHED}
    if wait and waited:
        how = "delivering the queued retries" if local else "following it until it is exported"
        app.output.note(f"{day} ({', '.join(_named(app, job) for job in waited)}): {_unfinished(waited)}; {how}")
        followed = {
            job: summary.get("run") if isinstance(summary.get("run"), str) else None for job, summary in waited.items()
        }
        outcome, watcher, dead_letters = follow(
            app, followed, baseline, local=local, timeout=timeout, label="days exported"
        )
        results = {
            job: _after_wait(app, job, summary, outcome=outcome, watcher=watcher, letter=dead_letters.found.get(job))
            for job, summary in results.items()
        }
        for job, letter in dead_letters.found.items():
            app.output.note(f"{job} is in the dead-letter queue: {letter.why}")
    bucket = target.bucket
    by_source = {name: [(job, s) for job, s in results.items() if job.source == name] for name in chosen}
    documents = [_document(name, [s for _, s in found]) for name, found in by_source.items()]
    lines = sections(
        [(name, [line for _, s in found for line in summary_lines(s, bucket)]) for name, found in by_source.items()],
        titled=target.several_sources,
    )
    app.output.answer(per_source(documents, day=day), lines)
    if failures:
        return failures[0].exit_code
    unfinished = [s for s in results.values() if s.get("status") != "exported"]
    if not unfinished:
        return EXIT_OK
    if local and not wait and any(s.get("status") == "not_ready" for s in unfinished):
        app.output.note(
            "nothing delivers the retry queue locally: `seq-export run --local --wait` "
            f"(or `backfill --local --wait`) exports {day} once SendGrid is ready"
        )
    return EXIT_NEGATIVE


def _document(source: str, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One source's answer: the function's summary of each kind (one kind or several alike)."""
    return {"source": source, "kinds": summaries}


def _named(app: App, job: JobId) -> str:
    """A job as the CLI's lines name it: its kind, and its source on a stack of several."""
    return f"{job.source} {job.kind}" if app.target.several_sources else job.kind


def _export(app: App, job: JobId, *, local: bool) -> dict[str, Any]:
    event: dict[str, Any] = {"date": job.date, "source": job.source}
    if job.kind == ACCOUNT:
        event["kind"] = ACCOUNT
    if not local:
        return app.invoke(event)
    with app.output.progress(None, f"{_named(app, job)} {job.date}, pages fetched") as progress:
        return invoke_local(
            event,
            verbose=app.options.verbose,
            on_page=lambda fetched: progress.update(fetched.page, f"({fetched.records} records)"),
        )


def _unfinished(waited: Mapping[JobId, Mapping[str, Any]]) -> str:
    statuses = {summary.get("status") for summary in waited.values()}
    if statuses == {"continued"}:
        return "the day continues in a fresh invocation"
    return "SendGrid answered 202"


def _after_wait(
    app: App,
    job: JobId,
    summary: dict[str, Any],
    *,
    outcome: Outcome,
    watcher: DayWatcher,
    letter: DeadLetter | None,
) -> dict[str, Any]:
    """A day that was not finished, as the wait left it: exported (its object landed during the
    wait), in the dead-letter queue, or still not exported."""
    if summary.get("status") not in UNFINISHED:
        return summary
    if letter is not None:
        return summary | {"wait": "dead_lettered", "dead_letter": letter.to_dict()}
    key = app.target.key_for(job.date, job.kind, job.source)
    head = head_object(app.client("s3"), app.target.need("bucket"), key) if job in watcher.exported else None
    if head is None:
        return summary | {"wait": outcome}
    records = head.get("Metadata", {}).get(RECORDS_METADATA, "")
    return {
        "status": "exported",
        "source": job.source,
        "date": job.date,
        "kind": job.kind,
        "records": int(records) if records.isdigit() else None,
        "s3_key": key,
        "bytes": head["ContentLength"],
        "from_retry_queue": True,
        "run": summary.get("run"),
    }
