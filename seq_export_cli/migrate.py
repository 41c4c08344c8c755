"""``seq-export migrate-lake``: upgrade a lake written before sources existed.

Before sources, a day of either dataset was ``{prefix}/dt=D/scores.jsonl`` and its lines had no
``source``; a latest-score item had no ``source`` either. A single-source stack upgrades without
re-exporting: each legacy object is rewritten under its source (``layout.day_key``) with
``"source": NAME`` in every line, re-encoded by the function's own codec
(``record_codec``) keeping each line's ``exported_at`` and its numbers exactly as
written; the new object is written first (only if the day has none: ``IfNoneMatch``), then the
legacy one deleted. A day that already has an object in the new layout (the function exported
it since the upgrade) keeps it, and its legacy object is just deleted. Then every latest-score
item without ``source`` gets it (``attribute_not_exists(source)``, so an item the function wrote
meanwhile is left alone). Running it again finds nothing to do.

A malformed line (not JSON, a field missing or extra, a value out of the contract) fails its
day, named by key and line number, and nothing of that day is written or deleted; the other
days are migrated, and the command exits 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from seq_export.dates import parse_instant
from seq_export.errors import InvalidRecordError
from seq_export.layout import (
    CONTROL_KEY,
    EXPORTED_AT_METADATA,
    RECORDS_METADATA,
    SOURCE_KEY,
    TABLE_KEY,
    day_key,
)
from seq_export.models import KINDS, METRIC_NAMES, RECORD_KEYS, validate_record
from seq_export.record_codec import CONTENT_TYPE, NotAnObjectError, decode_line, encode_line, split_lines
from seq_export_cli.app import App, with_app
from seq_export_cli.errors import EXIT_NEGATIVE, EXIT_OK, aws_failures_named, conditional
from seq_export_cli.options import SourceName, shared_options
from seq_export_cli.output import counted
from seq_export_cli.s3_objects import head_object, legacy_objects, require_bucket

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: The keys of a line written before sources existed.
LEGACY_KEYS = frozenset(RECORD_KEYS) - {SOURCE_KEY}
#: Conditional UpdateItem calls in flight at once.
UPDATE_WORKERS = 8


class MalformedLineError(Exception):
    """A legacy line the codec cannot carry over exactly; its message starts ``line N``."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason if re.match(rf"line {line}\b", reason) else f"line {line}: {reason}")
        self.line = line


def migrate_line(raw: bytes, *, source: str, day: str, line: int) -> str:
    """One legacy line, with ``source`` added, as the function writes lines today; a
    ``MalformedLineError`` when it is not a line of the data contract for ``day``."""
    try:
        data = decode_line(raw)
    except NotAnObjectError as exc:
        raise MalformedLineError(line, str(exc)) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedLineError(line, f"not a JSON line ({exc})") from None
    if data.get(SOURCE_KEY, source) != source:
        raise MalformedLineError(line, f"already names source {data[SOURCE_KEY]!r}, not {source!r}")
    keys = set(data) - {SOURCE_KEY}
    if keys != LEGACY_KEYS:
        missing, extra = sorted(LEGACY_KEYS - keys), sorted(keys - LEGACY_KEYS)
        reason = "; ".join(
            part
            for part in (f"lacks {', '.join(missing)}" if missing else "", f"has {', '.join(extra)}" if extra else "")
            if part
        )
        raise MalformedLineError(line, f"{reason} (a line has {', '.join(sorted(LEGACY_KEYS))})")
    if data["date"] != day:
        raise MalformedLineError(line, f"date is {data['date']!r} in the object of {day}")
    if not isinstance(data["user_id"], str):
        raise MalformedLineError(line, f"user_id must be a string, got {data['user_id']!r}")
    metrics = data["metrics"]
    if isinstance(metrics, dict) and set(metrics) != set(METRIC_NAMES):
        raise MalformedLineError(line, f"metrics must have exactly {', '.join(METRIC_NAMES)}, got {sorted(metrics)}")
    exported_at = data["exported_at"]
    try:
        parse_instant(exported_at)
    except (TypeError, ValueError, AttributeError):
        raise MalformedLineError(line, f"exported_at is not an ISO-8601 instant: {exported_at!r}") from None
    try:
        record = validate_record(data, source=source, day=day, where=f"line {line}")
    except InvalidRecordError as exc:
        raise MalformedLineError(line, str(exc)) from None
    encoded = encode_line(record, exported_at)
    if decode_line(encoded) != {**data, SOURCE_KEY: source}:  # the codec kept every value exactly
        raise MalformedLineError(line, "does not re-encode to the same values")
    return encoded


def migrate_body(body: bytes, *, source: str, day: str) -> tuple[bytes, int]:
    """A legacy object's lines under ``source``: the new body and its line count."""
    encoded = [
        migrate_line(raw, source=source, day=day, line=number)
        for number, raw in enumerate(split_lines([body]), start=1)
    ]
    return "".join(encoded).encode(), len(encoded)


@dataclass
class Dataset:
    """What migrating one dataset (the subusers' or the account's scores) did, or would do."""

    kind: str
    prefix: str
    legacy_objects: int = 0
    moved: int = 0
    kept_existing: int = 0
    lines: int = 0
    failed: int = 0

    def document(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Items:
    """What migrating the latest-score table did, or would do."""

    without_source: int = 0
    updated: int = 0
    already_had_source: int = 0


@dataclass
class Migration:
    bucket: str
    source: str
    dry_run: bool
    datasets: list[Dataset] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    items: Items = field(default_factory=Items)
    errors: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "bucket": self.bucket,
            "datasets": [dataset.document() for dataset in self.datasets],
            "objects": self.objects,
            "items": dict(self.items.__dict__),
            "errors": self.errors,
        }


@click.command("migrate-lake", short_help="Move a lake written before sources existed under a source.")
@click.option(
    "--source",
    type=SourceName(),
    default=None,
    help="The source the legacy days and latest scores belong to.  [default: the first configured source]",
)
@click.option("--dry-run", is_flag=True, help="List what would be moved, deleted and updated; change nothing.")
@shared_options
@with_app
def migrate_lake(app: App, *, source: str | None, dry_run: bool) -> int:
    """Upgrade a lake written before sources existed, for both datasets: every legacy object
    PREFIX/dt=D/scores.jsonl is rewritten under the source, with "source" added to each line
    (exported_at and numbers kept exactly), written first and then the legacy object deleted; a
    day that already has an object under the source keeps it (the legacy one is deleted). Then
    every latest score without a source gets it. Running it again changes nothing.

    Exits 0 when everything was migrated (or nothing was left to do); 1 when a malformed line
    stopped a day (nothing of that day is changed; the others are migrated).
    """
    target = app.target
    name = source or _first_source(app)
    target.chosen_sources(source)  # a named source must be a configured one
    bucket = target.need("bucket")
    table_name = target.need("table")
    s3 = app.client("s3")
    require_bucket(s3, bucket)
    migration = Migration(bucket=bucket, source=name, dry_run=dry_run)
    found = {kind: legacy_objects(s3, bucket, target.prefix_for(kind)) for kind in KINDS}
    with app.output.progress(sum(map(len, found.values())), "legacy days migrated") as progress:
        done = 0
        for kind, objects in found.items():
            dataset = Dataset(kind=kind, prefix=target.prefix_for(kind), legacy_objects=len(objects))
            migration.datasets.append(dataset)
            for day, key in objects:
                migration.objects.append(migrate_object(s3, migration, dataset, day, key))
                done += 1
                progress.update(done)
    for error in migration.errors:
        app.output.note(error)
    migration.items = migrate_items(app.client("dynamodb"), table_name, name, dry_run=dry_run)
    app.output.answer(migration.document(), _lines(migration))
    return EXIT_NEGATIVE if migration.errors else EXIT_OK


def migrate_object(s3: Any, migration: Migration, dataset: Dataset, day: str, key: str) -> dict[str, Any]:
    """Move one legacy object under the source (or delete it when the day is already there)."""
    bucket, source = migration.bucket, migration.source
    new_key = day_key(dataset.prefix, source, day)
    done: dict[str, Any] = {"kind": dataset.kind, "date": day, "from": key, "to": new_key}
    if head_object(s3, bucket, new_key) is None:
        with aws_failures_named(f"S3 GetObject of s3://{bucket}/{key}"):
            legacy = s3.get_object(Bucket=bucket, Key=key)
            body = legacy["Body"].read()
        try:
            migrated, lines = migrate_body(body, source=source, day=day)
        except MalformedLineError as exc:
            dataset.failed += 1
            migration.errors.append(f"s3://{bucket}/{key} {exc}; nothing of {dataset.kind} {day} was changed")
            return done | {"action": "failed", "line": exc.line, "error": str(exc)}
        metadata = {RECORDS_METADATA: str(lines)}
        exported_at = legacy.get("Metadata", {}).get(EXPORTED_AT_METADATA)
        if exported_at:
            metadata[EXPORTED_AT_METADATA] = exported_at
        if migration.dry_run or _put_new(s3, bucket, new_key, migrated, metadata):
            dataset.moved += 1
            dataset.lines += lines
            if not migration.dry_run:
                _delete(s3, bucket, key)
            return done | {"action": "move", "lines": lines}
    dataset.kept_existing += 1
    if not migration.dry_run:
        _delete(s3, bucket, key)
    return done | {"action": "delete"}


def _put_new(s3: Any, bucket: str, key: str, body: bytes, metadata: dict[str, str]) -> bool:
    """Write the day's object unless one appeared meanwhile (False then: the newer one stays)."""
    return conditional(
        f"S3 PutObject of s3://{bucket}/{key}",
        "PreconditionFailed",
        lambda: s3.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType=CONTENT_TYPE, Metadata=metadata, IfNoneMatch="*"
        ),
    )


def _delete(s3: Any, bucket: str, key: str) -> None:
    with aws_failures_named(f"S3 DeleteObject of s3://{bucket}/{key}"):
        s3.delete_object(Bucket=bucket, Key=key)


def _items_without_source(dynamodb: DynamoDBClient, table_name: str) -> Iterator[str]:
    """The user ids of latest-score items without ``source`` (never the exporter's control item)."""
    with aws_failures_named(f"DynamoDB Scan of table {table_name}"):
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=table_name,
            FilterExpression="attribute_not_exists(#s)",
            ProjectionExpression="#k",
            ExpressionAttributeNames={"#s": SOURCE_KEY, "#k": TABLE_KEY},
        ):
            for item in page.get("Items", []):
                user_id = item[TABLE_KEY]["S"]
                if user_id != CONTROL_KEY:
                    yield user_id


def migrate_items(dynamodb: DynamoDBClient, table_name: str, source: str, *, dry_run: bool) -> Items:
    """``SET source`` on every item without one; an item that has one by then is left alone."""
    user_ids = list(_items_without_source(dynamodb, table_name))
    items = Items(without_source=len(user_ids))
    if dry_run:
        return items

    def tag(user_id: str) -> bool:
        return conditional(
            f"DynamoDB UpdateItem of {user_id} on table {table_name}",
            "ConditionalCheckFailedException",
            lambda: dynamodb.update_item(
                TableName=table_name,
                Key={TABLE_KEY: {"S": user_id}},
                UpdateExpression="SET #s = :s",
                ConditionExpression="attribute_exists(#k) AND attribute_not_exists(#s)",
                ExpressionAttributeNames={"#s": SOURCE_KEY, "#k": TABLE_KEY},
                ExpressionAttributeValues={":s": {"S": source}},
            ),
        )

    with ThreadPoolExecutor(max_workers=UPDATE_WORKERS) as pool:
        updated = sum(pool.map(tag, user_ids))
    items.updated = updated
    items.already_had_source = len(user_ids) - updated
    return items


def _lines(migration: Migration) -> list[str]:
    where = f"s3://{migration.bucket}/"
    lines: list[str] = []
    for done in migration.objects:
        if done["action"] == "move":
            verb = "would move" if migration.dry_run else "moved"
            lines.append(f"{verb:<13} {where}{done['from']} -> {done['to']} ({counted(done['lines'], 'line')})")
        elif done["action"] == "delete":
            verb = "would delete" if migration.dry_run else "deleted"
            lines.append(f"{verb:<13} {where}{done['from']} ({done['to']} is already there)")
        else:
            lines.append(f"{'failed':<13} {where}{done['from']} {done['error']}")
    for dataset in migration.datasets:
        if not dataset.legacy_objects:
            lines.append(f"{dataset.kind:<13} {dataset.prefix}: no day in the layout from before sources")
            continue
        moved, deleted = ("would move", "would delete") if migration.dry_run else ("moved", "deleted")
        parts = [
            f"{moved} {dataset.moved} under source {migration.source} ({counted(dataset.lines, 'line')})",
            f"{deleted} {dataset.kept_existing} already there",
        ]
        if dataset.failed:
            parts.append(f"{dataset.failed} failed (malformed lines, unchanged)")
        lines.append(
            f"{dataset.kind:<13} {dataset.prefix}: {_days(dataset.legacy_objects)} in the layout from before sources: "
            + ", ".join(parts)
        )
    items = migration.items
    if migration.dry_run:
        lines.append(
            f"DynamoDB      {items.without_source} latest scores without a source would get {migration.source}"
        )
    else:
        lines.append(
            f"DynamoDB      {items.without_source} latest scores without a source: {items.updated} given "
            f"{migration.source}, {items.already_had_source} had one by then"
        )
    return lines


def _days(count: int) -> str:
    return counted(count, "day")


def _first_source(app: App) -> str:
    """The first configured source; where the target only assumes ``default`` (no SEQ_SOURCES, no
    stack), the deployed function's own first source when it can be read, so a stack whose first
    source has another name does not get its history filed where its tables do not look."""
    target = app.target
    if target.stack is None and target.account_sources is None:
        configured = app.function_sources()
        if configured:
            return configured[0].name
    return target.sources[0]
