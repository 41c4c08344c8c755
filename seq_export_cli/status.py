"""``seq-export status``: whether a day is exported, per source and kind, with its size, time and
line count.

The answer is printed once, on stdout (or as JSON); a day that is not exported is an answer,
not a diagnostic, so nothing is repeated on stderr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from seq_export.job_message import JobId
from seq_export.layout import EXPORTED_AT_METADATA, RECORDS_METADATA
from seq_export.record_codec import count_lines
from seq_export_cli.app import App, with_app
from seq_export_cli.errors import EXIT_NEGATIVE, EXIT_OK, aws_failures_named
from seq_export_cli.options import Day, default_day, kind_option, shared_options, source_option
from seq_export_cli.output import counted, per_source, sections, table
from seq_export_cli.s3_objects import head_object, require_bucket

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@click.command("status", short_help="Whether a day is exported, per source: size, time, line count.")
@click.option(
    "--date", "day", type=Day(finished=True), default=default_day, help="The day to check.  [default: yesterday, UTC]"
)
@kind_option("Whose day: the subusers', the parent account's own, or both.")
@source_option("Check this source only.  [default: every configured source]")
@shared_options
@with_app
def status(app: App, *, day: str, kind: str, source: str | None) -> int:
    """Whether a day's object is in S3, per source and kind: size, LastModified and line count.

    Exits 0 when every asked source and kind is exported, 1 when one is not.
    """
    target = app.target
    chosen = target.chosen_sources(source)
    bucket = target.need("bucket")
    s3: S3Client = app.client("s3")
    found = {
        name: [_status(app, s3, bucket, JobId(name, one_kind, day)) for one_kind in app.kinds_of(name, kind)]
        for name in chosen
    }
    documents = [{"source": name, "kinds": entries} for name, entries in found.items()]
    lines = sections(
        [(name, [line for entry in entries for line in _lines(entry)]) for name, entries in found.items()],
        titled=target.several_sources,
    )
    titled = target.several_sources
    rows = [
        (
            *([e["source"]] if titled else []),
            e["kind"],
            "yes" if e["exported"] else "no",
            e.get("records"),
            e.get("bytes"),
            e.get("last_modified"),
        )
        for entries in found.values()
        for e in entries
    ]
    columns = [*(["source"] if titled else []), "kind", "exported", "lines>", "bytes>", "modified"]
    shown = table(f"{day} in s3://{bucket}", columns, rows)
    app.output.answer(per_source(documents, day=day), lines, shown)
    return EXIT_OK if all(entry["exported"] for entries in found.values() for entry in entries) else EXIT_NEGATIVE


def _status(app: App, s3: S3Client, bucket: str, job: JobId) -> dict[str, Any]:
    source, kind, day = job.source, job.kind, job.date
    key = app.target.key_for(day, kind, source)
    head = head_object(s3, bucket, key)
    if head is None:
        require_bucket(s3, bucket)  # a missing bucket is a configuration to fix, not a missing day
        return {"date": day, "source": source, "kind": kind, "exported": False, "bucket": bucket, "key": key}
    metadata = head.get("Metadata", {})
    records_from = "metadata"
    if metadata.get(RECORDS_METADATA, "").isdigit():
        records = int(metadata[RECORDS_METADATA])
    else:
        records_from = "counted"
        with aws_failures_named(f"S3 GetObject of s3://{bucket}/{key}"):
            body = s3.get_object(Bucket=bucket, Key=key, IfMatch=head["ETag"])["Body"]
            records = count_lines(body.iter_chunks(1024 * 1024))
    return {
        "date": day,
        "source": source,
        "kind": kind,
        "exported": True,
        "bucket": bucket,
        "key": key,
        "bytes": head["ContentLength"],
        "last_modified": head["LastModified"].isoformat(),
        "records": records,
        "records_from": records_from,
        "exported_at": metadata.get(EXPORTED_AT_METADATA),
    }


def _lines(entry: dict[str, Any]) -> list[str]:
    where = f"s3://{entry['bucket']}/{entry['key']}"
    what = f"{entry['kind']} {entry['date']}"
    if not entry["exported"]:
        return [f"not exported  {what}: no object {where}"]
    counted_note = " (counted)" if entry["records_from"] == "counted" else ""
    return [
        f"exported      {what}: {where}",
        f"size          {counted(entry['bytes'], 'byte')}, {counted(entry['records'], 'line')}{counted_note}",
        f"modified      {entry['last_modified']}",
    ]
