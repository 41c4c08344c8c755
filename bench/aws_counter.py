"""Counts AWS API calls by operation and DynamoDB capacity, inside the moto server process.

A WSGI middleware around moto's own application: every request is classified (the same
names as ``local/aws_fault_proxy.py`` uses, S3 refined by method, path and query) and
counted; nothing is forwarded over a second HTTP hop, so the counting does not slow down the
process being measured. The driver's commands (``bench/services.py`` reads them on standard
input) go to :meth:`AwsCounter.command`:

* ``calls``: the counts, and this process's CPU seconds (every command answers them);
* ``reset``: zero them; ``forget``: also forget the items written (moto was emptied);
* ``tables JSON``: DescribeTable's answer for each table (its key schema and global secondary
  indexes).

DynamoDB capacity is *computed from item sizes*, with DynamoDB's published rules, because
moto's ``ReturnConsumedCapacity`` is not usable for this (it answers 1.0 for a whole
BatchWriteItem call of 25 items, and nothing for UpdateItem):

* a write costs ceil(item size / 1 KiB) units (UpdateItem: of the written attributes, at least
  1); a conditional write that fails its condition still costs its units;
* a global secondary index costs one more write of ceil((projected size + 100) / 1 KiB) units
  whenever the write changes what the index holds for that item: it puts a new index entry,
  changes its key (a delete and a put, 2 writes) or, with projection ALL or INCLUDE, changes a
  projected attribute. The counter remembers what each key last wrote since the last forget;
* a read costs 0.5 unit per item of up to 4 KiB (eventually consistent), 1 if consistent.
  Query and Scan are counted as calls (their units depend on what they return).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import resource
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request

from local.aws_fault_proxy import operation_of

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]
KIB = 1024
INDEX_OVERHEAD = 100  # bytes DynamoDB adds to every index entry
DYNAMODB_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
#: S3 operations by method, then by what the path names (a bucket or an object) and the first of
#: ``S3_MARKERS`` in the query string.
S3_MARKERS = ("partNumber", "uploadId", "uploads", "delete", "list-type")
S3_OPERATIONS = {
    "GET": {"bucket list-type": "ListObjectsV2", "object": "GetObject", "object uploadId": "ListParts"},
    "HEAD": {"bucket": "HeadBucket", "object": "HeadObject"},
    "PUT": {"bucket": "CreateBucket", "object": "PutObject", "object partNumber": "UploadPart"},
    "POST": {
        "bucket delete": "DeleteObjects",
        "object uploads": "CreateMultipartUpload",
        "object uploadId": "CompleteMultipartUpload",
    },
    "DELETE": {"bucket": "DeleteBucket", "object": "DeleteObject", "object uploadId": "AbortMultipartUpload"},
}


# -- DynamoDB item sizes (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)
def number_size(text: str) -> int:
    """Bytes of a number: about one per two significant digits, plus one."""
    digits = text.lstrip("+-").lower().split("e")[0].replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value: dict[str, Any]) -> int:
    kind, data = next(iter(value.items()))
    return VALUE_SIZES[kind](data) if kind in VALUE_SIZES else 0


VALUE_SIZES: dict[str, Callable[[Any], int]] = {
    "S": lambda d: len(str(d).encode()),
    "N": lambda d: number_size(str(d)),
    "B": lambda d: len(base64.b64decode(d)),
    "BOOL": lambda _: 1,
    "NULL": lambda _: 1,
    "M": lambda d: 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in d.items()),
    "L": lambda d: 3 + sum(value_size(v) + 1 for v in d),
    "SS": lambda d: sum(len(s.encode()) for s in d),
    "NS": lambda d: sum(number_size(s) for s in d),
    "BS": lambda d: sum(len(base64.b64decode(b)) for b in d),
}


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / KIB))


@dataclass(frozen=True)
class IndexSpec:
    name: str
    keys: tuple[str, ...]  # hash key, then range key if any
    projection: str  # ALL, KEYS_ONLY or INCLUDE
    included: tuple[str, ...] = ()


@dataclass
class TableSpec:
    keys: tuple[str, ...]
    indexes: list[IndexSpec] = field(default_factory=list)

    @classmethod
    def described(cls, table: dict[str, Any]) -> TableSpec:
        """From DescribeTable's ``Table``."""
        indexes = [
            IndexSpec(
                index["IndexName"],
                tuple(k["AttributeName"] for k in index["KeySchema"]),
                index["Projection"]["ProjectionType"],
                tuple(index["Projection"].get("NonKeyAttributes", ())),
            )
            for index in table.get("GlobalSecondaryIndexes", [])
        ]
        return cls(tuple(k["AttributeName"] for k in table["KeySchema"]), indexes)


@dataclass
class Tally:
    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    table_wcu: float = 0.0
    index_wcu: float = 0.0
    rcu: float = 0.0
    items_written: int = 0
    max_item_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "errors": dict(self.errors),
            "dynamodb": {
                "table_wcu": self.table_wcu,
                "index_wcu": self.index_wcu,
                "wcu": self.table_wcu + self.index_wcu,
                "rcu": self.rcu,
                "read_calls": sum(n for op, n in self.calls.items() if op.split(".", 1)[-1] in DYNAMODB_READS),
                "items_written": self.items_written,
                "max_item_bytes": self.max_item_bytes,
            },
        }


def s3_operation(request: Request) -> str:
    depth = len([s for s in request.path.split("/") if s])
    if depth == 0:
        return "S3.ListBuckets"
    if depth > 1 and request.method == "PUT" and "x-amz-copy-source" in request.headers:
        return "S3.CopyObject"
    other = "&".join(sorted(set(request.args) - {"x-id"}))
    named = "bucket" if depth == 1 else "object"
    marker = next((m for m in S3_MARKERS if m in request.args), other)
    known = S3_OPERATIONS.get(request.method, {}).get(f"{named} {marker}".strip())
    return f"S3.{known or f'{request.method} {named}?{other}'}"


def classify(environ: dict[str, Any]) -> str:
    request = Request(environ)  # reads headers and query only, never the body
    target = request.headers.get("X-Amz-Target", "")
    if not target:
        return s3_operation(request)
    named = operation_of(request)  # the names of local/aws_fault_proxy.py where it has them
    return named if named.split(".", 1)[0] in ("DynamoDB", "SQS", "SecretsManager") else target


class AwsCounter:
    """The middleware; ``wrap(app)`` returns the counting WSGI application."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tally = Tally()
        self._tables: dict[str, TableSpec] = {}
        #: (table, index, item key) -> (index key, hash of the projected attributes) last written
        self._views: dict[tuple[str, str, str], tuple[str, str]] = {}

    def wrap(self, app: WsgiApp) -> WsgiApp:
        def counted(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if environ.get("PATH_INFO", "").startswith("/moto-api/"):
                return app(environ, start_response)
            operation = classify(environ)
            body: dict[str, Any] | None = None
            if operation.startswith("DynamoDB."):
                raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                environ["wsgi.input"] = io.BytesIO(raw)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
            status: list[int] = []

            def recording_start_response(status_line: str, headers: Any, exc_info: Any = None) -> Any:
                status.append(int(status_line.split(" ", 1)[0]))
                return start_response(status_line, headers, exc_info)

            answer = app(environ, recording_start_response)
            chunks = list(answer)  # moto answers in memory; the status is known once it is iterated
            close = getattr(answer, "close", None)
            if close is not None:
                close()
            ok = bool(status) and status[0] < 400
            with self._lock:
                self._tally.calls[operation] += 1
                if not ok:
                    self._tally.errors[operation] += 1
                if body is not None:
                    self._dynamodb(operation.split(".", 1)[1], body, ok)
            return chunks

        return counted

    def command(self, name: str, argument: str) -> dict[str, Any]:
        """One command of the driver (see the module's docstring); answers the counts."""
        with self._lock:
            if name in ("reset", "forget"):
                self._tally = Tally()
                if name == "forget":  # moto was emptied: no item is known any more
                    self._views.clear()
            elif name == "tables":
                self._tables.update({t: TableSpec.described(d) for t, d in json.loads(argument).items()})
            elif name != "calls":
                raise ValueError(f"unknown command {name!r}")
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return {**self._tally.as_dict(), "server_cpu_s": usage.ru_utime + usage.ru_stime}

    # -- DynamoDB capacity -------------------------------------------------------------------
    def _dynamodb(self, action: str, body: dict[str, Any], ok: bool) -> None:
        tally = self._tally
        if action == "PutItem":
            self._write(body.get("TableName", ""), body.get("Item", {}), ok)
        elif action == "BatchWriteItem" and ok:
            for table, requests in body.get("RequestItems", {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        self._write(table, request["PutRequest"].get("Item", {}), ok)
                    else:
                        tally.table_wcu += 1
        elif action == "UpdateItem":
            self._write(body.get("TableName", ""), _updated(body), ok)
        elif action == "DeleteItem":
            tally.table_wcu += 1
        elif action == "TransactWriteItems":
            tally.table_wcu += 2 * len(body.get("TransactItems", []))
        elif action == "GetItem":
            tally.rcu += 1.0 if body.get("ConsistentRead") else 0.5
        elif action == "BatchGetItem":
            for request in body.get("RequestItems", {}).values():
                tally.rcu += len(request.get("Keys", [])) * (1.0 if request.get("ConsistentRead") else 0.5)
        elif action == "TransactGetItems":
            tally.rcu += 2 * len(body.get("TransactItems", []))

    def _write(self, table: str, item: dict[str, Any], ok: bool) -> None:
        """A put or update of ``item`` (for an update: its key and the attributes it sets)."""
        size = item_size(item)
        self._tally.table_wcu += write_units(size)
        self._tally.max_item_bytes = max(self._tally.max_item_bytes, size)
        if ok:
            self._tally.items_written += 1
            self._index_writes(table, item)

    def _index_writes(self, table: str, item: dict[str, Any]) -> None:
        spec = self._tables.get(table)
        if spec is None or not spec.indexes:
            return
        item_key = json.dumps([item.get(k) for k in spec.keys], sort_keys=True)
        for index in spec.indexes:
            view_key = (table, index.name, item_key)
            old = self._views.get(view_key)
            if not all(k in item for k in index.keys):
                if old is not None:  # the entry leaves the index
                    self._tally.index_wcu += 1
                    del self._views[view_key]
                continue
            if index.projection == "ALL":
                projected = item
            else:
                kept = set(index.keys) | set(spec.keys) | set(index.included)
                projected = {k: v for k, v in item.items() if k in kept}
            index_key = json.dumps([item[k] for k in index.keys], sort_keys=True)
            view = (index_key, hashlib.sha256(json.dumps(projected, sort_keys=True).encode()).hexdigest())
            if old == view:
                continue
            units = write_units(item_size(projected) + INDEX_OVERHEAD)
            moved = old is not None and old[0] != index_key
            self._tally.index_wcu += units * (2 if moved else 1)
            self._views[view_key] = view


def _updated(body: dict[str, Any]) -> dict[str, Any]:
    """What an UpdateItem writes: its key and the attributes its SET clause assigns."""
    names, values = body.get("ExpressionAttributeNames", {}), body.get("ExpressionAttributeValues", {})
    written = dict(body.get("Key", {}))
    expression = body.get("UpdateExpression", "")
    set_part = expression.split("SET", 1)[1].split("REMOVE", 1)[0] if "SET" in expression else ""
    for assignment in set_part.split(","):
        if "=" in assignment:
            name, placeholder = (part.strip() for part in assignment.split("=", 1))
            if placeholder in values:
                written[names.get(name, name)] = values[placeholder]
    return written
