"""What ``python -m local.run`` says about the export: what became of a job (from its summary, or
for a queued job what the function told of it: ``seq_export.progress.JobEnded.summary``), and the
report of each source's day, read back from the local stack (S3, DynamoDB, the dead-letter queue)
and from the request log of the source's simulated SendGrid host.

A stack of one source reports as a single-source stack always has; with several sources, each
gets a section of its own, headed by its name, that also says which accounts its host's requests
reached (each host knows one key: its source's).
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

import boto3

from local.stack import LocalSource, LocalStack, Resources
from seq_export import record_codec
from seq_export.layout import DEFAULT_ACCOUNT_PREFIX, DEFAULT_PREFIX, SOURCE_KEY, day_key
from seq_export.models import ACCOUNT, SUBUSERS
from seq_export_cli.dead_letters import DeadLetter, peek_dead_letters
from seq_export_cli.output import counted

#: What became of a job, by the ``status`` of its summary (and the summary's fields).
_OUTCOMES = {
    "exported": "exported {records} records",
    "not_ready": "not ready (202), re-scheduled in {delay} s",
    "gave_up": "not ready (202) and out of attempts: gave up; the dead-letter message is the job anew, at attempt 1",
    "continued": "cut short near the time limit, continues as attempt {next_attempt}",
    "superseded": "already completed by a duplicate of this continuation",
    "failed": "failed: {error}: {reason}; it stays on the queue",
    "invalid": "refused: {reason}; it stays on the queue",
}


def job_line(job: Mapping[str, Any], outcome: Mapping[str, Any] | None, *, named: bool = False) -> str:
    """``subusers 2026-11-22 attempt 2: exported 20 records``: which job (its source first when
    ``named``: a stack of several sources), and what became of it (``outcome``: its summary)."""
    kind = job.get("kind", SUBUSERS)
    source = f"{job.get('source')} " if named else ""
    return f"{source}{kind} {job.get('date')} attempt {job.get('attempt')}: {outcome_text(kind, outcome)}"


def outcome_text(kind: str, outcome: Mapping[str, Any] | None) -> str:
    """What became of a job of ``kind``, from its summary (None: the function ran nothing, as for
    a duplicate delivery)."""
    if outcome is None:
        return "done before: a duplicate delivery, answered from the idempotency record"
    status = outcome.get("status")
    if status == "exported" and kind == ACCOUNT:
        return "exported; the parent account is not eligible (no score)" if outcome.get("ineligible") else "exported"
    fields = defaultdict(lambda: "?", outcome)
    fields["delay"] = outcome.get("delay_seconds", outcome.get("next_attempt_delay_seconds"))
    return _OUTCOMES.get(str(status), str(status)).format_map(fields)


def report(stack: LocalStack, day: str, account_notes: Mapping[str, str]) -> int:
    """Print each source's day; returns the exit code (1 when a source's subusers' day is missing).
    ``account_notes``: by source, why its account's day is absent, should it be."""
    named = len(stack.sources) > 1
    dead_letters: list[DeadLetter] | None = None
    code = 0
    for position, source in enumerate(stack.sources, start=1):
        if named:
            print(f"\nsource        {source.name} ({position} of {len(stack.sources)} in SEQ_SOURCES)")
        if not _subusers_day(stack.resources, source, day, named=named):
            if dead_letters is None:  # peeked once, left where they are (seq-export dead-letters lists them)
                dead_letters = peek_dead_letters(
                    boto3.client("sqs"), stack.resources.dlq_url, default_source=stack.sources[0].name
                )
            held = [letter for letter in dead_letters if letter.job is None or letter.job.source == source.name]
            print(f"NOT EXPORTED  {_named(source, named)}{day}; {_held(held)}", file=sys.stderr)
            for letter in held:
                print(f"dead letter   {_letter(letter)}", file=sys.stderr)
            code = 1
            if not named:  # as a single-source stack has always reported it: nothing more
                continue
        _account_day(stack.resources, source.name, day, account_notes[source.name])
    return code


def _named(source: LocalSource, named: bool) -> str:
    return f"{source.name} " if named else ""


def _subusers_day(resources: Resources, source: LocalSource, day: str, *, named: bool) -> bool:
    """The subusers' day of ``source``, what its host served, and a lookup of its first scored
    subuser in the latest-score table; False when the day's object is missing."""
    s3 = boto3.client("s3")
    key = day_key(DEFAULT_PREFIX, source.name, day)
    try:
        raw = s3.get_object(Bucket=resources.bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return False
    body = raw.decode()
    requests = source.simulator.requests
    records = record_codec.decode(raw)
    scored = [r for r in records if r["score"] is not None]
    served = sum(1 for r in requests if r["status"] == 200 and r["params"].get("date") == day)
    lead = "" if named else "\n"  # a section's first line: a source's heading has the blank line before it
    print(
        f"{lead}exported      {day}: {len(records)} records ({len(records) - len(scored)} ineligible) "
        f"from {served} page{'' if served == 1 else 's'}; {_requests(len(requests))} in all"
    )
    if named:
        print(f"host          {source.url} served {_accounts_reached(requests)}")
    print(f"S3 object     s3://{resources.bucket}/{key} ({len(body.encode())} bytes)")
    print(f"first line    {body.splitlines()[0] if records else '(empty day)'}")
    if scored:
        sample = scored[0]["user_id"]
        dynamodb = boto3.client("dynamodb")
        item = dynamodb.get_item(TableName=resources.table, Key={"user_id": {"S": sample}})["Item"]
        scan = dynamodb.get_paginator("scan").paginate(
            TableName=resources.table,
            Select="COUNT",
            FilterExpression="attribute_exists(score) AND #source = :source",
            ExpressionAttributeNames={"#source": SOURCE_KEY},
            ExpressionAttributeValues={":source": {"S": source.name}},
        )
        count = sum(page["Count"] for page in scan)
        print(f"DynamoDB      {count} subusers with a latest score; lookup user_id {sample}:")
        print(f"              {json.dumps(item, sort_keys=True)}")
    return True


def _requests(count: int) -> str:
    return f"{count} SendGrid request{'' if count == 1 else 's'}"


def _accounts_reached(requests: list[dict[str, Any]]) -> str:
    """``4 requests: 4 with account global's key``: whose key each request carried, as the
    simulated host told its accounts apart (a key it does not know is answered 401)."""
    reached = Counter(request["account"] for request in requests)
    parts = [f"{count} with account {label}'s key" for label, count in sorted(reached.items()) if label is not None]
    if reached[None]:
        parts.append(f"{reached[None]} with a key it does not know (401)")
    return f"{len(requests)} request{'' if len(requests) == 1 else 's'}: {', '.join(parts) or 'none'}"


def _account_day(resources: Resources, source: str, day: str, not_exported: str) -> None:
    s3 = boto3.client("s3")
    account_key = day_key(DEFAULT_ACCOUNT_PREFIX, source, day)
    try:
        raw = s3.get_object(Bucket=resources.bucket, Key=account_key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        print(f"account       {day}: {not_exported}")
        return
    account = raw.decode().strip()
    eligible = record_codec.decode(raw)[0]["score"] is not None
    print(f"account       {day}: exported{'' if eligible else ' (the parent account is not eligible: no score)'}")
    print(f"              s3://{resources.bucket}/{account_key}: {account}")


def _held(letters: list[DeadLetter]) -> str:
    if not letters:
        return "the dead-letter queue holds nothing for it"
    return f"the dead-letter queue holds {counted(len(letters), 'message')} (`seq-export dead-letters` lists them):"


def _letter(letter: DeadLetter) -> str:
    if letter.job is None:
        return f"not a job message: {letter.body[:80]!r}"
    job = letter.job
    return f"{job.source} {job.kind} {job.date}: {letter.why}"
