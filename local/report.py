"""What ``python -m local.run`` says about the export: what became of a job (from its summary or
the function's record that ended it), and the report of each source's day, read back from the
local stack (S3, DynamoDB, the dead-letter queue) and from the request log of the source's
simulated SendGrid host.

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
from seq_export.layout import DEFAULT_ACCOUNT_PREFIX, DEFAULT_PREFIX, SOURCE_KEY, day_key
from seq_export.models import ACCOUNT

#: The function's log messages that end a job without a summary's ``status`` of their own.
_STATUS_OF_MESSAGE = {
    "Scores not ready, re-scheduled": "not_ready",
    "Gave up: SendGrid still computing scores": "gave_up",
    "Day already completed by a duplicate of this continuation": "superseded",
    "Export failed": "failed",
    "Invalid queued job": "invalid",
}
#: What became of a job, by that status (fields from the summary or the log record).
_OUTCOMES = {
    "exported": "exported {records} records",
    "not_ready": "not ready (202), re-scheduled in {delay} s",
    "gave_up": "not ready (202) and out of attempts: gave up, the job went to the dead-letter queue",
    "continued": "cut short near the time limit, continues as attempt {next_attempt}",
    "superseded": "already completed by a duplicate of this continuation",
    "failed": "failed: {error}: {reason}; it stays on the queue",
    "invalid": "refused: {reason}; it stays on the queue",
}


def status_of(entry: Mapping[str, Any]) -> str | None:
    """A summary's ``status``, or the status a record of the function stands for (None: neither)."""
    status = entry.get("status") or _STATUS_OF_MESSAGE.get(str(entry.get("message")))
    return None if status is None else str(status)


def outcome_text(kind: str, outcome: Mapping[str, Any] | None) -> str:
    """What became of a job of ``kind``, from its summary or the record that ended it."""
    if outcome is None:
        return "done before: a duplicate delivery, answered from the idempotency record"
    status = status_of(outcome)
    if status == "exported" and kind == ACCOUNT:
        return "exported; the parent account is not eligible (no score)" if outcome.get("ineligible") else "exported"
    fields = defaultdict(lambda: "?", outcome)
    fields["delay"] = outcome.get("delay_seconds", outcome.get("next_attempt_delay_seconds"))
    return _OUTCOMES.get(str(status), str(status)).format_map(fields)


def report(stack: LocalStack, day: str, account_notes: Mapping[str, str]) -> int:
    """Print each source's day; returns the exit code (1 when a source's subusers' day is missing).
    ``account_notes``: by source, why its account's day is absent, should it be."""
    named = len(stack.sources) > 1
    dead_letters: list[str] | None = None
    code = 0
    for position, source in enumerate(stack.sources, start=1):
        if named:
            print(f"\nsource        {source.name} ({position} of {len(stack.sources)} in SEQ_SOURCES)")
        if not _subusers_day(stack.resources, source, day, named=named):
            if dead_letters is None:  # received once: a receive hides them from the next one
                dead_letters = _dead_letters(stack.resources)
            held = [body for body in dead_letters if not named or _source_of(body) == source.name]
            print(f"NOT EXPORTED  {_named(source, named)}{day}; dead-letter queue holds: {held}", file=sys.stderr)
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
        body = s3.get_object(Bucket=resources.bucket, Key=key)["Body"].read().decode()
    except s3.exceptions.NoSuchKey:
        return False
    requests = source.simulator.requests
    records = [json.loads(line) for line in body.splitlines()]
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
        account = s3.get_object(Bucket=resources.bucket, Key=account_key)["Body"].read().decode().strip()
    except s3.exceptions.NoSuchKey:
        print(f"account       {day}: {not_exported}")
        return
    eligible = json.loads(account)["score"] is not None
    print(f"account       {day}: exported{'' if eligible else ' (the parent account is not eligible: no score)'}")
    print(f"              s3://{resources.bucket}/{account_key}: {account}")


def _source_of(body: str) -> object:
    try:
        job = json.loads(body)
    except ValueError:
        return None
    return job.get(SOURCE_KEY) if isinstance(job, dict) else None


def _dead_letters(resources: Resources) -> list[str]:
    messages = boto3.client("sqs").receive_message(QueueUrl=resources.dlq_url, MaxNumberOfMessages=10)
    return [message["Body"] for message in messages.get("Messages", [])]
