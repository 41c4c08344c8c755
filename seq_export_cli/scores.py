"""The commands that read the latest-score table: ``lookup`` (one subuser, by user id or by
username) and ``low-scores`` (everyone at or below a score).

**Cost of ``low-scores``.** There is no index on ``score``: the command runs a parallel Scan
(4 segments) with ``FilterExpression score <= :max``. A Scan reads, and is billed for, the
whole table whatever the filter keeps: about table size / 4 KB / 2 read units (eventually
consistent). Items are about 250 bytes, so 100,000 subusers cost about 3,000 read units per
call (a fraction of a cent on demand) and take a few seconds. We chose this over a global
secondary index on ``score`` because an index is written with its table: it would double the
write units of every daily export (one index write per changed item, every day) to speed up
an occasional operator query; a score index would also need write sharding, since a handful
of score values would be a handful of hot partitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer

from seq_export.layout import CONTROL_KEY, ITEM_ATTRIBUTES, TABLE_KEY, USERNAME_INDEX
from seq_export_cli.app import App
from seq_export_cli.errors import EXIT_NEGATIVE, EXIT_OK, aws

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SCAN_SEGMENTS = 4
#: The order an item's attributes are printed in (human lines and JSON); any other goes last.
_PRINT_ORDER = ("username", "date", "score", "metrics", "updated_at")
ITEM_FIELDS: tuple[str, ...] = (
    TABLE_KEY,
    *sorted(ITEM_ATTRIBUTES, key=lambda name: _PRINT_ORDER.index(name) if name in _PRINT_ORDER else len(_PRINT_ORDER)),
)


def plain(value: Any) -> Any:
    """DynamoDB values (Decimal, sets) as JSON-ready Python values; integral numbers stay ints."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [plain(v) for v in value]
    return value


_deserializer = TypeDeserializer()


def subuser(item: Mapping[str, Any]) -> dict[str, Any]:
    """A latest-score item (low-level attribute values) as the fields the CLI prints, in order."""
    values = {k: _deserializer.deserialize(v) for k, v in item.items()}
    return {name: plain(values.get(name)) for name in ITEM_FIELDS}


def _natural(user_id: str) -> tuple[int, int, str]:
    return (0, int(user_id), "") if user_id.isdigit() else (1, 0, user_id)


def _is_subuser(item: Mapping[str, Any]) -> bool:
    """Every item but the exporter's own bookkeeping item."""
    return bool(item.get(TABLE_KEY, {}).get("S") != CONTROL_KEY)


def sort_by_score(subusers: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ascending by score, then by user_id (numerically for SendGrid's numeric ids)."""
    return sorted(subusers, key=lambda s: (Decimal(str(s["score"])), _natural(str(s[TABLE_KEY]))))


def _item_lines(item: Mapping[str, Any]) -> list[str]:
    metrics = item.get("metrics")
    shown = " ".join(f"{k}={v}" for k, v in metrics.items()) if isinstance(metrics, dict) else "-"
    return [
        f"user_id     {item[TABLE_KEY]}",
        f"username    {item.get('username') or '-'}",
        f"date        {item.get('date') or '-'}",
        f"score       {item['score'] if item.get('score') is not None else '-'}",
        f"metrics     {shown}",
        f"updated_at  {item.get('updated_at') or '-'}",
    ]


def cmd_lookup(app: App) -> int:
    table = app.target.need("table")
    dynamodb: DynamoDBClient = app.client("dynamodb")
    items: list[dict[str, Any]] = []
    if app.args.username is not None:
        query = {"username": app.args.username}
        with aws(f"DynamoDB Query of index {USERNAME_INDEX} on table {table}"):
            for page in dynamodb.get_paginator("query").paginate(
                TableName=table,
                IndexName=USERNAME_INDEX,
                KeyConditionExpression="#n = :n",
                ExpressionAttributeNames={"#n": "username"},
                ExpressionAttributeValues={":n": {"S": app.args.username}},
            ):
                keys = [item[TABLE_KEY]["S"] for item in page.get("Items", [])]
                # the index holds keys only (so daily score updates never write it): read the items
                for key in keys:
                    item = dynamodb.get_item(TableName=table, Key={TABLE_KEY: {"S": key}}).get("Item")
                    if item:
                        items.append(item)
    else:
        query = {"user_id": app.args.user_id}
        if app.args.user_id != CONTROL_KEY:
            with aws(f"DynamoDB GetItem on table {table}"):
                item = dynamodb.get_item(TableName=table, Key={TABLE_KEY: {"S": app.args.user_id}}).get("Item")
            items = [item] if item else []
    found = sorted((subuser(i) for i in items if _is_subuser(i)), key=lambda s: _natural(str(s[TABLE_KEY])))
    lines: list[str] = []
    for i, item in enumerate(found):
        lines.extend(([""] if i else []) + _item_lines(item))
    app.emit({"query": query, "subusers": found}, lines)
    if found:
        return EXIT_OK
    what = f"username {app.args.username!r}" if app.args.username is not None else f"user_id {app.args.user_id!r}"
    app.note(f"no latest score for {what} in table {table}")
    return EXIT_NEGATIVE


@dataclass
class ScanResult:
    subusers: list[dict[str, Any]]
    scanned: int = 0
    read_units: float = 0.0


def scan_low_scores(
    dynamodb: DynamoDBClient, table: str, max_score: Decimal, segments: int = SCAN_SEGMENTS
) -> ScanResult:
    """Parallel Scan, ``score <= :max``, only the printed attributes; every page of every segment."""
    names = {f"#{i}": name for i, name in enumerate(ITEM_FIELDS)}
    by_name = {name: key for key, name in names.items()}

    def segment(number: int) -> ScanResult:
        result = ScanResult(subusers=[])
        with aws(f"DynamoDB Scan of table {table} (segment {number + 1}/{segments})"):
            for page in dynamodb.get_paginator("scan").paginate(
                TableName=table,
                Segment=number,
                TotalSegments=segments,
                FilterExpression=f"{by_name['score']} <= :max",
                ProjectionExpression=", ".join(names),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":max": {"N": str(max_score)}},
                ReturnConsumedCapacity="TOTAL",
            ):
                result.scanned += page.get("ScannedCount", 0)
                result.read_units += float(page.get("ConsumedCapacity", {}).get("CapacityUnits", 0) or 0)
                result.subusers.extend(subuser(item) for item in page.get("Items", []) if _is_subuser(item))
        return result

    with ThreadPoolExecutor(max_workers=segments) as pool:
        parts = list(pool.map(segment, range(segments)))
    return ScanResult(
        subusers=sort_by_score(s for part in parts for s in part.subusers),
        scanned=sum(part.scanned for part in parts),
        read_units=sum(part.read_units for part in parts),
    )


def cmd_low_scores(app: App) -> int:
    table = app.target.need("table")
    result = scan_low_scores(app.client("dynamodb"), table, app.args.max_score)
    shown = result.subusers[: app.args.limit] if app.args.limit else result.subusers
    max_score = plain(app.args.max_score)
    document = {
        "max_score": max_score,
        "matched": len(result.subusers),
        "scanned": result.scanned,
        "read_units": result.read_units,
        "subusers": shown,
    }
    lines = [f"{'score':>6}  {'user_id':<12} {'username':<24} date"] if shown else []
    lines += [f"{s['score']!s:>6}  {s[TABLE_KEY]:<12} {s.get('username') or '-':<24} {s.get('date')}" for s in shown]
    lines.append(
        f"{len(result.subusers)} subusers with a latest score <= {max_score}"
        + (f" (showing {len(shown)})" if len(shown) < len(result.subusers) else "")
        + f"; scanned {result.scanned} items, {result.read_units:g} read units"
    )
    app.emit(document, lines)
    if result.subusers:
        return EXIT_OK
    app.note(f"no subuser in table {table} has a latest score <= {max_score}")
    return EXIT_NEGATIVE
