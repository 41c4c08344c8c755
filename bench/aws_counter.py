"""Counts AWS API calls by operation and DynamoDB capacity, inside the moto server process.

A WSGI middleware around moto's own application: every request is classified (the same
names as ``local/aws_fault_proxy.py`` uses, S3 refined by method, path and query) and
counted; nothing is forwarded over a second HTTP hop, so the counting does not slow down the
process being measured.

* ``GET /__bench/calls``: the counts, and this process's CPU seconds;
* ``POST /__bench/reset``: zero them (``?forget=1`` also forgets the items written: moto was
  emptied);
* ``POST /__bench/tables``: the key schema and global secondary indexes of the tables (the
  driver reads them with DescribeTable), possibly with "what-if" indexes (another projection of
  a real one) whose writes are tallied apart.

DynamoDB capacity is *computed from item sizes*, with DynamoDB's published rules, because
moto's ``ReturnConsumedCapacity`` is not usable for this (it answers 1.0 for a whole
BatchWriteItem call of 25 items, and nothing for UpdateItem):

* a write costs ceil(item size / 1 KiB) units (UpdateItem: of the written attributes, at least
  1); a conditional write that fails its condition still costs its units;
* a global secondary index costs one more write of ceil((projected size + 100) / 1 KiB) units
  whenever the write changes what the index holds for that item: it puts a new index entry,
  changes its key (a delete and a put, 2 writes) or, with projection ALL or INCLUDE, changes a
  projected attribute. The counter remembers what each key last wrote since the last reset;
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
from urllib.parse import parse_qs

from werkzeug.wrappers import Request, Response

from local.aws_fault_proxy import operation_of

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]
CONTROL_PREFIX = "/__bench/"
KIB = 1024
INDEX_OVERHEAD = 100  # bytes DynamoDB adds to every index entry
DYNAMODB_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}


# -- DynamoDB item sizes (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)
def number_size(text: str) -> int:
    """Bytes of a number: about one per two significant digits, plus one."""
    digits = text.lstrip("+-").lower().split("e")[0].replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value: dict[str, Any]) -> int:
    kind, data = next(iter(value.items()))
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        return number_size(str(data))
    if kind == "B":
        return len(base64.b64decode(data))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in data.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in data)
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "NS":
        return sum(number_size(s) for s in data)
    if kind == "BS":
        return sum(len(base64.b64decode(b)) for b in data)
    return 0


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
    what_if: bool = False  # not a real index: its writes are tallied apart, as "what it would cost"


@dataclass
class TableSpec:
    keys: tuple[str, ...]
    indexes: list[IndexSpec] = field(default_factory=list)


@dataclass
class Tally:
    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    table_wcu: float = 0.0
    index_wcu: float = 0.0
    rcu: float = 0.0
    items_written: int = 0
    max_item_bytes: int = 0
    what_if: Counter[str] = field(default_factory=Counter)

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
                "what_if_index_wcu": dict(self.what_if),
            },
        }


def s3_operation(method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> str:
    segments = [s for s in path.split("/") if s]
    if not segments:
        return "S3.ListBuckets"
    if len(segments) == 1:  # the bucket itself
        if method == "GET":
            return "S3.ListObjectsV2" if query.get("list-type") == ["2"] else "S3.GetBucket?" + "&".join(sorted(query))
        if method == "HEAD":
            return "S3.HeadBucket"
        if method == "PUT":
            return "S3.CreateBucket" if not query else "S3.PutBucket?" + "&".join(sorted(query))
        if method == "POST" and "delete" in query:
            return "S3.DeleteObjects"
        if method == "DELETE":
            return "S3.DeleteBucket"
    else:  # an object
        if method == "PUT":
            if "partNumber" in query:
                return "S3.UploadPart"
            if "x-amz-copy-source" in headers:
                return "S3.CopyObject"
            return "S3.PutObject" if not query else "S3.PutObject?" + "&".join(sorted(query))
        if method == "GET":
            return "S3.ListParts" if "uploadId" in query else "S3.GetObject"
        if method == "HEAD":
            return "S3.HeadObject"
        if method == "DELETE":
            return "S3.AbortMultipartUpload" if "uploadId" in query else "S3.DeleteObject"
        if method == "POST":
            if "uploads" in query:
                return "S3.CreateMultipartUpload"
            if "uploadId" in query:
                return "S3.CompleteMultipartUpload"
    return f"S3.{method}"


def classify(environ: dict[str, Any]) -> str:
    request = Request(environ)  # reads headers and query only, never the body
    named = operation_of(request)
    if named.split(".", 1)[0] in ("DynamoDB", "SQS", "SecretsManager"):
        return named
    target = request.headers.get("X-Amz-Target", "")
    if target:
        return target
    headers = {k.lower(): v for k, v in request.headers.items()}
    return s3_operation(request.method, request.path, parse_qs(environ.get("QUERY_STRING", ""), True), headers)


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
            path = environ.get("PATH_INFO", "")
            if path.startswith(CONTROL_PREFIX):
                return self._control(environ, start_response)
            if path.startswith("/moto-api/"):
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

    # -- control -----------------------------------------------------------------------------
    def _control(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        action = request.path[len(CONTROL_PREFIX) :]
        with self._lock:
            if action == "calls":
                usage = resource.getrusage(resource.RUSAGE_SELF)
                answer: Any = {**self._tally.as_dict(), "server_cpu_s": usage.ru_utime + usage.ru_stime}
            elif action == "reset" and request.method == "POST":
                self._tally = Tally()
                if request.args.get("forget") == "1":  # moto was emptied: no item is known any more
                    self._views.clear()
                answer = {"reset": True}
            elif action == "tables" and request.method == "POST":
                for name, spec in json.loads(request.get_data()).items():
                    self._tables[name] = TableSpec(
                        keys=tuple(spec["keys"]),
                        indexes=[
                            IndexSpec(
                                i["name"],
                                tuple(i["keys"]),
                                i["projection"],
                                tuple(i.get("included", ())),
                                bool(i.get("what_if", False)),
                            )
                            for i in spec.get("indexes", [])
                        ],
                    )
                answer = {"tables": sorted(self._tables)}
            else:
                return Response("unknown bench control", status=404)(environ, start_response)
        return Response(json.dumps(answer), content_type="application/json")(environ, start_response)

    # -- DynamoDB capacity -------------------------------------------------------------------
    def _dynamodb(self, action: str, body: dict[str, Any], ok: bool) -> None:
        tally = self._tally
        if action == "PutItem":
            self._put(body.get("TableName", ""), body.get("Item", {}), ok)
        elif action == "BatchWriteItem" and ok:
            for table, requests in body.get("RequestItems", {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        self._put(table, request["PutRequest"].get("Item", {}), ok)
                    else:
                        tally.table_wcu += 1
        elif action == "UpdateItem":
            self._update(body, ok)
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

    def _put(self, table: str, item: dict[str, Any], ok: bool) -> None:
        size = item_size(item)
        self._tally.table_wcu += write_units(size)
        self._tally.items_written += 1
        self._tally.max_item_bytes = max(self._tally.max_item_bytes, size)
        if ok:
            self._index_writes(table, item)

    def _update(self, body: dict[str, Any], ok: bool) -> None:
        table = body.get("TableName", "")
        key = body.get("Key", {})
        names = body.get("ExpressionAttributeNames", {})
        values = body.get("ExpressionAttributeValues", {})
        written = dict(key)
        expression = body.get("UpdateExpression", "")
        set_part = expression.split("SET", 1)[1].split("REMOVE", 1)[0] if "SET" in expression else ""
        for assignment in set_part.split(","):
            if "=" not in assignment:
                continue
            name, placeholder = (part.strip() for part in assignment.split("=", 1))
            if placeholder in values:
                written[names.get(name, name)] = values[placeholder]
        size = item_size(written)
        self._tally.table_wcu += write_units(size)
        self._tally.items_written += 1 if ok else 0
        self._tally.max_item_bytes = max(self._tally.max_item_bytes, size)
        if ok:
            self._index_writes(table, written)

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
                    self._charge(index, 1)
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
            self._charge(index, units * (2 if moved else 1))
            self._views[view_key] = view

    def _charge(self, index: IndexSpec, units: int) -> None:
        if index.what_if:
            self._tally.what_if[index.name] += units
        else:
            self._tally.index_wcu += units
