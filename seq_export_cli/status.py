"""``seq-export status``: whether a day is exported, per kind, with its size, time and line count.

The answer is printed once, on stdout (or as JSON); a day that is not exported is an answer,
not a diagnostic, so nothing is repeated on stderr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from seq_export_cli.app import App, with_app
from seq_export_cli.errors import EXIT_NEGATIVE, EXIT_OK, aws
from seq_export_cli.options import Day, default_day, kind_option, kinds_of, shared_options
from seq_export_cli.output import table
from seq_export_cli.s3_objects import count_lines, head_object, require_bucket

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@click.command("status", short_help="Whether a day is exported: size, time, line count.")
@click.option("--date", "day", type=Day(), default=default_day, help="The day to check.  [default: yesterday, UTC]")
@kind_option("Whose day: the subusers', the parent account's own, or both.")
@shared_options
@with_app
def status(app: App, *, day: str, kind: str) -> int:
    """Whether a day's object is in S3: size, LastModified and line count.

    Exits 0 when every asked kind is exported, 1 when one is not.
    """
    bucket = app.target.need("bucket")
    s3: S3Client = app.client("s3")
    found = [_status(app, s3, bucket, day, one_kind) for one_kind in kinds_of(kind)]
    document: Any = found[0] if len(found) == 1 else {"date": day, "kinds": found}
    lines = [line for entry in found for line in _lines(entry)]
    rows = [
        (
            e["kind"],
            "yes" if e["exported"] else "no",
            e.get("records"),
            e.get("bytes"),
            e.get("last_modified"),
        )
        for e in found
    ]
    shown = table(f"{day} in s3://{bucket}", ["kind", "exported", "lines>", "bytes>", "modified"], rows)
    app.output.answer(document, lines, shown)
    return EXIT_OK if all(entry["exported"] for entry in found) else EXIT_NEGATIVE


def _status(app: App, s3: S3Client, bucket: str, day: str, kind: str) -> dict[str, Any]:
    key = app.target.key_for(day, kind)
    head = head_object(s3, bucket, key)
    if head is None:
        require_bucket(s3, bucket)  # a missing bucket is a configuration to fix, not a missing day
        return {"date": day, "kind": kind, "exported": False, "bucket": bucket, "key": key}
    metadata = head.get("Metadata", {})
    source = "metadata"
    if metadata.get("records", "").isdigit():
        records = int(metadata["records"])
    else:
        source = "counted"
        with aws(f"S3 GetObject of s3://{bucket}/{key}"):
            body = s3.get_object(Bucket=bucket, Key=key, IfMatch=head["ETag"])["Body"]
            records = count_lines(body.iter_chunks(1024 * 1024))
    return {
        "date": day,
        "kind": kind,
        "exported": True,
        "bucket": bucket,
        "key": key,
        "bytes": head["ContentLength"],
        "last_modified": head["LastModified"].isoformat(),
        "records": records,
        "records_from": source,
        "exported_at": metadata.get("exported-at"),
    }


def _lines(entry: dict[str, Any]) -> list[str]:
    where = f"s3://{entry['bucket']}/{entry['key']}"
    what = f"{entry['kind']} {entry['date']}"
    if not entry["exported"]:
        return [f"not exported  {what}: no object {where}"]
    counted = " (counted)" if entry["records_from"] == "counted" else ""
    return [
        f"exported      {what}: {where}",
        f"size          {entry['bytes']} bytes, {entry['records']} lines{counted}",
        f"modified      {entry['last_modified']}",
    ]
