"""``migrate-lake``'s line codec: a line written before sources existed becomes the line the
function writes today, with ``source`` added and every other value exactly as it was; anything
the codec could not carry over exactly is refused, naming the line."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest

from seq_export.models import RECORD_KEYS, loads_exact
from seq_export_cli.migrate import (
    Dataset,
    MalformedLineError,
    Migration,
    migrate_body,
    migrate_items,
    migrate_line,
    migrate_object,
)
from tests.support import client_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DAY = "2026-11-22"
METRICS = {"engagement_recency": 1, "open_rate": 4, "bounce_classification": 5, "bounce_rate": 1, "spam_rate": 1}


def legacy(**changes: Any) -> dict[str, Any]:
    line = {
        "date": DAY,
        "user_id": "100001",
        "username": "Zoë",
        "score": 3,
        "metrics": METRICS,
        "exported_at": "2026-11-23T06:00:03.120Z",
    }
    return line | changes


def encoded(line: dict[str, Any]) -> bytes:
    return json.dumps(line, ensure_ascii=False).encode()


def test_a_legacy_line_gains_its_source_in_the_contracts_key_order() -> None:
    line = migrate_line(encoded(legacy()), source="default", day=DAY, line=1)

    assert line.endswith("\n")
    assert list(json.loads(line)) == list(RECORD_KEYS)
    assert json.loads(line) == {"source": "default", **legacy()}


@pytest.mark.parametrize(
    ("number", "written"),
    [
        ("3.75", "3.75"),
        ("3.750", "3.750"),
        ("1.0000000000000000001", "1.0000000000000000001"),
        ("5", "5"),
        ("4.5E+0", "4.5"),
    ],
)
def test_numbers_are_carried_over_exactly(number: str, written: str) -> None:
    raw = encoded(legacy(score=0, metrics={**METRICS, "open_rate": 0}))
    raw = raw.replace(b'"score": 0', b'"score": ' + number.encode())
    raw = raw.replace(b'"open_rate": 0', b'"open_rate": ' + number.encode())

    line = migrate_line(raw, source="eu", day=DAY, line=1)

    assert f'"score": {written},' in line  # no float on the way: 3.75 never becomes 3.7499999
    assert f'"open_rate": {written},' in line
    assert loads_exact(line)["score"] == loads_exact(number)


def test_an_ineligible_line_keeps_its_nulls() -> None:
    line = migrate_line(encoded(legacy(score=None, metrics=None, username=None)), source="eu", day=DAY, line=1)

    assert json.loads(line) == {"source": "eu", **legacy(score=None, metrics=None, username=None)}


def test_a_line_that_already_names_the_source_is_taken_as_it_is() -> None:
    line = migrate_line(encoded({"source": "eu", **legacy()}), source="eu", day=DAY, line=1)

    assert json.loads(line) == {"source": "eu", **legacy()}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "line 7: not a JSON line"),
        (b"\xff\xfe", "line 7: not a JSON line"),
        (b"", "line 7: not a JSON line"),
        (b"[1, 2]", "line 7: not a JSON object but list"),
        (encoded({"source": "global", **legacy()}), "line 7: already names source 'global', not 'eu'"),
        (encoded({k: v for k, v in legacy().items() if k != "exported_at"}), "line 7: lacks exported_at"),
        (encoded(legacy(extra=1)), "line 7: has extra"),
        (encoded(legacy(date="2026-11-21")), "line 7: date is '2026-11-21' in the object of 2026-11-22"),
        (encoded(legacy(user_id=100001)), "line 7: user_id must be a string"),
        (encoded(legacy(score=7)), "line 7 (user_id 100001): score must be within 1..5, got 7"),
        (encoded(legacy(score=True)), "line 7 (user_id 100001): score must be a number"),
        (encoded(legacy(metrics={"open_rate": 4})), "line 7: metrics must have exactly"),
        (encoded(legacy(metrics={**METRICS, "new_metric": 1})), "line 7: metrics must have exactly"),
        (encoded(legacy(exported_at='2026"')), "line 7: exported_at is not an ISO-8601 instant"),
        (encoded(legacy(exported_at=None)), "line 7: exported_at is not an ISO-8601 instant"),
        (b'{"score": NaN}', "line 7: not a JSON line"),
    ],
    ids=lambda value: value if isinstance(value, str) and value.startswith("line") else None,
)
def test_a_malformed_line_is_refused_naming_its_number(raw: bytes, message: str) -> None:
    with pytest.raises(MalformedLineError) as caught:
        migrate_line(raw, source="eu", day=DAY, line=7)

    assert str(caught.value).startswith(message), str(caught.value)
    assert caught.value.line == 7


def test_a_body_is_migrated_line_by_line_and_counted() -> None:
    body = encoded(legacy()) + b"\n" + encoded(legacy(user_id="100002", score=None, metrics=None))

    migrated, lines = migrate_body(body, source="eu", day=DAY)

    assert lines == 2  # the last line without its newline counts too
    assert [json.loads(line)["user_id"] for line in migrated.decode().splitlines()] == ["100001", "100002"]
    assert migrated.endswith(b"\n")


def test_an_empty_line_inside_a_body_is_malformed_and_named() -> None:
    body = encoded(legacy()) + b"\n\n" + encoded(legacy()) + b"\n"

    with pytest.raises(MalformedLineError, match=r"^line 2: not a JSON line"):
        migrate_body(body, source="eu", day=DAY)


def test_an_empty_object_has_no_lines() -> None:
    assert migrate_body(b"", source="eu", day=DAY) == (b"", 0)


# -- races with the exporter (fakes: moto cannot interleave them) ------------------------------------
class RacedS3:
    """The day has no new-layout object when asked, but one appears before the PutObject."""

    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.puts: list[str] = []

    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        raise client_error("404", "HeadObject")

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": io.BytesIO(encoded(legacy()) + b"\n"), "Metadata": {"records": "1"}}

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        self.puts.append(kwargs["Key"])
        assert kwargs["IfNoneMatch"] == "*"
        raise client_error("PreconditionFailed", "PutObject")

    def delete_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        self.deleted.append(Key)
        return {}


def test_a_day_the_exporter_writes_during_the_migration_keeps_the_exporters_object() -> None:
    s3 = RacedS3()
    migration = Migration(bucket="lake", source="default", dry_run=False)
    dataset = Dataset(kind="subusers", prefix="seq/subuser_scores", legacy_objects=1)

    done = migrate_object(s3, migration, dataset, DAY, "seq/subuser_scores/old")

    assert done["action"] == "delete"
    assert s3.puts == [done["to"]]  # written only if absent: the exporter's object stays
    assert s3.deleted == ["seq/subuser_scores/old"]
    assert (dataset.moved, dataset.kept_existing) == (0, 1)


class RacedTable:
    """Two items without source when scanned; the exporter rewrites the second before its update."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []

    def get_paginator(self, name: str) -> Any:
        items = [{"user_id": {"S": uid}} for uid in ("1", "2", "#seq-export#control")]
        return SimpleNamespace(paginate=lambda **_: [{"Items": items}])

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        self.updates.append(kwargs)
        if kwargs["Key"]["user_id"]["S"] == "2":
            raise client_error("ConditionalCheckFailedException", "UpdateItem")
        return {}


def test_items_are_tagged_only_where_they_still_have_no_source_and_never_the_control_item() -> None:
    table = RacedTable()

    items = migrate_items(cast("DynamoDBClient", table), "latest", "eu", dry_run=False)

    assert (items.without_source, items.updated, items.already_had_source) == (2, 1, 1)
    assert sorted(update["Key"]["user_id"]["S"] for update in table.updates) == ["1", "2"]
    update = table.updates[0]
    assert update["UpdateExpression"] == "SET #s = :s"
    assert update["ConditionExpression"] == "attribute_exists(#k) AND attribute_not_exists(#s)"
    assert update["ExpressionAttributeValues"] == {":s": {"S": "eu"}}
