"""What ``python -m local.run`` invokes and delivers: the real handler with the run's events (a
scheduled one, or one ``{"date": D}`` per source), then the retry queue, delivered to the handler
as Lambda's SQS event source would (``seq_export_cli.local_lambda.deliver_until``) until nothing
is visible or delayed on it. One line per invocation and per delivered message says which job it
was and what became of it: from the summary an invocation answers, and for a queued job from what
the function tells of it (``seq_export.progress.JobEnded``), never from its log lines.
"""

from __future__ import annotations

import json
import sys
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import boto3

from local.report import job_line, outcome_text, report
from local.stack import LocalStack, Resources
from seq_export.dates import yesterday_utc
from seq_export.models import ACCOUNT
from seq_export.progress import JobEnded
from seq_export_cli.invoke import invoke_local
from seq_export_cli.local_lambda import Delivery, SqsEventSource, deliver_until


def export(stack: LocalStack, date: str | None, *, verbose: bool) -> tuple[int, str]:
    """Invoke the handler, deliver the retry queue, report; returns the exit code and the day."""
    names = [source.name for source in stack.sources]
    named = len(names) > 1
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    events: list[dict[str, Any]] = [{"scheduled_time": now}]
    if date:
        events = [{"date": date, "source": name} for name in names] if named else [{"date": date}]
    for event in events:
        print(f"invoke        {json.dumps(event)}")
        try:
            summary = invoke_local(event, verbose=verbose)
        except Exception as exc:  # noqa: BLE001 - a person reads this, not a program
            print(f"FAILED        {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1, date or yesterday_utc().isoformat()
        print(f"answer        {json.dumps(summary)}")
        print(f"outcome       {job_line(summary, summary, named=named)}")
    accounts = deliver_queue(stack.resources, verbose=verbose, named=named)
    notes = {}
    for source in stack.sources:
        if not source.plan.account_scores:
            notes[source.name] = f"not exported: source {source.name} has account_scores off"
        elif source.name in accounts:
            notes[source.name] = f"not exported; its last job: {accounts[source.name]}"
        elif date:
            notes[source.name] = 'not exported: a {"date": D} event exports the subusers\' day only'
        else:
            notes[source.name] = "not exported: no account job ran"
    day = str(summary["date"])
    return report(stack, day, notes), day


def deliver_queue(resources: Resources, *, verbose: bool, named: bool) -> dict[str, str]:
    """Deliver the retry queue until nothing is visible or delayed on it: the parent account's
    day and the other sources' days, which the daily run queues, and re-runs after a 202 (once
    their delay has passed); a batch with a failed record ends it (the record stays on the
    queue). Prints one line per delivered message; returns what became of the last account job
    of each source that ran one."""
    source = SqsEventSource(boto3.client("sqs"), resources.queue_url)
    ended: dict[str, JobEnded] = {}  # by message id, for the batch being delivered
    accounts: dict[str, str] = {}

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        ended.clear()
        return invoke_local(event, verbose=verbose, on_job=lambda job: ended.__setitem__(job.message_id, job))

    def nothing_waits() -> bool:
        waiting = source.waiting()
        if not waiting["visible"] and not waiting["delayed"]:
            return True
        print(f"retry queue   {waiting['visible']} visible, {waiting['delayed']} delayed; receiving...")
        return False

    def delivered(delivery: Delivery) -> bool:
        for message in delivery.messages:
            job = _job_of(message["Body"])
            outcome = ended.get(message["MessageId"])
            summary = None if outcome is None else outcome.summary()
            print(f"queued job    {job_line(job, summary, named=named)}")
            if job.get("kind") == ACCOUNT:
                accounts[str(job.get("source"))] = outcome_text(ACCOUNT, summary)
        return bool(delivery.failed)

    # a long poll that finds nothing asks the queue again: a delayed message may still come
    deliver_until(source, invoke, stop=nothing_waits, on_delivery=delivered, idle=lambda: False)
    return accounts


def _job_of(body: str) -> dict[str, Any]:
    """Kind, date and attempt of a queued job, as its message body says."""
    with suppress(ValueError):
        job = json.loads(body)
        if isinstance(job, dict):
            return job
    return {"kind": "unreadable message", "date": repr(body[:60])}
