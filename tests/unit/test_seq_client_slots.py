"""SeqClient's shared request slots and its one-page call, over the scripted transport of
``tests.support.harness``: no socket, no real sleep (a 429's wait is recorded, not slept).

A 429 holds the client's *other* requests on the real monotonic clock, so each test here asks
for one page only after a rate limit: the retry that follows it is let through by design."""

from __future__ import annotations

import pytest

from seq_export.errors import SeqBadRequestError
from tests.support import SEQ_DAY, START, Answer, harness, ok, sendgrid_error

DAY = SEQ_DAY


def with_headers(answer: Answer, **headers: str) -> Answer:
    answer.headers.update({name.replace("_", "-"): value for name, value in headers.items()})
    return answer


# -- page() ------------------------------------------------------------------------------------


def test_page_returns_one_page_with_its_number_and_cursor() -> None:
    h = harness(ok([{"user_id": "11"}, {"user_id": "12"}], after_key="12"), page_size=2)

    page = h.client.page(DAY, after_key="10", number=7)

    assert (page.number, page.next_after_key) == (7, "12")
    assert page.records == [{"user_id": "11"}, {"user_id": "12"}]
    assert len(h.adapter.requests) == 1
    assert h.adapter.params(0) == {"date": [DAY], "limit": ["2"], "after_key": ["10"]}


def test_the_first_page_is_asked_without_an_after_key() -> None:
    h = harness(ok())

    page = h.client.page(DAY, after_key=None, number=1)

    assert page.next_after_key is None
    assert "after_key" not in h.adapter.params(0)


@pytest.mark.parametrize(("where", "named"), [(None, f"{DAY} page 3"), ("day range 2 page 3", "day range 2 page 3")])
def test_page_errors_name_the_page(where: str | None, named: str) -> None:
    h = harness(sendgrid_error(400, ("limit", "too big")))

    with pytest.raises(SeqBadRequestError, match=f"^{named}: "):
        h.client.page(DAY, after_key="5", number=3, where=where)


# -- the slots ---------------------------------------------------------------------------------


def test_a_client_sends_one_request_at_a_time_unless_told_otherwise() -> None:
    h = harness(ok())

    h.client.page(DAY, after_key=None, number=1)

    assert (h.client.slots.ceiling, h.client.slots.limit, h.client.slots.most_in_flight) == (1, 1, 1)


def test_max_in_flight_is_the_slots_ceiling() -> None:
    h = harness(max_in_flight=8)

    assert (h.client.slots.ceiling, h.client.slots.limit) == (8, 8)


@pytest.mark.parametrize(
    "headers",
    [{"X-RateLimit-Reset": str(int(START) + 10)}, {"Retry-After": "10"}, {}],
    ids=["reset", "retry-after", "no-headers"],
)
def test_a_429_lowers_the_limit_and_the_page_still_arrives(headers: dict[str, str]) -> None:
    h = harness(
        Answer(429, b"", {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", **headers}),
        ok([{"user_id": "1"}], after_key="1"),
        max_in_flight=8,
    )

    page = h.client.page(DAY, after_key=None, number=1)

    assert page.records == [{"user_id": "1"}]
    assert h.client.slots.limit == 4
    assert h.client.slots.lowered == 1
    assert len(h.sleeps) == 1
    assert len(h.adapter.requests) == 2


def test_a_429_waits_as_the_reset_says_while_the_slots_hold_the_others() -> None:
    h = harness(Answer(429, b"", {"X-RateLimit-Reset": str(int(START) + 10)}), ok(), max_in_flight=8)

    h.client.page(DAY, after_key=None, number=1)

    assert h.sleeps == [10.25]


def test_a_low_remaining_lowers_the_limit_to_it() -> None:
    h = harness(with_headers(ok([{"user_id": "1"}]), X_RateLimit_Remaining="2"), max_in_flight=8)

    page = h.client.page(DAY, after_key=None, number=1)

    assert page.records == [{"user_id": "1"}]
    assert h.client.slots.limit == 2
    assert h.sleeps == []


@pytest.mark.parametrize("remaining", ["600", "8", "soon", ""])
def test_a_remaining_at_or_above_the_limit_or_unreadable_leaves_it(remaining: str) -> None:
    h = harness(with_headers(ok(), X_RateLimit_Remaining=remaining), max_in_flight=8)

    h.client.page(DAY, after_key=None, number=1)

    assert (h.client.slots.limit, h.client.slots.lowered) == (8, 0)


def test_calm_answers_let_the_limit_grow_back() -> None:
    h = harness(
        with_headers(ok(after_key="1"), X_RateLimit_Remaining="2"),
        ok(after_key="2"),
        ok(after_key="3"),
        max_in_flight=8,
    )

    limits = []
    for number, after_key in enumerate([None, "1", "2"], start=1):
        h.client.page(DAY, after_key=after_key, number=number)
        limits.append(h.client.slots.limit)

    assert limits == [2, 2, 3]


@pytest.mark.parametrize(("reset_after", "waited"), [(10, 10.25), (6 * 3600, 60.0)], ids=["soon", "hours away: capped"])
def test_an_answer_with_nothing_left_waits_for_the_reset_at_most_as_long_as_a_rate_limit(
    reset_after: int, waited: float
) -> None:
    spent = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(START) + reset_after)}
    h = harness(with_headers(ok(), **spent), max_in_flight=8)

    h.client.page(DAY, after_key=None, number=1)

    assert h.sleeps == [waited]
    assert h.client.slots.limit == 1
