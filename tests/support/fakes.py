"""Recording fakes of the outside world for unit tests: AWS clients, SendGrid's HTTP, the clock.

Each fake records every call it gets and answers from a script or a responder, so a test can
assert the exact requests an adapter made and make any of them fail the way AWS or SendGrid do.
Builders of the data they carry are in ``builders.py``.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from botocore.exceptions import ClientError
from requests.adapters import BaseAdapter
from requests.models import PreparedRequest, Response
from requests.structures import CaseInsensitiveDict

from seq_export.errors import ScoresNotReady, SeqUnavailableError, StorageError
from seq_export.latest_store import DayWriter
from seq_export.layout import CONTROL_KEY
from seq_export.models import Page
from seq_export.seq_client import SeqClient

#: Where every fake clock starts (epoch seconds).
START = 1_700_000_000.0


def client_error(code: str, operation: str, **extra: Any) -> ClientError:
    """The error botocore raises when AWS answers ``operation`` with ``code``."""
    response: Any = {"Error": {"Code": code, "Message": f"{code} from the fake"}, **extra}
    return ClientError(response, operation)


#: The domain errors after which running the same export again later can succeed without anyone
#: changing anything (the use cases tell them apart by type).
RETRYABLE_ERRORS = (SeqUnavailableError, StorageError, ScoresNotReady)


def retryable(error: BaseException) -> bool:
    """Whether ``error`` is one a later run of the same export can get past."""
    return isinstance(error, RETRYABLE_ERRORS)


@dataclass
class Clock:
    """A clock that only moves when the code under test sleeps."""

    now: float = START
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# -- DynamoDB --------------------------------------------------------------------------------

CONDITION_FAILED = "ConditionalCheckFailedException"
CLAIM_CONDITION_PART = "newest_date <= :d"

Responder = Callable[[dict[str, Any]], dict[str, Any]]


def grant(_: dict[str, Any]) -> dict[str, Any]:
    return {}


def all_processed(_: dict[str, Any]) -> dict[str, Any]:
    return {"UnprocessedItems": {}}


def raising(error: Exception) -> Responder:
    """A responder that answers every call with ``error``."""

    def responder(_: dict[str, Any]) -> dict[str, Any]:
        raise error

    return responder


def raising_first(errors: list[Exception]) -> Responder:
    """A responder that raises each of ``errors`` once, in order, then answers ``{}``."""
    pending = list(errors)

    def responder(_: dict[str, Any]) -> dict[str, Any]:
        if pending:
            raise pending.pop(0)
        return {}

    return responder


def lease_held_by(day: str) -> ClientError:
    """The claim's refusal, carrying the control item as ReturnValuesOnConditionCheckFailure=ALL_OLD does."""
    item = {
        "user_id": {"S": CONTROL_KEY},
        "newest_date": {"S": day},
        "lease_date": {"S": day},
        "lease_holders": {"SS": [f"{day}/someone-else"]},
        "lease_until": {"N": str(int(START) + 100)},
    }
    return client_error(CONDITION_FAILED, "UpdateItem", Item=item)


def write_path(writer: DayWriter) -> str | None:
    """The path a day's writer took from its first scored record on: ``"batch"``, ``"conditional"``
    or ``"tracked"`` (None before). The writer's own state, read here so that the production
    class carries no accessor that only tests use."""
    return writer._mode


class FakeDynamoDB:
    """Records every call; answers writes through per-operation responders that may raise, and
    GetItem from ``items`` (user_id -> item, as the CLI's lookup reads the table)."""

    def __init__(
        self,
        *,
        items: Mapping[str, dict[str, Any]] | None = None,
        claim: Responder = grant,
        put: Responder = grant,
        release: Responder = grant,
        batch: Responder = all_processed,
    ) -> None:
        self.claim = claim
        self.put = put
        self.release = release
        self.batch = batch
        self.items = dict(items or {})
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            self.calls.append(("update_item", kwargs))
        if kwargs["Key"] == {"user_id": {"S": CONTROL_KEY}}:
            expression = kwargs["UpdateExpression"]
            return self.release(kwargs) if expression.startswith("DELETE") else self.claim(kwargs)
        return self.put(kwargs)

    def batch_write_item(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            self.calls.append(("batch_write_item", kwargs))
        return self.batch(kwargs)

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            self.calls.append(("get_item", kwargs))
        item = self.items.get(kwargs["Key"]["user_id"]["S"])
        return {"Item": item} if item else {}

    # -- views -----------------------------------------------------------------------------
    def claims(self) -> list[dict[str, Any]]:
        return [
            c
            for op, c in self.calls
            if op == "update_item" and CLAIM_CONDITION_PART in c.get("ConditionExpression", "")
        ]

    def releases(self) -> list[dict[str, Any]]:
        return [c for op, c in self.calls if op == "update_item" and c["UpdateExpression"].startswith("DELETE")]

    def joins(self) -> list[dict[str, Any]]:
        """Tries to join a live lease of the same day."""
        return [
            c for op, c in self.calls if op == "update_item" and "ADD lease_holders" in c.get("UpdateExpression", "")
        ]

    def puts(self) -> list[dict[str, Any]]:
        return [c for op, c in self.calls if op == "update_item" and c["Key"]["user_id"]["S"] != CONTROL_KEY]

    def keys_read(self) -> list[dict[str, Any]]:
        """The key of each GetItem call."""
        return [c["Key"] for op, c in self.calls if op == "get_item"]

    def batches(self) -> list[list[dict[str, Any]]]:
        """The write requests of each BatchWriteItem call (whatever table they name)."""
        return [
            [request for requests in c["RequestItems"].values() for request in requests]
            for op, c in self.calls
            if op == "batch_write_item"
        ]


# -- SQS -------------------------------------------------------------------------------------


def all_successful(call: dict[str, Any]) -> dict[str, Any]:
    return {"Successful": [{"Id": e["Id"], "MessageId": f"m-{e['Id']}"} for e in call["Entries"]], "Failed": []}


class FakeSQS:
    """Records sends; batches are answered by ``batch``, and ``error`` (if any) is raised by every send."""

    def __init__(self, *, batch: Responder = all_successful, error: Exception | None = None) -> None:
        self.batch = batch
        self.error = error
        self.sent: list[dict[str, Any]] = []
        self.batches: list[dict[str, Any]] = []

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        self.sent.append(kwargs)
        if self.error is not None:
            raise self.error
        return {"MessageId": "m-1"}

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.batches.append(kwargs)
        if self.error is not None:
            raise self.error
        return self.batch(kwargs)


# -- EventBridge -----------------------------------------------------------------------------


class FakeEvents:
    """Records PutEvents calls; refuses chosen users' entries, or fails whole calls, a set number of times."""

    def __init__(self, refuse: dict[str, int] | None = None, raise_times: int = 0) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.refuse = refuse or {}  # user_id -> how many times to refuse its entry
        self.raise_times = raise_times

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        if self.raise_times:
            self.raise_times -= 1
            raise client_error("InternalException", "PutEvents")
        answers = []
        for entry in Entries:
            user = json.loads(entry["Detail"]).get("user_id", "")  # a daily digest names no subuser
            if self.refuse.get(user, 0) > 0:
                self.refuse[user] -= 1
                answers.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            else:
                answers.append({"EventId": f"e-{user}"})
        return {"FailedEntryCount": sum(1 for a in answers if "ErrorCode" in a), "Entries": answers}


# -- SendGrid over HTTP ----------------------------------------------------------------------

SEQ_BASE_URL = "http://seq.test"
SEQ_API_KEY = "SG.unit-test-key.do-not-leak-0123456789"
SEQ_DAY = "2024-05-01"


@dataclass
class Answer:
    """One scripted HTTP answer."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def ok(records: list[Any] | None = None, after_key: object = None, **extra: Any) -> Answer:
    """A 200 page; ``after_key`` None means no ``_metadata`` at all."""
    body: dict[str, Any] = {"result": records if records is not None else [], **extra}
    if after_key is not None:
        body["_metadata"] = {"next_params": {"after_key": after_key}}
    return Answer(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def sendgrid_error(status: int, *errors: tuple[str | None, str], headers: dict[str, str] | None = None) -> Answer:
    body = {"errors": [{"field": f, "message": m} for f, m in errors]}
    return Answer(status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})


Step = Answer | Exception


class ScriptedAdapter(BaseAdapter):
    """Transport that answers from a script and records every request and timeout it was given."""

    def __init__(self, script: list[Step]) -> None:
        super().__init__()
        self.script = list(script)
        self.requests: list[PreparedRequest] = []
        self.timeouts: list[object] = []

    def send(  # noqa: PLR0917 - the signature is BaseAdapter.send's, which Session calls
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Response:
        self.requests.append(request)
        self.timeouts.append(timeout)
        if not self.script:
            raise AssertionError(f"unexpected extra request {request.url}")
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        response = Response()
        response.status_code = step.status
        response.headers = CaseInsensitiveDict(step.headers)
        response.raw = io.BytesIO(step.body)
        response.reason = "scripted"
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass

    def params(self, index: int) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.requests[index].url or "").query, keep_blank_values=True)


@dataclass
class Harness:
    """A SeqClient over a ScriptedAdapter, with the waits it asked for."""

    client: SeqClient
    adapter: ScriptedAdapter
    sleeps: list[float]

    def pages(self, day: str = SEQ_DAY, **kwargs: Any) -> list[Page]:
        return list(self.client.iter_pages(day, **kwargs))


def harness(
    *script: Step,
    jitter: float = 1.0,
    clock: float = START,
    api_key: Callable[[], str] = lambda: SEQ_API_KEY,
    **options: Any,
) -> Harness:
    """A SeqClient answered by ``script``: no socket, no real sleep, a frozen clock, constant jitter."""
    adapter = ScriptedAdapter(list(script))
    session = requests.Session()
    session.trust_env = False  # no proxies or netrc from the environment
    session.mount("http://", adapter)
    sleeps: list[float] = []
    client = SeqClient(
        SEQ_BASE_URL,
        api_key,
        session=session,
        sleep=sleeps.append,
        clock=lambda: clock,
        jitter=lambda: jitter,
        **options,
    )
    return Harness(client=client, adapter=adapter, sleeps=sleeps)
