"""``seq-export run``: export one day now (yesterday by default, as the schedule does) and say
what happened, per source and kind: one direct invocation each, since the function exports one
source's day per invocation (``--source``: that source only). ``--local`` runs the handler in
this process, with page progress on a terminal; ``--local --wait`` also delivers the
re-scheduled attempts a 202 leaves in the retry queue (there is no Lambda event source locally)
until the day is exported or given up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from seq_export.job_message import JobId
from seq_export.layout import RECORDS_METADATA
from seq_export.models import ACCOUNT
from seq_export_cli.app import App, with_app
from seq_export_cli.errors import EXIT_NEGATIVE, EXIT_OK, CliError, ServiceError, UsageError
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
from seq_export_cli.output import per_source, sections
from seq_export_cli.s3_objects import head_object
from seq_export_cli.waiting import DayWatcher, Outcome, deliver_locally


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
    if status == "not_ready" and summary.get("wait"):
        why = "--timeout passed" if summary["wait"] == "timeout" else "the retry queue has nothing left for it"
        return [f"not ready     {what}: not exported when --wait stopped ({why}; see the dead-letter queue)"]
    if status == "exported" and kind == ACCOUNT:
        scored = "not eligible for a score that day" if summary.get("ineligible") else "its score"
        return [f"exported      {what}: the parent account's own line ({scored})", f"S3 object     {where}"]
    if status == "exported":
        return [
            f"exported      {what}: {summary.get('records')} records ({summary.get('ineligible')} ineligible) "
            f"from {summary.get('pages')} pages",
            f"S3 object     {where} ({summary.get('bytes')} bytes)",
            f"DynamoDB      {summary.get('latest_written')} latest scores written, "
            f"{summary.get('latest_kept_newer')} kept a newer day",
        ]
    if status == "not_ready":
        return [
            f"not ready     {what}: SendGrid is still computing the day (202); attempt "
            f"{summary.get('next_attempt')} is queued in {summary.get('next_attempt_delay_seconds')} s"
        ]
    if status == "continued":
        return [f"continued     {what}: handed to a fresh invocation after {summary.get('pages')} pages"]
    if status == "failed":
        return [f"failed        {what}: {summary.get('error')}"]
    if status == "gave_up":
        return [f"gave up       {what}: SendGrid kept answering 202; the day went to the dead-letter queue"]
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
@wait_options("With --local: when SendGrid answers 202, deliver the queued retries until the day is exported.")
@shared_options
@with_app
def run(app: App, *, day: str, kind: str, source: str | None, local: bool, wait: bool, timeout: float) -> int:
    """Export one day now and say what happened, per source and kind.

    Exits 0 when every asked source and kind is exported; 1 when SendGrid is still computing the
    day (202, re-scheduled) or it was given up; 4 when the function failed for one (the other
    sources are still exported and reported).
    """
    if wait and not local:
        raise UsageError("--wait delivers the local retry queue and needs --local (a deployed function retries itself)")
    app.check_local(local)
    target = app.target
    chosen = target.chosen_sources(source)
    jobs = [JobId(name, one_kind, day) for name in chosen for one_kind in app.kinds_of(name, kind)]
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
    waited = [job for job, summary in results.items() if summary.get("status") == "not_ready"]
    if wait and waited:
        app.output.note(
            f"{day} ({', '.join(_named(app, job) for job in waited)}): SendGrid answered 202; "
            "delivering the queued retries"
        )
        outcome = _deliver(app, waited, timeout)
        results = {job: _after_wait(app, job, summary, outcome) for job, summary in results.items()}
    bucket = target.bucket
    by_source = {name: [(job, s) for job, s in results.items() if job.source == name] for name in chosen}
    documents = [_document(day, name, [s for _, s in found]) for name, found in by_source.items()]
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
    if local and any(s.get("status") == "not_ready" for s in unfinished):
        app.output.note(
            "nothing delivers the retry queue locally: `seq-export run --local --wait` "
            f"(or `backfill --local --wait`) exports {day} once SendGrid is ready"
        )
    return EXIT_NEGATIVE


def _document(day: str, source: str, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One source's answer: the function's summary of its one kind, or of each kind."""
    if len(summaries) == 1:
        return summaries[0] if "source" in summaries[0] else {"source": source} | summaries[0]
    return {"date": day, "source": source, "kinds": summaries}


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
            on_page=lambda pages, records: progress.update(pages, f"({records} records)"),
        )


def _deliver(app: App, jobs: list[JobId], timeout: float) -> Outcome:
    bucket = app.target.need("bucket")
    watcher = DayWatcher(
        app.client("s3"), bucket, {job: app.target.key_for(job.date, job.kind, job.source) for job in jobs}, {}
    )
    with app.output.progress(len(jobs), "days exported") as progress:
        return deliver_locally(app, watcher, progress, timeout=timeout)


def _after_wait(app: App, job: JobId, summary: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    """A day that was not ready, as S3 has it once the queued retries were delivered."""
    if summary.get("status") != "not_ready":
        return summary
    key = app.target.key_for(job.date, job.kind, job.source)
    head = head_object(app.client("s3"), app.target.need("bucket"), key)
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
    }
