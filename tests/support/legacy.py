"""A lake and table as the exporter wrote them before sources existed (objects under
``{prefix}/dt=D/``, lines and latest-score items without ``source``), made from a day the
exporter just wrote: what ``seq-export migrate-lake`` upgrades."""

from __future__ import annotations

from typing import Any

from seq_export import layout, record_codec
from seq_export.models import ACCOUNT, SUBUSERS
from tests.support.cli import object_body, object_key
from tests.support.stack import Stack


def prefix_of(stack: Stack, kind: str) -> str:
    return stack.settings.account_scores_prefix if kind == ACCOUNT else stack.settings.scores_prefix


def legacy_key(stack: Stack, day: str, kind: str = SUBUSERS) -> str:
    """``{prefix}/dt=D/scores.jsonl``: where a day was before sources existed."""
    return layout.legacy_day_key(prefix_of(stack, kind), day)


def current_keys(stack: Stack) -> list[str]:
    """The bucket's data keys as a reader lists them now (no earlier versions, no delete markers,
    nothing under a ``_`` folder such as the split points)."""
    answer = stack.session.client("s3").list_objects_v2(Bucket=stack.resources.bucket)
    keys = (item["Key"] for item in answer.get("Contents", []))
    return sorted(key for key in keys if not any(part.startswith("_") for part in key.split("/")))


def put_legacy(stack: Stack, day: str, body: bytes, kind: str = SUBUSERS, records: int | None = None) -> str:
    key = legacy_key(stack, day, kind)
    metadata = {"records": str(records if records is not None else body.count(b"\n"))}
    stack.session.client("s3").put_object(
        Bucket=stack.resources.bucket, Key=key, Body=body, ContentType=record_codec.CONTENT_TYPE, Metadata=metadata
    )
    return key


def make_legacy(stack: Stack, day: str, kind: str = SUBUSERS) -> bytes:
    """Turn an exported day into the object the exporter wrote before sources: the same lines
    without ``source``, at the legacy key; the day's new-layout object removed."""
    s3 = stack.session.client("s3")
    key = object_key(stack, day, kind=kind)
    lines = [line.rstrip("\n") for line in object_body(stack, key).decode().splitlines()]
    legacy = "".join(_without_source(line) + "\n" for line in lines).encode()
    put_legacy(stack, day, legacy, kind)
    s3.delete_object(Bucket=stack.resources.bucket, Key=key)
    return legacy


def _without_source(line: str) -> str:
    prefix = '{"source": "default", '
    assert line.startswith(prefix)
    return "{" + line.removeprefix(prefix)


def items(stack: Stack) -> dict[str, dict[str, Any]]:
    table = stack.session.resource("dynamodb").Table(stack.resources.table)
    return {str(item["user_id"]): dict(item) for item in table.scan()["Items"]}


def strip_item_sources(stack: Stack) -> None:
    """The latest-score items as written before sources: no ``source``."""
    table = stack.session.resource("dynamodb").Table(stack.resources.table)
    for user_id in items(stack):
        if user_id != layout.CONTROL_KEY:
            table.update_item(
                Key={"user_id": user_id}, UpdateExpression="REMOVE #s", ExpressionAttributeNames={"#s": "source"}
            )
