"""SeqClient over a real ``requests.Session`` whose transport is a scripted, in-process adapter.

Nothing here opens a socket or sleeps: ``harness`` (tests/support/fakes.py) mounts an adapter
that pops scripted answers (or raises the exceptions a real transport would), ``sleep`` records
the waits, ``clock`` is frozen and ``jitter`` is a constant, so every retry delay can be
asserted exactly.
"""

from __future__ import annotations

import json
import traceback
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from seq_export.errors import (
    ScoresNotReady,
    SeqApiError,
    SeqAuthError,
    SeqBadRequestError,
    SeqExportError,
    SeqNotFoundError,
    SeqProtocolError,
    SeqUnavailableError,
)
from seq_export.models import Page
from seq_export.seq_client import SUBUSER_SCORES_PATH
from tests.support import SEQ_API_KEY, SEQ_DAY, START, Answer, Harness, Step, harness, ok, retryable, sendgrid_error

API_KEY = SEQ_API_KEY
DAY = SEQ_DAY
NOW = START  # the harness's frozen clock


def capture(h: Harness, **kwargs: Any) -> SeqExportError:
    with pytest.raises(SeqExportError) as info:
        h.pages(**kwargs)
    return info.value


# -- pagination ------------------------------------------------------------------------------


def test_pagination_follows_after_key_and_sends_it_back_unchanged() -> None:
    # Given a cursor full of characters that need URL encoding
    odd_cursor = "eyJ1IjoxMjM0fQ==/+&a=b c%"
    h = harness(ok([{"user_id": "1"}], after_key=odd_cursor), ok([{"user_id": "2"}], after_key="second"), ok())

    # When every page is read
    pages = h.pages()

    # Then each next request carries exactly the previous page's cursor
    assert [p.number for p in pages] == [1, 2, 3]
    assert [p.records for p in pages] == [[{"user_id": "1"}], [{"user_id": "2"}], []]
    assert "after_key" not in h.adapter.params(0)
    assert h.adapter.params(1)["after_key"] == [odd_cursor]
    assert h.adapter.params(2)["after_key"] == ["second"]
    assert all(urlsplit(r.url or "").path == SUBUSER_SCORES_PATH for r in h.adapter.requests)


def test_every_request_sends_the_date_and_the_page_size_as_limit() -> None:
    h = harness(ok(after_key="k"), ok(), page_size=250)

    h.pages()

    for index in range(2):
        assert h.adapter.params(index)["date"] == [DAY]
        assert h.adapter.params(index)["limit"] == ["250"]


def test_numeric_cursor_is_sent_back_as_its_text() -> None:
    h = harness(ok(after_key=12345), ok())

    pages = h.pages()

    assert pages[0].next_after_key == "12345"
    assert h.adapter.params(1)["after_key"] == ["12345"]


@pytest.mark.parametrize(
    "body",
    [
        {"result": []},
        {"result": [], "_metadata": None},
        {"result": [], "_metadata": {}},
        {"result": [], "_metadata": {"next_params": None}},
        {"result": [], "_metadata": {"next_params": {}}},
        {"result": [], "_metadata": {"next_params": {"after_key": None}}},
        {"result": [], "_metadata": {"next_params": {"after_key": ""}}},
    ],
    ids=["no-metadata", "metadata-null", "metadata-empty", "next-null", "next-empty", "key-null", "key-empty"],
)
def test_a_page_without_a_usable_after_key_is_the_last(body: dict[str, Any]) -> None:
    h = harness(Answer(200, json.dumps(body).encode()))

    pages = h.pages()

    assert len(pages) == 1
    assert pages[0].next_after_key is None
    assert len(h.adapter.requests) == 1


def test_resuming_starts_after_the_given_cursor_with_the_given_page_number() -> None:
    h = harness(ok(after_key="later"), ok())

    pages = h.pages(after_key="resume-here", first_page=7)

    assert [p.number for p in pages] == [7, 8]
    assert h.adapter.params(0)["after_key"] == ["resume-here"]
    assert h.adapter.params(1)["after_key"] == ["later"]


# -- headers and timeouts --------------------------------------------------------------------


def test_requests_carry_bearer_authorization_and_a_seq_export_user_agent() -> None:
    h = harness(ok())

    h.pages()

    headers = h.adapter.requests[0].headers
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    assert headers["User-Agent"].startswith("seq-export/")
    assert headers["Accept"] == "application/json"
    assert API_KEY not in (h.adapter.requests[0].url or "")


def test_the_api_key_is_read_for_every_request_so_a_rotated_key_is_used() -> None:
    keys = iter(["SG.old", "SG.new"])
    h = harness(ok(after_key="k"), ok(), api_key=lambda: next(keys))

    h.pages()

    assert [r.headers["Authorization"] for r in h.adapter.requests] == ["Bearer SG.old", "Bearer SG.new"]


def test_connect_and_read_timeouts_reach_the_transport_as_a_tuple() -> None:
    h = harness(ok(after_key="k"), ok(), connect_timeout=1.5, read_timeout=12.0)

    h.pages()

    assert h.adapter.timeouts == [(1.5, 12.0), (1.5, 12.0)]


# -- status codes that end the day -----------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b'{"status": "processing"}'], ids=["empty", "json"])
def test_202_raises_scores_not_ready_without_retrying(body: bytes) -> None:
    h = harness(Answer(202, body))

    with pytest.raises(ScoresNotReady, match=rf"{DAY} page 1: .*202"):
        h.pages()

    assert len(h.adapter.requests) == 1
    assert h.sleeps == []


def test_202_on_a_later_page_names_that_page() -> None:
    h = harness(ok(after_key="k"), Answer(202))

    with pytest.raises(ScoresNotReady, match=rf"{DAY} page 2"):
        h.pages()


def test_400_raises_bad_request_quoting_sendgrids_field_and_message() -> None:
    h = harness(sendgrid_error(400, ("date", "date must be within the last 90 days"), (None, "limit too big")))

    with pytest.raises(SeqBadRequestError) as info:
        h.pages()

    message = str(info.value)
    assert "date: date must be within the last 90 days" in message
    assert "limit too big" in message
    assert f"{DAY} page 1" in message
    assert info.value.status == 400


def test_400_with_a_plain_text_body_quotes_the_text() -> None:
    h = harness(Answer(400, b"bad date parameter\n"))

    with pytest.raises(SeqBadRequestError, match=r"\(bad date parameter\)"):
        h.pages()


@pytest.mark.parametrize(("status", "hint"), [(401, "Unauthorized"), (403, "Forbidden")])
def test_401_and_403_raise_auth_error(status: int, hint: str) -> None:
    h = harness(sendgrid_error(status, (None, "authorization required")))

    with pytest.raises(SeqAuthError) as info:
        h.pages()

    assert info.value.status == status
    assert hint in str(info.value)
    assert "authorization required" in str(info.value)
    assert not retryable(info.value)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_is_read_again_bypassing_the_cache_and_a_rotated_one_tried_once(status: int) -> None:
    cached, fresh = ["SG.old"], []

    def refresh() -> str:
        fresh.append("read")
        cached[0] = "SG.new"
        return "SG.new"

    h = harness(
        sendgrid_error(status, (None, "authorization required")), ok(), api_key=lambda: cached[0], fresh_key=refresh
    )

    h.pages()

    assert [r.headers["Authorization"] for r in h.adapter.requests] == ["Bearer SG.old", "Bearer SG.new"]
    assert fresh == ["read"]
    assert h.sleeps == []


def test_a_refused_key_that_the_secret_still_holds_fails_at_once_with_the_clear_message() -> None:
    fresh: list[str] = []

    def refresh() -> str:
        fresh.append("read")
        return API_KEY  # the secret still holds the refused key

    h = harness(sendgrid_error(401, (None, "authorization required")), api_key=lambda: API_KEY, fresh_key=refresh)

    with pytest.raises(SeqAuthError, match="401 Unauthorized"):
        h.pages()

    assert len(h.adapter.requests) == 1
    assert fresh == ["read"]


def test_a_rotated_key_that_is_refused_too_fails_without_a_second_refresh() -> None:
    keys = iter(["SG.new", "SG.newer"])
    cached = ["SG.old"]

    def refresh() -> str:
        cached[0] = next(keys)
        return cached[0]

    h = harness(
        sendgrid_error(401, (None, "authorization required")),
        sendgrid_error(401, (None, "authorization required")),
        api_key=lambda: cached[0],
        fresh_key=refresh,
    )

    with pytest.raises(SeqAuthError):
        h.pages()

    assert [r.headers["Authorization"] for r in h.adapter.requests] == ["Bearer SG.old", "Bearer SG.new"]


def test_404_raises_not_found_pointing_at_the_base_url() -> None:
    h = harness(Answer(404, b""))

    with pytest.raises(SeqNotFoundError, match="check the source's base_url") as info:
        h.pages()

    assert info.value.status == 404


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, SeqBadRequestError),
        (401, SeqAuthError),
        (403, SeqAuthError),
        (404, SeqNotFoundError),
        (409, SeqApiError),
        (422, SeqApiError),
    ],
)
def test_4xx_other_than_429_is_never_retried(status: int, error_type: type[SeqApiError]) -> None:
    # Given a 4xx followed by a page that would succeed if anyone asked again
    h = harness(Answer(status, b"{}"), ok())

    with pytest.raises(error_type) as info:
        h.pages()

    assert type(info.value) is error_type
    assert info.value.status == status
    assert len(h.adapter.requests) == 1
    assert h.sleeps == []


# -- 429 -------------------------------------------------------------------------------------


def test_429_waits_until_x_ratelimit_reset_plus_a_quarter_second() -> None:
    h = harness(Answer(429, b"", {"X-RateLimit-Reset": str(int(NOW) + 10)}), ok([{"user_id": "1"}]))

    pages = h.pages()

    assert h.sleeps == [pytest.approx(10.25)]
    assert pages[0].records == [{"user_id": "1"}]
    assert len(h.adapter.requests) == 2


def test_429_reset_is_computed_from_the_injected_clock() -> None:
    h = harness(Answer(429, b"", {"X-RateLimit-Reset": "5000"}), ok(), clock=4990.5)

    h.pages()

    assert h.sleeps == [pytest.approx(9.75)]


def test_429_with_a_reset_already_past_still_pauses_a_quarter_second() -> None:
    h = harness(Answer(429, b"", {"X-RateLimit-Reset": str(int(NOW) - 30)}), ok())

    h.pages()

    assert h.sleeps == [0.25]


def test_429_wait_is_capped_at_max_rate_limit_wait() -> None:
    h = harness(Answer(429, b"", {"X-RateLimit-Reset": str(int(NOW) + 3600)}), ok(), max_rate_limit_wait=45.0)

    h.pages()

    assert h.sleeps == [45.0]


def test_429_falls_back_to_retry_after_seconds() -> None:
    h = harness(Answer(429, b"", {"Retry-After": "7"}), ok())

    h.pages()

    assert h.sleeps == [7.25]


def test_429_retry_after_is_capped_too() -> None:
    h = harness(Answer(429, b"", {"Retry-After": "600"}), ok(), max_rate_limit_wait=30.0)

    h.pages()

    assert h.sleeps == [30.0]


@pytest.mark.parametrize("garbage", ["abc", "nan", "inf", "-inf", ""])
def test_429_garbage_reset_falls_back_to_retry_after(garbage: str) -> None:
    h = harness(Answer(429, b"", {"X-RateLimit-Reset": garbage, "Retry-After": "3"}), ok())

    h.pages()

    assert h.sleeps == [3.25]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-RateLimit-Reset": "abc"},
        {"X-RateLimit-Reset": "nan"},
        {"X-RateLimit-Reset": "inf"},
        {"Retry-After": "abc"},
        {"Retry-After": "NaN"},
        {"Retry-After": "Infinity"},
        {"X-RateLimit-Reset": "nan", "Retry-After": "inf"},
    ],
    ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()) or "none",
)
@pytest.mark.parametrize("jitter", [1.0, 0.5])
def test_429_without_usable_headers_backs_off_instead(headers: dict[str, str], jitter: float) -> None:
    # Given two 429s without a usable wait, then a page
    h = harness(Answer(429, b"", headers), Answer(429, b"", headers), ok(), jitter=jitter, backoff_base=0.5)

    h.pages()

    # Then each wait is the exponential backoff with half jitter: ceiling * (0.5 + jitter / 2)
    factor = 0.5 + jitter / 2
    assert h.sleeps == [pytest.approx(0.5 * factor), pytest.approx(1.0 * factor)]


def test_429_backoff_fallback_is_capped_by_max_rate_limit_wait() -> None:
    h = harness(Answer(429), ok(), backoff_base=100.0, backoff_cap=1000.0, max_rate_limit_wait=5.0)

    h.pages()

    assert h.sleeps == [5.0]


def test_429_that_never_ends_gives_up_after_max_attempts() -> None:
    h = harness(*[Answer(429, b"", {"Retry-After": "1"}) for _ in range(3)], max_attempts=3)

    with pytest.raises(SeqUnavailableError, match="after 3 tries") as info:
        h.pages()

    assert info.value.status == 429
    assert retryable(info.value)
    assert len(h.adapter.requests) == 3
    assert h.sleeps == [1.25, 1.25]  # no pointless wait after the last try


# -- 5xx and transport failures --------------------------------------------------------------


@pytest.mark.parametrize("jitter", [1.0, 0.5])
def test_5xx_is_retried_with_exponential_backoff(jitter: float) -> None:
    h = harness(Answer(500), Answer(502), Answer(503), ok([{"user_id": "1"}]), jitter=jitter, backoff_base=0.5)

    pages = h.pages()

    assert pages[0].records == [{"user_id": "1"}]
    assert h.sleeps == [0.5 * jitter, 1.0 * jitter, 2.0 * jitter]
    assert len(h.adapter.requests) == 4


@pytest.mark.parametrize("jitter", [1.0, 0.5])
def test_backoff_ceiling_is_capped_at_backoff_cap_before_jitter(jitter: float) -> None:
    # base * 2**(n-1) = 1, 2, 4, 8, 16 is capped at 3 and then scaled by the jitter draw (full jitter)
    h = harness(*[Answer(500)] * 5, ok(), jitter=jitter, backoff_base=1.0, backoff_cap=3.0, max_attempts=6)

    h.pages()

    assert h.sleeps == [1.0 * jitter, 2.0 * jitter, 3.0 * jitter, 3.0 * jitter, 3.0 * jitter]


def test_5xx_that_persists_raises_unavailable_after_max_attempts() -> None:
    h = harness(*[sendgrid_error(503, (None, "maintenance"))] * 4, max_attempts=4, backoff_base=0.5)

    with pytest.raises(SeqUnavailableError) as info:
        h.pages()

    assert info.value.status == 503
    assert retryable(info.value)
    assert "after 4 tries" in str(info.value)
    assert "maintenance" in str(info.value)
    assert len(h.adapter.requests) == 4
    assert h.sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    "failure",
    [requests.ConnectionError("connection refused"), requests.ReadTimeout("read timed out")],
    ids=["connection-error", "read-timeout"],
)
def test_transport_failures_are_retried_with_backoff(failure: Exception) -> None:
    h = harness(failure, failure, ok([{"user_id": "9"}]), jitter=0.5, backoff_base=2.0)

    pages = h.pages()

    assert pages[0].records == [{"user_id": "9"}]
    assert h.sleeps == [1.0, 2.0]
    assert len(h.adapter.requests) == 3


@pytest.mark.parametrize(
    ("failure", "name"),
    [(requests.ConnectionError("refused"), "ConnectionError"), (requests.ReadTimeout("slow"), "ReadTimeout")],
)
def test_transport_failures_that_persist_raise_unavailable_naming_the_failure(failure: Exception, name: str) -> None:
    h = harness(*[failure] * 3, max_attempts=3)

    with pytest.raises(SeqUnavailableError) as info:
        h.pages()

    assert name in str(info.value)
    assert "after 3 tries" in str(info.value)
    assert info.value.status == 0
    assert len(h.adapter.requests) == 3
    assert len(h.sleeps) == 2


def test_retries_are_counted_per_page_not_per_day() -> None:
    # Given two failures on each of two pages, with three tries allowed per page
    h = harness(Answer(500), Answer(500), ok(after_key="k"), Answer(500), Answer(500), ok(), max_attempts=3)

    pages = h.pages()

    assert len(pages) == 2
    assert len(h.adapter.requests) == 6


def test_a_retried_request_keeps_its_cursor() -> None:
    h = harness(ok(after_key="cursor-1"), Answer(500), ok())

    h.pages()

    assert h.adapter.params(1)["after_key"] == ["cursor-1"]
    assert h.adapter.params(2)["after_key"] == ["cursor-1"]


# -- protocol errors -------------------------------------------------------------------------


def test_a_200_body_that_is_not_json_raises_protocol_error_naming_the_page() -> None:
    h = harness(ok(after_key="k"), Answer(200, b"<html>gateway says hi</html>", {"Content-Type": "text/html"}))

    with pytest.raises(SeqProtocolError) as info:
        h.pages()

    message = str(info.value)
    assert f"{DAY} page 2" in message
    assert "not valid JSON" in message
    assert "<html>gateway says hi" in message
    assert info.value.raw == b"<html>gateway says hi</html>"  # kept for the exporter to set aside
    assert len(h.adapter.requests) == 2  # not retried


@pytest.mark.parametrize(
    "body",
    [b"{}", b'{"results": []}', b'{"result": null}', b'{"result": {}}', b"[]", b'"result"'],
    ids=["empty", "misspelt", "null", "object", "array", "string"],
)
def test_a_200_body_without_a_result_list_raises_protocol_error(body: bytes) -> None:
    h = harness(Answer(200, body))

    with pytest.raises(SeqProtocolError, match="page 1"):
        h.pages()


def test_a_cursor_that_repeats_the_previous_one_raises_did_not_advance() -> None:
    h = harness(ok(after_key="same"), ok(after_key="same"), ok())

    with pytest.raises(SeqProtocolError, match="did not advance"):
        h.pages()

    assert len(h.adapter.requests) == 2


def test_a_cursor_that_returns_to_an_earlier_one_raises_did_not_advance() -> None:
    h = harness(ok(after_key="a"), ok(after_key="b"), ok(after_key="a"), ok())

    pages: list[Page] = []
    with pytest.raises(SeqProtocolError, match=rf"{DAY} page 3: the cursor did not advance"):
        pages.extend(h.client.iter_pages(DAY))

    assert [p.number for p in pages] == [1, 2, 3]  # page 3 itself was yielded once, never again


def test_a_cursor_equal_to_the_resume_cursor_raises_did_not_advance() -> None:
    h = harness(ok(after_key="resume"))

    with pytest.raises(SeqProtocolError, match="did not advance"):
        h.pages(after_key="resume")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_a_body_are_refused(constant: str) -> None:
    h = harness(Answer(200, f'{{"result": [{{"user_id": "1", "score": {constant}}}]}}'.encode()))

    with pytest.raises(SeqProtocolError, match="not valid JSON"):
        h.pages()


def test_fractional_numbers_arrive_as_exact_decimals() -> None:
    body = b'{"result": [{"user_id": "1", "score": 3.75, "metrics": {"open_rate": 0.1, "bounce_rate": 4}}]}'
    h = harness(Answer(200, body))

    record = h.pages()[0].records[0]

    assert record["score"] == Decimal("3.75")
    assert isinstance(record["score"], Decimal)
    assert str(record["score"]) == "3.75"
    assert str(record["metrics"]["open_rate"]) == "0.1"
    assert record["metrics"]["bounce_rate"] == 4
    assert type(record["metrics"]["bounce_rate"]) is int


# -- secret hygiene --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        [sendgrid_error(400, ("date", "bad"))],
        [sendgrid_error(401, (None, "authorization required"))],
        [Answer(403, b"forbidden")],
        [Answer(404, b"")],
        [Answer(418, b"teapot")],
        [Answer(202, b"")],
        [Answer(200, b"not json")],
        [Answer(200, b'{"result": 1}')],
        [ok(after_key="x"), ok(after_key="x")],
        [Answer(500, b"boom"), Answer(500, b"boom")],
        [Answer(429), Answer(429)],
        [requests.ConnectionError("refused"), requests.ConnectionError("refused")],
        [requests.ReadTimeout("slow"), requests.ReadTimeout("slow")],
    ],
    ids=[
        "400",
        "401",
        "403",
        "404",
        "418",
        "202",
        "bad-json",
        "no-result",
        "stuck-cursor",
        "5xx",
        "429",
        "connection-error",
        "read-timeout",
    ],
)
def test_the_api_key_never_appears_in_a_raised_error(script: list[Step]) -> None:
    h = harness(*script, max_attempts=2)

    error = capture(h)

    rendered = "".join(traceback.format_exception(error))
    assert API_KEY not in str(error)
    assert API_KEY not in repr(error)
    assert API_KEY not in rendered
    assert "Bearer" not in rendered
    assert h.adapter.requests[0].headers["Authorization"] == f"Bearer {API_KEY}"  # it was really sent
