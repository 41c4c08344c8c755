"""RequestSlots: how many requests one client lets in flight, and how a 429 or a low
``X-RateLimit-Remaining`` slows it down. Threads meet at barriers and events, never at sleeps;
the clock of a hold is a fake that only moves when a test moves it."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from seq_export.request_slots import RequestSlots

#: Only a safeguard against a hanging test: every wait below returns as soon as it is met.
PATIENCE = 10.0


class FakeMonotonic:
    """A monotonic clock moved by the test; says when a thread other than the test's asked it
    (a thread in ``slot()`` asks while it holds the lock, just before it waits)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.asked_by_another_thread = threading.Event()
        self._test_thread = threading.get_ident()

    def __call__(self) -> float:
        if threading.get_ident() != self._test_thread:
            self.asked_by_another_thread.set()
        return self.now


def in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def calm(slots: RequestSlots, answers: int) -> None:
    for _ in range(answers):
        slots.answered(None, None)


# -- the limit ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ceiling", [0, -1])
def test_a_ceiling_below_one_is_refused(ceiling: int) -> None:
    with pytest.raises(ValueError, match="at least one request"):
        RequestSlots(ceiling)


@pytest.mark.parametrize("ceiling", [1, 8])
def test_the_limit_starts_at_the_ceiling(ceiling: int) -> None:
    slots = RequestSlots(ceiling)

    assert (slots.limit, slots.ceiling, slots.lowered, slots.most_in_flight) == (ceiling, ceiling, 0, 0)


def test_the_default_is_one_request_at_a_time() -> None:
    assert RequestSlots().limit == 1


def test_each_rate_limit_halves_the_limit_down_to_one() -> None:
    slots = RequestSlots(8)
    limits = []

    for _ in range(5):
        slots.rate_limited(1.0)
        limits.append(slots.limit)

    assert limits == [4, 2, 1, 1, 1]
    assert slots.lowered == 3  # at one, nothing more to lower


def test_an_odd_limit_halves_downwards() -> None:
    slots = RequestSlots(5)

    slots.rate_limited(1.0)

    assert slots.limit == 2


@pytest.mark.parametrize(("remaining", "limit"), [(2, 2), (1, 1), (0, 1), (-3, 1)])
def test_a_remaining_below_the_limit_lowers_it_to_the_remaining_but_not_below_one(remaining: int, limit: int) -> None:
    slots = RequestSlots(8)

    slots.answered(remaining, None)

    assert slots.limit == limit
    assert slots.lowered == 1


@pytest.mark.parametrize("remaining", [8, 100, None])
def test_a_remaining_at_or_above_the_limit_or_unsaid_leaves_it(remaining: int | None) -> None:
    slots = RequestSlots(8)

    slots.answered(remaining, 5.0)

    assert (slots.limit, slots.lowered) == (8, 0)


def test_the_limit_grows_by_one_after_as_many_calm_answers_as_it_is_back_to_the_ceiling() -> None:
    slots = RequestSlots(8)
    slots.answered(2, None)

    for limit in range(2, 8):
        calm(slots, limit - 1)
        assert slots.limit == limit
        calm(slots, 1)
        assert slots.limit == limit + 1

    calm(slots, 100)
    assert slots.limit == 8


def test_a_rate_limit_starts_the_count_of_calm_answers_again() -> None:
    slots = RequestSlots(8)
    slots.answered(4, None)
    calm(slots, 3)  # one short of growing to 5

    slots.rate_limited(1.0)
    calm(slots, 1)

    assert slots.limit == 2
    calm(slots, 1)
    assert slots.limit == 3


def test_a_low_remaining_starts_the_count_of_calm_answers_again() -> None:
    slots = RequestSlots(8)
    slots.answered(3, None)
    calm(slots, 2)  # one short of growing to 4

    slots.answered(3, None)  # not below the limit: calm
    assert slots.limit == 4
    slots.answered(2, None)
    calm(slots, 1)
    assert slots.limit == 2


# -- holds -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hold",
    [lambda slots: slots.rate_limited(30.0), lambda slots: slots.answered(0, 30.0)],
    ids=["rate-limited", "none-remaining"],
)
def test_a_hold_keeps_new_requests_out_until_its_time_has_passed(hold: Callable[[RequestSlots], None]) -> None:
    clock = FakeMonotonic()
    slots = RequestSlots(4, monotonic=clock)
    hold(slots)
    entered = threading.Event()

    def new_request() -> None:
        with slots.slot():
            entered.set()

    waiter = in_thread(new_request)
    assert clock.asked_by_another_thread.wait(PATIENCE)
    assert not entered.is_set()

    # the request that caused the hold, having waited it out, goes ahead (and frees its slot)
    with slots.slot():
        pass
    assert not entered.is_set()

    clock.now += 30.0
    with slots.slot():  # any slot freed wakes the waiting request
        pass
    assert entered.wait(PATIENCE)
    waiter.join(PATIENCE)
    assert slots.most_in_flight == 1


def another_thread_gets_a_slot(slots: RequestSlots) -> bool:
    """Whether a request from another thread than the hold's gets a slot (on a fake clock that
    does not move, a held request would wait for ever: it is given ``PATIENCE`` seconds)."""
    entered = threading.Event()

    def new_request() -> None:
        with slots.slot():
            entered.set()

    in_thread(new_request)
    return entered.wait(PATIENCE)


def test_no_hold_without_a_reset_time() -> None:
    slots = RequestSlots(4, monotonic=FakeMonotonic())

    slots.answered(0, None)

    assert another_thread_gets_a_slot(slots)
    assert slots.limit == 1


def test_a_request_after_the_hold_has_passed_goes_ahead() -> None:
    clock = FakeMonotonic()
    slots = RequestSlots(4, monotonic=clock)
    slots.rate_limited(30.0)

    clock.now += 30.0

    assert another_thread_gets_a_slot(slots)


def test_a_later_shorter_hold_does_not_cut_a_longer_one_short() -> None:
    clock = FakeMonotonic()
    slots = RequestSlots(4, monotonic=clock)
    slots.rate_limited(60.0)
    slots.rate_limited(5.0)
    entered = threading.Event()

    def new_request() -> None:
        with slots.slot():
            entered.set()

    waiter = in_thread(new_request)
    assert clock.asked_by_another_thread.wait(PATIENCE)

    clock.now += 30.0  # past the short hold, not the long one
    with slots.slot():
        pass
    assert not entered.is_set()

    clock.now += 30.0
    with slots.slot():
        pass
    assert entered.wait(PATIENCE)
    waiter.join(PATIENCE)


# -- requests in flight --------------------------------------------------------------------------


def test_most_in_flight_counts_the_requests_holding_slots_at_once() -> None:
    slots = RequestSlots(3)
    all_in = threading.Barrier(3, timeout=PATIENCE)

    def request() -> None:
        with slots.slot():
            all_in.wait()  # passes only once all three hold a slot together

    threads = [in_thread(request) for _ in range(3)]
    for thread in threads:
        thread.join(PATIENCE)

    assert slots.most_in_flight == 3


def test_no_more_requests_than_the_limit_are_in_flight() -> None:
    slots = RequestSlots(2)
    pair = threading.Barrier(2, timeout=PATIENCE)
    done = []

    def request() -> None:
        with slots.slot():
            pair.wait()  # two at a time meet here; a third would have to wait for a slot
            done.append(1)

    threads = [in_thread(request) for _ in range(6)]
    for thread in threads:
        thread.join(PATIENCE)

    assert len(done) == 6
    assert slots.most_in_flight == 2


def test_a_waiting_request_enters_when_the_limit_grows() -> None:
    clock = FakeMonotonic()
    slots = RequestSlots(2, monotonic=clock)
    slots.answered(1, None)
    entered = threading.Event()
    release = threading.Event()

    def request() -> None:
        with slots.slot():
            entered.set()
            assert release.wait(PATIENCE)

    with slots.slot():
        waiter = in_thread(request)
        assert clock.asked_by_another_thread.wait(PATIENCE)  # it waits for a slot
        assert not entered.is_set()
        calm(slots, 1)  # the limit grows to 2: the waiting request gets in beside this one
        assert entered.wait(PATIENCE)
        release.set()
    waiter.join(PATIENCE)

    assert (slots.limit, slots.most_in_flight) == (2, 2)


def test_requests_one_after_another_use_one_slot() -> None:
    slots = RequestSlots(4)

    for _ in range(3):
        with slots.slot():
            pass

    assert slots.most_in_flight == 1


def test_a_failed_request_frees_its_slot() -> None:
    slots = RequestSlots(1)

    with pytest.raises(RuntimeError), slots.slot():
        raise RuntimeError("no answer")
    with slots.slot():  # would wait forever if the slot were still taken
        pass

    assert slots.most_in_flight == 1
