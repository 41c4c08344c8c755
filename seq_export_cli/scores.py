"""The commands that read the latest-score table: ``lookup`` (one subuser, by user id or by
username) and ``low-scores`` (everyone at or below a score).

**No latest score.** The table holds scored subusers only, each item naming the source that
wrote it. When a lookup finds nothing, each source's newest exported day's object tells the two
cases apart: a subuser a source returned without a score that day (not eligible) or one no
source returned at all (unknown to these accounts).

**Cost of ``lookup``'s explanation.** Telling the two apart reads the newest day's object of
each source with one S3 GET, streamed and stopped at the first line that names the subuser. An
eligible-but-unscored subuser is found partway; an unknown one costs the whole object: about
250 bytes a subuser, so about 25 MB at 100,000 subusers (a second or so inside AWS, more over
a slow link; S3 bills the GET request, and transfer out of AWS when run from outside).
``--no-why`` skips it: no S3 read, and the answer says it did not check.

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

import click
from boto3.dynamodb.types import TypeDeserializer

from seq_export.config import Env
from seq_export.layout import CONTROL_KEY, ITEM_ATTRIBUTES, TABLE_KEY, USERNAME_INDEX
from seq_export.models import json_number
from seq_export_cli.app import App, with_app
from seq_export_cli.errors import EXIT_NEGATIVE, EXIT_OK, UsageError, aws_failures_named
from seq_export_cli.options import SCALE, NonBlank, Score, shared_options
from seq_export_cli.output import table
from seq_export_cli.s3_objects import day_lines, exported_days

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SCAN_SEGMENTS = 4
#: The order an item's attributes are printed in (human lines and JSON); any other goes last.
_PRINT_ORDER = ("source", "username", "date", "score", "metrics", "updated_at")
ITEM_FIELDS: tuple[str, ...] = (
    TABLE_KEY,
    *sorted(ITEM_ATTRIBUTES, key=lambda name: _PRINT_ORDER.index(name) if name in _PRINT_ORDER else len(_PRINT_ORDER)),
)


def json_ready(value: Any) -> Any:
    """DynamoDB values (Decimal, sets) as JSON-ready Python values; integral numbers stay ints."""
    if isinstance(value, Decimal):
        return json_number(value)
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [json_ready(v) for v in value]
    return value


_deserializer = TypeDeserializer()


def subuser_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    """A latest-score item (low-level attribute values) as the fields the CLI prints, in order."""
    values = {k: _deserializer.deserialize(v) for k, v in item.items()}
    return {name: json_ready(values.get(name)) for name in ITEM_FIELDS}


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
        f"source      {item.get('source') or '-'}",
        f"username    {item.get('username') or '-'}",
        f"date        {item.get('date') or '-'}",
        f"score       {item['score'] if item.get('score') is not None else '-'}",
        f"metrics     {shown}",
        f"updated_at  {item.get('updated_at') or '-'}",
    ]


@click.command("lookup")
@click.argument("user_id", required=False, type=NonBlank())
@click.option("--username", metavar="NAME", type=NonBlank(), help="Look up by username instead of user id.")
@click.option(
    "--why/--no-why",
    default=True,
    show_default=True,
    help="When there is no latest score, read each source's newest exported day from S3 to say why. It streams "
    "the object until the subuser's line: for an unknown subuser the whole day, about 250 bytes a subuser "
    "(about 25 MB at 100,000 subusers). --no-why reads nothing from S3.",
)
@shared_options
@with_app
def lookup(app: App, *, user_id: str | None, username: str | None, why: bool) -> int:
    """A subuser's latest score, by USER_ID or --username.

    Exits 1 when there is none, saying whether SendGrid returned the subuser without a score
    on the newest exported day (not eligible) or not at all (unknown); with --no-why, without
    reading that day (see --why for its cost).
    """
    if (user_id is None) == (username is None):
        raise UsageError("give a USER_ID or --username NAME (one of them)")
    table_name = app.target.need("table")
    dynamodb: DynamoDBClient = app.client("dynamodb")
    if username is not None:
        query = {"username": username}
        items = _by_username(dynamodb, table_name, username)
    else:
        query = {"user_id": str(user_id)}
        items = _by_user_id(dynamodb, table_name, str(user_id))
    found = sorted((subuser_fields(i) for i in items if _is_subuser(i)), key=lambda s: _natural(str(s[TABLE_KEY])))
    if found:
        lines: list[str] = []
        for i, item in enumerate(found):
            lines.extend(([""] if i else []) + _item_lines(item))
        app.output.answer({"query": query, "subusers": found}, lines)
        return EXIT_OK
    field, value = next(iter(query.items()))
    missing = _why_missing(app, field, value) if why else _not_checked(app)
    app.output.answer(
        {
            "query": query,
            "subusers": [],
            "reason": missing["reason"],
            "newest_day": missing.get("day"),
            "source": missing.get("source"),
            "newest_days": missing.get("newest_days", {}),
        },
        [f"no latest score for {field} {value!r}: {missing['text']}"],
    )
    return EXIT_NEGATIVE


def _by_user_id(dynamodb: DynamoDBClient, table_name: str, user_id: str) -> list[dict[str, Any]]:
    if user_id == CONTROL_KEY:
        return []
    with aws_failures_named(f"DynamoDB GetItem on table {table_name}"):
        item = dynamodb.get_item(TableName=table_name, Key={TABLE_KEY: {"S": user_id}}).get("Item")
    return [item] if item else []


def _by_username(dynamodb: DynamoDBClient, table_name: str, username: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    with aws_failures_named(f"DynamoDB Query of index {USERNAME_INDEX} on table {table_name}"):
        for page in dynamodb.get_paginator("query").paginate(
            TableName=table_name,
            IndexName=USERNAME_INDEX,
            KeyConditionExpression="#n = :n",
            ExpressionAttributeNames={"#n": "username"},
            ExpressionAttributeValues={":n": {"S": username}},
        ):
            # the index holds keys only (so daily score updates never write it): read the items
            for key in (item[TABLE_KEY]["S"] for item in page.get("Items", [])):
                item = dynamodb.get_item(TableName=table_name, Key={TABLE_KEY: {"S": key}}).get("Item")
                if item:
                    items.append(item)
    return items


def _not_checked(app: App) -> dict[str, Any]:
    """``--no-why``: no latest score, and no S3 read to say why."""
    return {
        "reason": "not_checked",
        "text": f"not in table {app.target.table} (--no-why: the newest exported day was not read to say why)",
    }


def _why_missing(app: App, field: str, value: str) -> dict[str, Any]:
    """Not eligible or unknown, from each source's newest exported day's object (where there is one)."""
    target = app.target
    bucket = target.bucket
    if not bucket:
        return {"reason": "unknown", "text": f"not in table {target.table} (set {Env.SCORES_BUCKET} to say why)"}
    s3 = app.client("s3")
    newest: dict[str, str] = {}
    for source in target.sources:
        days = exported_days(s3, bucket, target.prefix, source)
        if days:
            newest[source] = days[-1]
    if not newest:
        return {"reason": "no_exported_day", "text": f"not in table {target.table}, and no day is exported yet"}
    whose = target.several_sources
    for source, day in newest.items():
        if next(day_lines(s3, bucket, target.prefix, source, day, only=(field, value)), None) is not None:
            said = f"source {source} returned it on {day}, its" if whose else f"SendGrid returned it on {day}, the"
            return {
                "reason": "not_eligible",
                "day": day,
                "source": source,
                "newest_days": newest,
                "text": f"{said} newest exported day, without a score (not eligible)",
            }
    day = max(newest.values())
    if whose:
        each = ", ".join(f"{source} {newest_day}" for source, newest_day in newest.items())
        text = f"no source returned it on its newest exported day ({each})"
    else:
        text = f"SendGrid did not return it on {day}, the newest exported day"
    return {"reason": "unknown", "day": day, "newest_days": newest, "text": text}


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
        with aws_failures_named(f"DynamoDB Scan of table {table} (segment {number + 1}/{segments})"):
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
                result.subusers.extend(subuser_fields(item) for item in page.get("Items", []) if _is_subuser(item))
        return result

    with ThreadPoolExecutor(max_workers=segments) as pool:
        parts = list(pool.map(segment, range(segments)))
    return ScanResult(
        subusers=sort_by_score(s for part in parts for s in part.subusers),
        scanned=sum(part.scanned for part in parts),
        read_units=sum(part.read_units for part in parts),
    )


@click.command("low-scores", short_help="Subusers whose latest score is at or below a value.")
@click.option("--max", "max_score", type=Score(), required=True, help=f"Highest score to list ({SCALE}).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Print only the N lowest.")
@shared_options
@with_app
def low_scores(app: App, *, max_score: Decimal, limit: int | None) -> int:
    """Subusers whose latest score is at or below --max, lowest first.

    Runs a parallel Scan of the whole table (about table size / 8 KB read units; ~3,000 for
    100,000 subusers). Exits 1 when none.
    """
    table_name = app.target.need("table")
    result = scan_low_scores(app.client("dynamodb"), table_name, max_score)
    shown = result.subusers[:limit] if limit else result.subusers
    highest = json_ready(max_score)
    document = {
        "max_score": highest,
        "matched": len(result.subusers),
        "scanned": result.scanned,
        "read_units": result.read_units,
        "subusers": shown,
    }
    total = (
        f"{len(result.subusers)} subusers with a latest score <= {highest}"
        + (f" (showing {len(shown)})" if len(shown) < len(result.subusers) else "")
        + f"; scanned {result.scanned} items, {result.read_units:g} read units"
    )
    width = max([len("source"), *(len(s.get("source") or "-") for s in shown)])
    lines = [f"{'score':>6}  {'user_id':<12} {'source':<{width}} {'username':<24} date"] if shown else []
    lines += [
        f"{s['score']!s:>6}  {s[TABLE_KEY]:<12} {s.get('source') or '-':<{width}} {s.get('username') or '-':<24} "
        f"{s.get('date')}"
        for s in shown
    ]
    lines.append(total)
    rows = [(s["score"], s[TABLE_KEY], s.get("source"), s.get("username"), s.get("date")) for s in shown]
    app.output.answer(document, lines, table(total, ["score>", "user_id", "source", "username", "date"], rows))
    return EXIT_OK if result.subusers else EXIT_NEGATIVE
