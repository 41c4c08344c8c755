"""A local SendGrid Engagement Quality API that follows the official spec (seq_openapi_v3.yaml).

It serves ``GET /v3/engagementquality/subusers/scores`` over real HTTP on 127.0.0.1 with:
bearer auth (401), parameter checks and the 90-day window (400), cursor pagination
(``after_key`` in, ``_metadata.next_params.after_key`` out, absent on the last page), ineligible
subusers (no ``score``/``metrics``), ``X-RateLimit-*`` headers on every answer, and scripted
trouble: 202 answers before a day is ready, and per-page faults (429, 5xx, odd bodies, a stuck
cursor, a repeated page). Scores are a pure function of (date, user_id), so tests can compare
an export with ``expected_records``.

Cursors an exporter must not take for granted (every default is SendGrid's plain behaviour):
gaps in the ids (``Scenario.removed``; an id cursor ``K`` then resumes at the first id above
``K``), an offset cursor instead of the last user id (``cursor="offset"``), ids served in a fixed
shuffled order (``order="shuffled"``), pages that start a few records early (``"overlap"``
fault) or end with a record that does not exist (``"phantom"``), and faults aimed at one
``after_key`` rather than a page number. For parallel fetching: a round trip per page
(``latency``), a cap on requests answered at once (``max_in_flight``), a windowed request limit
(``rate_limit`` per ``rate_window`` seconds, counted down in ``X-RateLimit-*``), either with or
without those headers (``limit_headers``), and a request log that says how many requests were in
flight as each arrived (``max_in_flight_seen``).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import socket
import struct
import threading
import time
from array import array
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from werkzeug.wrappers import Request, Response

from local.loopback import LoopbackServer

SUBUSER_SCORES_PATH = "/v3/engagementquality/subusers/scores"
ACCOUNT_SCORES_PATH = "/v3/engagementquality/scores"
ACCOUNT_USER_ID = "1"
METRIC_NAMES = ("engagement_recency", "open_rate", "bounce_classification", "bounce_rate", "spam_rate")
FIRST_USER_ID = 100_001
RATE_LIMIT = 600
RESET_STATUS = 599  # internal marker: answer by resetting the connection
NOT_READY_MESSAGE = "We are processing the score for this date range. Please try again later."
CURSORS = ("user_id", "offset")
ORDERS = ("ascending", "shuffled")


@dataclass
class Fault:
    """Answer page ``page`` (1-based) of any date ``times`` times with this instead of the data.

    Page 0 aims at the parent account's endpoint (``/v3/engagementquality/scores``). With
    ``after_key`` set, the fault aims instead at the subuser requests whose raw ``after_key`` is
    exactly that (``page`` is then ignored), so a test can hit one key range of a parallel fetch.
    """

    page: int
    status: int = 500
    times: int = 1
    body: str | None = None
    rate_headers: bool = True
    #: "status" (answer ``status`` with ``body``), "stuck_cursor", "repeat_users",
    #: "reset" (TCP reset, no answer), "truncate" (a 200 cut off mid-body), "slow" (answer late),
    #: "overlap" (the page starts ``overlap`` records early, repeating ids already served),
    #: "phantom" (one more record after the last, id last + 1, and the cursor is that id)
    kind: str = "status"
    delay: float = 0.0  # seconds, for "slow"
    after_key: str | None = None
    overlap: int = 5  # records, for "overlap"


@dataclass
class Scenario:
    subusers: int = 2_500
    ineligible_every: int = 7  # every n-th subuser has no score; 0 for none
    not_ready: int = 0  # 202 answers per date before its first page is served
    not_ready_body: bool = True  # SendGrid sends a message body with 202; the spec has none
    last_cursor: str = "absent"  # "absent" or "null": how the last page says it is the last
    faults: list[Fault] = field(default_factory=list)
    today: date | None = None  # the simulator's "today" for the 90-day window; None = real UTC day
    fractional: bool = False  # scores with decimals (e.g. 3.47, metrics 4.125) instead of integers
    account_not_ready: int = 0  # 202 answers per date of the parent account's own scores
    account_eligible: bool = True
    #: The first subuser's id; the others follow one by one. A second parent account on the same
    #: host (``SeqSimulator.add_account``) gets ids of its own by starting elsewhere.
    first_user_id: int = FIRST_USER_ID
    #: Subuser indices that do not exist: gaps in the ids (the others keep ``first_user_id + index``).
    removed: tuple[int, ...] = ()
    #: What ``after_key`` is: "user_id" (the last served record's id) or "offset" (records served so far).
    cursor: str = "user_id"
    #: "ascending" ids, or "shuffled": one fixed pseudo-random order, the same every request and day.
    order: str = "ascending"
    latency: float = 0.0  # seconds every subuser page waits before its answer: a round trip
    #: 429 for a subuser request that arrives while this many are being answered (the whole host); 0: no cap.
    max_in_flight: int = 0
    #: At most this many subuser requests per window of ``rate_window`` seconds (windows start at
    #: epoch multiples of it), then 429 until the next window; 0: no limit (``RATE_LIMIT`` headers).
    rate_limit: int = 0
    rate_window: float = 1.0
    #: False: the limits above answer without any ``X-RateLimit-*`` header (a host that sends none).
    limit_headers: bool = True

    def __post_init__(self) -> None:
        if self.cursor not in CURSORS:
            raise ValueError(f"cursor must be one of {CURSORS}, not {self.cursor!r}")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, not {self.order!r}")


def _digest(day: str, user_id: int) -> bytes:
    return hashlib.sha256(f"{day}:{user_id}".encode()).digest()


def subuser_record(day: str, index: int, scenario: Scenario) -> dict[str, Any]:
    user_id = scenario.first_user_id + index
    record: dict[str, Any] = {"user_id": str(user_id), "username": f"subuser-{user_id}", "date": day}
    if scenario.ineligible_every and (index + 1) % scenario.ineligible_every == 0:
        return record
    return _scored(record, day, user_id, scenario)


def _scored(record: dict[str, Any], day: str, user_id: int, scenario: Scenario) -> dict[str, Any]:
    """``record`` with its score and metrics, a pure function of (day, user_id)."""
    digest = _digest(day, user_id)
    if scenario.fractional:  # float("3.47") serialises as 3.47: the text a test expects back
        record["score"] = float(f"{1 + (digest[0] * 256 + digest[1]) % 401 / 100:.2f}")
        record["metrics"] = {
            name: float(f"{1 + (digest[i + 2] * 256 + digest[i + 3]) % 4001 / 1000:.3f}")
            for i, name in enumerate(METRIC_NAMES)
        }
        return record
    record["score"] = 1 + digest[0] % 5
    record["metrics"] = {name: 1 + digest[i + 1] % 5 for i, name in enumerate(METRIC_NAMES)}
    return record


def account_record(day: str, scenario: Scenario) -> dict[str, Any]:
    record: dict[str, Any] = {"user_id": ACCOUNT_USER_ID, "username": "parent-account", "date": day}
    if scenario.account_eligible:
        digest = _digest(day, 1)
        record["score"] = 1 + digest[0] % 5
        record["metrics"] = {name: 1 + digest[i + 1] % 5 for i, name in enumerate(METRIC_NAMES)}
    return record


class _Layout:
    """The served order of a scenario's subusers, built once: plain arithmetic for ascending ids
    without gaps (no list, so a million subusers cost nothing), compact arrays otherwise."""

    def __init__(self, scenario: Scenario) -> None:
        self.first_user_id = scenario.first_user_id
        self.subusers = scenario.subusers
        removed = {i for i in scenario.removed if 0 <= i < scenario.subusers}
        self.count = scenario.subusers - len(removed)
        #: Subuser indices in served order; None: ``range(subusers)``.
        self.indices: array[int] | None = None
        #: Each index's place in a shuffled order (-1: removed); None when the order is ascending.
        self.positions: array[int] | None = None
        if not removed and scenario.order == "ascending":
            return
        indices = [i for i in range(scenario.subusers) if i not in removed]
        if scenario.order == "shuffled":
            random.Random(scenario.first_user_id).shuffle(indices)
            self.positions = array("q", [-1]) * scenario.subusers
            for position, index in enumerate(indices):
                self.positions[index] = position
        self.indices = array("q", indices)

    def index_at(self, position: int) -> int:
        return position if self.indices is None else self.indices[position]

    def user_id_at(self, position: int) -> int:
        return self.first_user_id + self.index_at(position)

    def start_after(self, user_id: int) -> int:
        """The position that follows id ``user_id``: in ascending order the first id above it (so
        gaps and unknown ids resume correctly); in a shuffled order the place after that id, or
        the end for an id that is not served."""
        offset = user_id - self.first_user_id
        if self.indices is None:
            return max(0, offset + 1)
        if self.positions is None:
            return bisect_right(self.indices, offset)
        if 0 <= offset < self.subusers and self.positions[offset] >= 0:
            return self.positions[offset] + 1
        return self.count


_LAYOUT_CACHE_SIZE = 8
#: id(scenario) -> (the scenario, the fields its layout was built from, the layout); holding the
#: scenario keeps its id from being reused by another object.
_layouts: dict[int, tuple[Scenario, tuple[int, int, str, tuple[int, ...]], _Layout]] = {}
_layouts_lock = threading.Lock()


def _layout(scenario: Scenario) -> _Layout:
    """The scenario's layout, built once per scenario object (and again if its fields change),
    so no request rebuilds a large one. ``removed`` is compared by identity: cheap however long."""
    fields = (scenario.first_user_id, scenario.subusers, scenario.order, scenario.removed)
    with _layouts_lock:
        cached = _layouts.get(id(scenario))
        if (
            cached is not None
            and cached[0] is scenario
            and cached[1][:3] == fields[:3]
            and cached[1][3] is scenario.removed
        ):
            return cached[2]
        layout = _Layout(scenario)
        _layouts[id(scenario)] = (scenario, fields, layout)
        while len(_layouts) > _LAYOUT_CACHE_SIZE:
            del _layouts[next(iter(_layouts))]
        return layout


def expected_records(day: str, scenario: Scenario) -> list[dict[str, Any]]:
    """The simulator's truth for a day: what a correct export must contain, in order."""
    layout = _layout(scenario)
    return [subuser_record(day, layout.index_at(p), scenario) for p in range(layout.count)]


@dataclass
class _Account:
    """One parent account the host serves: its subusers (``scenario``) and what it has played."""

    label: str
    scenario: Scenario
    not_ready_left: dict[str, int] = field(default_factory=dict)
    faults_used: dict[int, int] = field(default_factory=dict)
    window_start: float = 0.0  # the windowed limit's current window (epoch seconds) ...
    window_used: int = 0  # ... and the requests it has let through


class SeqSimulator(LoopbackServer):
    """One SendGrid host. It serves the parent account of ``api_key`` and any other accounts
    added with ``add_account`` (each its own key and subusers, as two parents on one host);
    a request with any other key gets 401. The request log names the account a key reached."""

    def __init__(self, api_key: str, scenario: Scenario | None = None, *, label: str = "primary") -> None:
        self.api_key = api_key
        self._primary = _Account(label, scenario or Scenario())
        self._others: dict[str, _Account] = {}
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._in_flight = 0  # subuser requests being answered now, every account of the host

    @property
    def scenario(self) -> Scenario:
        """The primary account's scenario."""
        return self._primary.scenario

    def reset(self, scenario: Scenario | None = None) -> None:
        """Forget every request, added account and played 202 or fault; serve ``scenario``."""
        with self._lock:
            self._primary = _Account(self._primary.label, scenario or Scenario())
            self._others.clear()
            self.requests.clear()

    def add_account(self, api_key: str, scenario: Scenario, *, label: str) -> None:
        """Serve a second parent account on this host, reached with ``api_key``."""
        with self._lock:
            self._others[api_key] = _Account(label, scenario)

    def _account_of(self, request: Request) -> _Account | None:
        authorization = request.headers.get("Authorization", "")
        key = authorization.removeprefix("Bearer ")
        if authorization == f"Bearer {self.api_key}":
            return self._primary
        return self._others.get(key) if authorization.startswith("Bearer ") else None

    def max_in_flight_seen(self, day: str | None = None) -> int:
        """The most subuser requests (of ``day``, or any) answered at once, as logged on arrival."""
        return max_in_flight_seen(self.requests, day)

    # -- HTTP ------------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        account = self._account_of(request)
        counted = request.path == SUBUSER_SCORES_PATH
        with self._lock:
            self._in_flight += counted
            in_flight = self._in_flight
        try:
            response = self._answer(request, account, in_flight)
        finally:
            with self._lock:
                self._in_flight -= counted
        if response.status_code == RESET_STATUS:
            self._drop(environ)
            start_response("500 Dropped", [])
            return []
        with self._lock:
            self.requests.append(
                {
                    "path": request.path,
                    "params": dict(request.args),
                    "status": response.status_code,
                    "user_agent": request.headers.get("User-Agent", ""),
                    "account": None if account is None else account.label,
                    "in_flight": in_flight,
                }
            )
        return response(environ, start_response)

    def _today(self) -> date:
        return self.scenario.today or datetime.now(UTC).date()

    def _json(self, status: int, body: Any, *, rate_headers: bool = True) -> Response:
        response = Response(json.dumps(body), status=status, content_type="application/json")
        if rate_headers:
            self._add_rate_headers(response)
        return response

    def _add_rate_headers(self, response: Response) -> None:
        response.headers["X-RateLimit-Limit"] = str(RATE_LIMIT)
        response.headers["X-RateLimit-Remaining"] = "0" if response.status_code == 429 else str(RATE_LIMIT - 1)
        response.headers["X-RateLimit-Reset"] = str(int(time.time()) + 1)

    @staticmethod
    def _errors(field_name: str | None, message: str) -> dict[str, Any]:
        """The spec's SeqError: ``field`` only when there is one (the spec types it as a string)."""
        return {"errors": [{"message": message} if field_name is None else {"field": field_name, "message": message}]}

    def _check(self, request: Request, account: _Account | None) -> Response | tuple[str, int, int | None, str | None]:
        """The spec's request rules: an error answer, or (date, limit, after_key, raw after_key)."""
        if request.method != "GET" or request.path != SUBUSER_SCORES_PATH:
            return self._json(404, self._errors(None, "resource not found"))
        if account is None:
            return self._json(401, self._errors(None, "authorization required"))
        day_text = request.args.get("date")
        if not day_text:
            return self._bad("date", '"date" must be provided')
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            day = None
        if day is None or len(day_text) != 10:
            return self._bad("date", '"date" invalid')
        if day > self._today():
            return self._bad("date", '"date" cannot be in the future')
        if day < self._today() - timedelta(days=90):
            return self._bad("date", '"date" cannot be more than 90 days in the past')
        try:
            limit = int(request.args.get("limit", "1000"))
        except ValueError:
            return self._bad("limit", '"limit" invalid')
        if not 0 < limit <= 1000:
            return self._bad("limit", '"limit" must be a positive integer')
        after_raw = request.args.get("after_key")
        try:
            after_key = int(after_raw) if after_raw is not None else None
        except ValueError:
            return self._bad("after_key", '"after_key" invalid')
        return day_text, limit, after_key, after_raw

    def _bad(self, field_name: str, problem: str) -> Response:
        return self._json(400, self._errors(field_name, f"failed to parse request: {problem}"))

    def _account(self, request: Request, account: _Account | None) -> Response:
        """``GET /v3/engagementquality/scores?from&to``: the parent account's score per day."""
        if account is None:
            return self._json(401, self._errors(None, "authorization required"))
        days: dict[str, date] = {}
        for name in ("from", "to"):
            text = request.args.get(name)
            if not text:
                return self._bad(name, f'"{name}" must be provided')
            try:
                days[name] = date.fromisoformat(text)
            except ValueError:
                return self._bad(name, f'"{name}" invalid')
            if days[name] < self._today() - timedelta(days=90):
                return self._bad(name, f'"{name}" cannot be more than 90 days in the past')
        if days["from"] > days["to"]:
            return self._bad("to", '"from" cannot come after "to"')
        if days["to"] > self._today():
            return self._bad("to", '"to" cannot be in the future')
        with self._lock:
            key = "account:" + days["from"].isoformat()
            left = account.not_ready_left.setdefault(key, account.scenario.account_not_ready)
            if left > 0:
                account.not_ready_left[key] = left - 1
                response = Response(b"", status=202, content_type="application/json")
                self._add_rate_headers(response)
                return response
            fault = self._take_fault(account, 0)  # page 0: faults aimed at the account endpoint
        if fault is not None and fault.kind == "status":
            return self._fault_response(fault)
        span = (days["to"] - days["from"]).days + 1
        records = [
            account_record((days["from"] + timedelta(days=i)).isoformat(), account.scenario) for i in range(span)
        ]
        return self._json(200, {"result": records})

    def _answer(self, request: Request, account: _Account | None, in_flight: int) -> Response:
        if request.method == "GET" and request.path == ACCOUNT_SCORES_PATH:
            return self._account(request, account)
        checked = self._check(request, account)
        if isinstance(checked, Response):
            return checked
        assert account is not None  # _check answered 401 otherwise
        scenario = account.scenario
        crowded = bool(scenario.max_in_flight) and in_flight > scenario.max_in_flight
        window = self._window(account) if scenario.rate_limit > 0 and not crowded else None
        if crowded:
            response = self._limited(scenario, scenario.max_in_flight, int(time.time()) + 1)
        elif window is not None and not window[0]:
            response = self._limited(scenario, scenario.rate_limit, window[2])
        else:
            if scenario.latency > 0:
                time.sleep(scenario.latency)  # outside the lock: pages of parallel requests overlap
            response = self._page(account, checked)
            if window is not None and "X-RateLimit-Limit" in response.headers:
                left = 0 if response.status_code == 429 else window[1]
                response.headers["X-RateLimit-Limit"] = str(scenario.rate_limit)
                response.headers["X-RateLimit-Remaining"] = str(left)
                response.headers["X-RateLimit-Reset"] = str(window[2])
        if not scenario.limit_headers and (scenario.max_in_flight or scenario.rate_limit):
            for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
                response.headers.pop(name, None)
        return response

    def _window(self, account: _Account) -> tuple[bool, int, int]:
        """Count this request in the account's current window: (let through, requests left in
        the window, the window's end in epoch seconds)."""
        scenario = account.scenario
        now = time.time()
        start = math.floor(now / scenario.rate_window) * scenario.rate_window
        with self._lock:
            if start != account.window_start:
                account.window_start, account.window_used = start, 0
            allowed = account.window_used < scenario.rate_limit
            account.window_used += allowed
            left = scenario.rate_limit - account.window_used
        return allowed, left, math.ceil(start + scenario.rate_window)

    def _limited(self, scenario: Scenario, limit: int, reset: int) -> Response:
        """A limit's 429: SendGrid's body, and headers saying none are left until ``reset``."""
        response = self._fault_response(Fault(page=0, status=429, rate_headers=False))
        if scenario.limit_headers:
            response.headers["X-RateLimit-Limit"] = str(limit)
            response.headers["X-RateLimit-Remaining"] = "0"
            response.headers["X-RateLimit-Reset"] = str(reset)
        return response

    def _page(self, account: _Account, checked: tuple[str, int, int | None, str | None]) -> Response:
        """One page of subuser scores, or the 202 or fault the scenario plays instead."""
        scenario = account.scenario
        layout = _layout(scenario)
        day_text, limit, after_key, after_raw = checked
        with self._lock:
            if after_key is None:
                left = account.not_ready_left.setdefault(day_text, scenario.not_ready)
                if left > 0:
                    account.not_ready_left[day_text] = left - 1
                    response = Response(
                        json.dumps({"message": NOT_READY_MESSAGE}) if scenario.not_ready_body else b"",
                        status=202,
                        content_type="application/json",
                    )
                    self._add_rate_headers(response)
                    return response
            if after_key is None:
                start = 0
            elif scenario.cursor == "offset":
                start = max(0, after_key)
            else:
                start = layout.start_after(after_key)
            page_number = start // limit + 1 if limit else 1
            fault = self._take_fault(account, page_number, after_raw)
        if fault is not None and fault.kind == "status":
            return self._fault_response(fault)
        if fault is not None and fault.kind == "reset":
            return Response(status=RESET_STATUS)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)  # the simulator is slow, not the test: the client times out
        if fault is not None and fault.kind == "overlap":
            start = max(0, start - fault.overlap)
        end = min(start + limit, layout.count)

        def cursor_at(end: int) -> str:
            return str(end) if scenario.cursor == "offset" else str(layout.user_id_at(end - 1))

        records = [subuser_record(day_text, layout.index_at(p), scenario) for p in range(start, end)]
        cursor: str | None = cursor_at(end) if end < layout.count else None
        if fault is not None and fault.kind == "stuck_cursor":
            cursor = after_raw or cursor_at(end)
        if fault is not None and fault.kind == "repeat_users" and start >= limit:
            records = [subuser_record(day_text, layout.index_at(p), scenario) for p in range(start - limit, start)]
        if fault is not None and fault.kind == "phantom" and records:
            phantom_id = int(records[-1]["user_id"]) + 1
            phantom = {"user_id": str(phantom_id), "username": "phantom", "date": day_text}
            records.append(_scored(phantom, day_text, phantom_id, scenario))
            cursor = str(end + 1) if scenario.cursor == "offset" else str(phantom_id)
        page: dict[str, Any] = {"result": records}
        if cursor is not None:
            page["_metadata"] = {"next_params": {"after_key": cursor}}
        elif scenario.last_cursor == "null":
            page["_metadata"] = {"next_params": {"after_key": None}}
        response = self._json(200, page)
        if fault is not None and fault.kind == "truncate":
            body = response.get_data()
            response.set_data(body[: len(body) // 2])
            response.headers["Content-Length"] = str(len(body))  # promise more than is sent
        return response

    @staticmethod
    def _drop(environ: dict[str, Any]) -> None:
        """Drop the connection before any answer, as a reset by a load balancer would look."""
        connection = environ["werkzeug.socket"]
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _take_fault(account: _Account, page: int, after_key: str | None = None) -> Fault | None:
        """The first fault with plays left aimed at this request: by raw ``after_key`` when the
        fault names one, else by page number."""
        for index, fault in enumerate(account.scenario.faults):
            aimed = fault.page == page if fault.after_key is None else fault.after_key == after_key
            if aimed and account.faults_used.get(index, 0) < fault.times:
                account.faults_used[index] = account.faults_used.get(index, 0) + 1
                return fault
        return None

    def _fault_response(self, fault: Fault) -> Response:
        if fault.body is not None:
            body = fault.body
        elif fault.status == 429:  # not in the spec; SendGrid sends this body, with a null field
            body = json.dumps({"errors": [{"field": None, "message": "too many requests"}]})
        elif fault.status == 202:  # not ready yet, as SendGrid says it (the spec has no body)
            body = json.dumps({"message": NOT_READY_MESSAGE})
        elif fault.status >= 500:
            body = json.dumps(self._errors(None, "internal server error"))
        else:
            body = json.dumps(self._errors(None, f"simulated {fault.status}"))
        response = Response(body, status=fault.status, content_type="application/json")
        if fault.rate_headers:
            self._add_rate_headers(response)
        return response

    def pages_served(self) -> int:
        return sum(1 for r in self.requests if r["status"] == 200)


def max_in_flight_seen(requests: list[dict[str, Any]], day: str | None = None) -> int:
    """The largest ``in_flight`` of the logged subuser requests (of ``day`` when given); 0 if none."""
    return max(
        (
            r.get("in_flight", 0)
            for r in requests
            if r["path"] == SUBUSER_SCORES_PATH and (day is None or r["params"].get("date") == day)
        ),
        default=0,
    )
