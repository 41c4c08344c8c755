"""The commands about days: ``run`` (export one day now), ``backfill`` (a range, optionally
waiting for it) and ``status`` (whether a day is exported). Each returns its exit code; the
human lines go to stdout, or one JSON document with ``--json``."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from seq_export.dates import days_between, parse_day
from seq_export_cli.app import App
from seq_export_cli.errors import EXIT_NEGATIVE, EXIT_OK, aws
from seq_export_cli.invoke import invoke_local
from seq_export_cli.s3_objects import Version, count_lines, head_object, head_version, require_bucket
from seq_export_cli.waiting import DayWatcher, ProgressBar, deliver_until_exported, poll_until_exported

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def backfill_event(first: str, last: str, *, force: bool = False) -> dict[str, Any]:
    event: dict[str, Any] = {"from": first, "to": last}
    if force:
        event["force"] = True
    return event


def _summary_lines(summary: Mapping[str, Any], bucket: str | None = None) -> list[str]:
    status = summary.get("status")
    day = summary.get("date")
    if status == "exported":
        lines = [
            f"exported      {day}: {summary.get('records')} records ({summary.get('ineligible')} ineligible) "
            f"from {summary.get('pages')} pages",
        ]
        if summary.get("s3_key"):
            where = f"s3://{bucket}/{summary['s3_key']}" if bucket else summary["s3_key"]
            lines.append(f"S3 object     {where} ({summary.get('bytes')} bytes)")
        lines.append(
            f"DynamoDB      {summary.get('latest_written')} latest scores written, "
            f"{summary.get('latest_kept_newer')} kept a newer day"
        )
        return lines
    if status == "not_ready":
        return [
            f"not ready     {day}: SendGrid is still computing the day (202); the function re-scheduled attempt "
            f"{summary.get('next_attempt')} in {summary.get('next_attempt_delay_seconds')} s"
        ]
    if status == "continued":
        return [f"continued     {day}: handed to a fresh invocation after {summary.get('pages')} pages"]
    if status == "gave_up":
        return [f"gave up       {day}: SendGrid kept answering 202; the day went to the dead-letter queue"]
    return [json.dumps(summary)]


def cmd_run(app: App) -> int:
    summary = app.invoke({"date": app.args.date})
    app.emit(summary, _summary_lines(summary, app.target.bucket))
    if summary.get("status") == "exported":
        return EXIT_OK
    app.note(f"{app.args.date} is not exported (status {summary.get('status')}); check later with `status`")
    return EXIT_NEGATIVE


def cmd_backfill(app: App) -> int:
    args = app.args
    event = backfill_event(args.first, args.last, force=args.force)
    watcher: DayWatcher | None = None
    if args.wait:
        bucket = app.target.need("bucket")
        if args.local:
            app.target.need("queue_url")
        days = days_between(parse_day(args.first), parse_day(args.last))
        s3 = app.client("s3")
        require_bucket(s3, bucket)
        keys = {day: app.target.key_for(day) for day in days}
        baseline: dict[str, Version] = {}
        if args.force:
            for day, key in keys.items():
                version = head_version(s3, bucket, key)
                if version is not None:
                    baseline[day] = version
        watcher = DayWatcher(s3, bucket, keys, baseline)
    answer = app.invoke(event)
    if watcher is None:
        app.emit(answer, _backfill_lines(answer))
        return EXIT_OK
    if not app.json:
        for line in _backfill_lines(answer):
            print(line, flush=True)
    progress = ProgressBar(sys.stderr, len(watcher.days))
    try:
        if args.local:
            outcome = deliver_until_exported(
                app.client("sqs"),
                app.target.need("queue_url"),
                lambda e: invoke_local(e, verbose=bool(args.verbose)),
                watcher,
                progress,
                timeout=args.timeout,
                clock=app.clock,
                on_failures=lambda n: app.note(
                    f"{n} queued export(s) failed and return to the queue after its visibility timeout"
                    + ("" if args.verbose else " (--verbose shows the function's logs)")
                ),
            )
        else:
            outcome = poll_until_exported(watcher, progress, timeout=args.timeout, clock=app.clock, sleep=app.sleep)
    finally:
        progress.close()
    missing = watcher.pending
    document = {
        **answer,
        "wait": {
            "outcome": outcome,
            "days": len(watcher.days),
            "exported": len(watcher.exported),
            "missing": missing,
        },
    }
    app.emit(
        document, [f"exported      {len(watcher.exported)}/{len(watcher.days)} days ({args.first} .. {args.last})"]
    )
    if not missing:
        return EXIT_OK
    why = (
        f"within {args.timeout:g} s"
        if outcome == "timeout"
        else "and the retry queue has no message left for them (failed, given up or handled before: "
        "see the dead-letter queue and --verbose)"
    )
    app.note(f"{len(missing)} of {len(watcher.days)} days not exported {why}: {', '.join(missing)}")
    return EXIT_NEGATIVE


def _backfill_lines(answer: Mapping[str, Any]) -> list[str]:
    if answer.get("status") != "enqueued":
        return [json.dumps(answer)]
    lines = [f"enqueued      {answer.get('days')} days ({answer.get('from')} .. {answer.get('to')})"]
    skipped = answer.get("skipped_already_exported")
    if skipped:
        shown = ", ".join(str(s) for s in skipped[:10]) + (", ..." if len(skipped) > 10 else "")
        lines.append(f"skipped       {len(skipped)} already exported (--force exports them again): {shown}")
    return lines


def cmd_status(app: App) -> int:
    bucket = app.target.need("bucket")
    key = app.target.key_for(app.args.date)
    s3: S3Client = app.client("s3")
    where = f"s3://{bucket}/{key}"
    head = head_object(s3, bucket, key)
    if head is None:
        require_bucket(s3, bucket)
        app.emit(
            {"date": app.args.date, "exported": False, "bucket": bucket, "key": key},
            [f"not exported  {app.args.date}: no object {where}"],
        )
        app.note(f"{app.args.date} is not exported: no object {where}")
        return EXIT_NEGATIVE
    metadata = head.get("Metadata", {})
    records: int | None = None
    source = "metadata"
    if metadata.get("records", "").isdigit():
        records = int(metadata["records"])
    else:
        source = "counted"
        with aws(f"S3 GetObject of {where}"):
            body = s3.get_object(Bucket=bucket, Key=key, IfMatch=head["ETag"])["Body"]
            records = count_lines(body.iter_chunks(1024 * 1024))
    modified = head["LastModified"]
    document = {
        "date": app.args.date,
        "exported": True,
        "bucket": bucket,
        "key": key,
        "bytes": head["ContentLength"],
        "last_modified": modified.isoformat(),
        "records": records,
        "records_from": source,
        "exported_at": metadata.get("exported-at"),
    }
    app.emit(
        document,
        [
            f"exported      {app.args.date}: {where}",
            f"size          {head['ContentLength']} bytes, {records} lines"
            + (" (counted)" if source == "counted" else ""),
            f"modified      {modified.isoformat()}",
        ],
    )
    return EXIT_OK
