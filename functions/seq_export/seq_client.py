"""SendGrid Engagement Quality HTTP client: the only module that speaks HTTP to SendGrid.

Retries for SendGrid live here and nowhere else, bounded by ``max_attempts`` tries per page:

* 429: wait until ``X-RateLimit-Reset`` (epoch seconds; ``Retry-After`` as a fallback), parsed
  defensively and capped at ``max_rate_limit_wait`` seconds, then try again; meanwhile the
  client's other requests are held and fewer are let in flight (``request_slots``), so a day
  fetched in key ranges slows down instead of hammering;
* 5xx, timeouts and connection errors: exponential backoff with full jitter (``backoff.Backoff``
  from ``backoff_base`` up to ``backoff_cap``);
* 202 (scores not computed yet) is *not* retried here: it can last hours, so the export
  re-schedules the day through SQS instead of holding a Lambda open;
* 400/401/403/404 are never retried, with one exception: on the first 401 or 403 the secret
  is read again bypassing its cache (``fresh_key``) and, if the key changed (rotated), the
  request is sent once more with it; only then a clear error names the cause.

The API key comes from a callable (Powertools Parameters, cached), is sent only in the
``Authorization`` header and never appears in an error or log line.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter

from seq_export import __version__
from seq_export.backoff import Backoff
from seq_export.errors import (
    ScoresNotReady,
    SeqApiError,
    SeqAuthError,
    SeqBadRequestError,
    SeqNotFoundError,
    SeqProtocolError,
    SeqUnavailableError,
)
from seq_export.models import Page, loads_exact, parse_page
from seq_export.observability import logger
from seq_export.request_slots import RequestSlots

SUBUSER_SCORES_PATH = "/v3/engagementquality/subusers/scores"
ACCOUNT_SCORES_PATH = "/v3/engagementquality/scores"
USER_AGENT = f"seq-export/{__version__} python-requests/{requests.__version__}"
#: 10,000 pages is 10 million subusers: past that a cursor that keeps moving is a bug, not data.
MAX_PAGES = 10_000


class SeqClient:
    def __init__(
        self,
        base_url: str,
        api_key: Callable[[], str],
        *,
        fresh_key: Callable[[], str] | None = None,
        session: requests.Session | None = None,
        page_size: int = 1000,
        max_in_flight: int = 1,
        connect_timeout: float = 3.05,
        read_timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        max_rate_limit_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._fresh_key = fresh_key
        self._session = session or _pooled_session(max_in_flight)
        self._session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self._page_size = page_size
        self._timeout = (connect_timeout, read_timeout)
        self._max_attempts = max_attempts
        self._backoff = Backoff(first=backoff_base, cap=backoff_cap)
        #: A 429 without a usable reset time waits at least half the ceiling (equal jitter): a rate
        #: limit is not asked again at once.
        self._rate_limit_backoff = Backoff(first=backoff_base, cap=backoff_cap, low=0.5)
        self._max_rate_limit_wait = max_rate_limit_wait
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        #: The requests in flight, shared by every thread fetching with this client.
        self.slots = RequestSlots(max_in_flight)

    def iter_pages(self, day: str, *, after_key: str | None = None, first_page: int = 1) -> Iterator[Page]:
        """Yield every page of ``day`` in cursor order, starting after ``after_key`` if given.

        Raises ``ScoresNotReady`` on 202 and ``SeqProtocolError`` if the cursor repeats,
        so a misbehaving API can neither loop us forever nor make us write a page twice.
        """
        seen_cursors: set[str] = set() if after_key is None else {after_key}
        number = first_page
        while True:
            if number - first_page >= MAX_PAGES:
                raise SeqProtocolError(f"{day}: more than {MAX_PAGES} pages; the cursor never ended")
            page = self.page(day, after_key=after_key, number=number)
            yield page
            cursor = page.next_after_key
            if cursor is None:
                return
            if cursor in seen_cursors:
                raise SeqProtocolError(
                    f"{day} page {number}: the cursor did not advance (after_key {cursor!r} was already used)",
                    raw=page.raw,
                )
            seen_cursors.add(cursor)
            after_key = cursor
            number += 1

    def page(self, day: str, *, after_key: str | None, number: int, where: str | None = None) -> Page:
        """One page of ``day`` after ``after_key`` (the first without); ``number`` and ``where``
        (default "DAY page N") name it in errors. Safe to call from several threads at once."""
        params: dict[str, str | int] = {"date": day, "limit": self._page_size}
        if after_key is not None:
            params["after_key"] = after_key
        where = where or f"{day} page {number}"
        raw = self._get(SUBUSER_SCORES_PATH, params, where=where)
        return parse_page(_json_body(raw, where), number=number, where=where, raw=raw)

    def account_scores(self, day: str) -> Page:
        """The parent account's own score for ``day`` (one answer, ``from`` = ``to`` = day)."""
        where = f"{day} account scores"
        raw = self._get(ACCOUNT_SCORES_PATH, {"from": day, "to": day}, where=where)
        return parse_page(_json_body(raw, where), number=1, where=where, raw=raw)

    def _get(self, path: str, params: dict[str, str | int], *, where: str) -> bytes:
        """The body of a 200 answer; every other answer is retried here or raised."""
        url = self._base_url + path
        key_refreshed = False
        attempt = 0
        while attempt < self._max_attempts:
            attempt += 1
            last = attempt == self._max_attempts
            key = self._api_key()
            try:
                with self.slots.slot():
                    response = self._session.get(
                        url, params=params, headers={"Authorization": f"Bearer {key}"}, timeout=self._timeout
                    )
            except requests.RequestException as exc:
                # only the type: some requests errors quote the request headers, Authorization included
                problem = type(exc).__name__
                if last:
                    raise SeqUnavailableError(f"{where}: no answer after {attempt} tries ({problem})") from None
                self._back_off(attempt, where, problem)
                continue
            status = response.status_code
            if status == 200:
                self._pace(response)
                return response.content
            if status == 202:
                raise ScoresNotReady(f"{where}: SendGrid answered 202, scores are still being computed")
            if status == 429:
                if last:
                    raise SeqUnavailableError(f"{where}: still rate limited (429) after {attempt} tries", status=429)
                self._wait_for_rate_limit(response, attempt, where)
                continue
            if status >= 500:
                if last:
                    raise SeqUnavailableError(
                        f"{where}: SendGrid answered {status} {_error_text(response)} after {attempt} tries",
                        status=status,
                    )
                self._back_off(attempt, where, f"HTTP {status}")
                continue
            if status in (401, 403) and not key_refreshed and self._rotated(key, status, where):
                key_refreshed = True
                attempt -= 1  # a rotated key is a new request, not a retry of a failing one
                continue
            raise _client_error(status, response, where)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _rotated(self, key: str, status: int, where: str) -> bool:
        """Whether the secret now holds another key than the refused one (never logs either)."""
        if self._fresh_key is None or self._fresh_key() == key:
            return False
        logger.warning(
            "SendGrid refused the API key; trying once with a fresh read of the secret", where=where, status=status
        )
        return True

    def _back_off(self, attempt: int, where: str, problem: str) -> None:
        delay = self._backoff.pause(attempt, self._jitter)
        logger.warning("SendGrid call failed, retrying", where=where, problem=problem, attempt=attempt, delay=delay)
        self._sleep(delay)

    def _pace(self, response: requests.Response) -> None:
        """Tell the slots what is left of the rate limit; with nothing left, wait for its reset."""
        reset_in = _rate_limit_delay(response.headers, self._clock())
        if reset_in is not None:  # a reset hours away (a daily window, milliseconds) waits no longer than a 429
            reset_in = min(reset_in, self._max_rate_limit_wait)
        pause = self.slots.answered(_remaining(response.headers), reset_in)
        if pause:
            self._sleep(pause)

    def _wait_for_rate_limit(self, response: requests.Response, attempt: int, where: str) -> None:
        delay = _rate_limit_delay(response.headers, self._clock())
        if delay is None:
            delay = self._rate_limit_backoff.pause(attempt, self._jitter)
        delay = min(delay, self._max_rate_limit_wait)
        self.slots.rate_limited(delay)
        logger.warning(
            "SendGrid rate limit hit, waiting",
            where=where,
            attempt=attempt,
            delay=delay,
            rate_limit_limit=response.headers.get("X-RateLimit-Limit"),
            rate_limit_remaining=response.headers.get("X-RateLimit-Remaining"),
        )
        self._sleep(delay)


def _pooled_session(max_in_flight: int) -> requests.Session:
    """A session whose connection pool holds every request in flight (requests keeps 10 by default)."""
    session = requests.Session()
    if max_in_flight > DEFAULT_POOLSIZE:
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max_in_flight)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
    return session


def _remaining(headers: Any) -> int | None:
    """``X-RateLimit-Remaining`` as a count; None when absent or not a whole number."""
    raw = headers.get("X-RateLimit-Remaining")
    try:
        return None if raw is None else int(str(raw).strip())
    except ValueError:
        return None


def _json_body(raw: bytes, where: str) -> Any:
    try:
        return loads_exact(raw)
    except ValueError as exc:
        raise SeqProtocolError(
            f"{where}: 200 answer is not valid JSON ({exc}); {len(raw)} bytes starting {raw[:120]!r}", raw=raw
        ) from None


def _rate_limit_delay(headers: Any, now: float) -> float | None:
    """Seconds to wait from ``X-RateLimit-Reset`` (epoch) or ``Retry-After``; None if unusable."""
    for name, absolute in (("X-RateLimit-Reset", True), ("Retry-After", False)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(str(raw).strip())
        except ValueError:
            continue
        if not math.isfinite(value):
            continue
        delay = value - now if absolute else value
        # a reset already past still deserves a short pause; clocks on both sides drift
        return max(delay, 0.0) + 0.25
    return None


def _error_text(response: requests.Response) -> str:
    """SendGrid's ``errors[].field`` and ``message`` as one line, or a short body excerpt."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        parts = []
        for error in body["errors"]:
            if isinstance(error, dict):
                field = error.get("field")
                message = error.get("message", "")
                parts.append(f"{field}: {message}" if field else str(message))
        if parts:
            return "(" + "; ".join(parts) + ")"
    text = response.text.strip()
    return f"({text[:200]})" if text else f"({response.reason or 'no body'})"


def _client_error(status: int, response: requests.Response, where: str) -> SeqApiError:
    detail = _error_text(response)
    if status == 400:
        return SeqBadRequestError(f"{where}: SendGrid rejected the request (400) {detail}", status=status)
    if status == 401:
        return SeqAuthError(
            f"{where}: SendGrid answered 401 Unauthorized {detail}: the API key in Secrets Manager is "
            "missing, wrong or revoked",
            status=status,
        )
    if status == 403:
        return SeqAuthError(
            f"{where}: SendGrid answered 403 Forbidden {detail}: the API key lacks access to Engagement "
            "Quality scores, or the account is not a parent/reseller account",
            status=status,
        )
    if status == 404:
        return SeqNotFoundError(
            f"{where}: SendGrid answered 404 Not Found {detail}: check the source's base_url (global or EU host)",
            status=status,
        )
    return SeqApiError(f"{where}: unexpected answer {status} {detail}", status=status)
