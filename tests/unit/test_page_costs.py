"""The reserve kept before fetching another page comes from this invocation's own page costs."""

from __future__ import annotations

import pytest

from seq_export.page_costs import PageCosts
from tests.support import Clock


def fetch(costs: PageCosts, clock: Clock, seconds: float) -> None:
    costs.fetch_started()
    clock.sleep(seconds)
    costs.fetch_ended()


def write(costs: PageCosts, clock: Clock, seconds: float) -> None:
    costs.timed(clock.sleep)(seconds)


def test_before_any_page_the_reserve_is_the_floor() -> None:
    assert PageCosts(Clock(), floor=60).reserve() == 60


def test_slow_writes_count_twice_the_next_fetch_overlaps_the_pending_ones_then_its_own_must_finish() -> None:
    clock = Clock()
    costs = PageCosts(clock, floor=60)

    fetch(costs, clock, 2)
    write(costs, clock, 100)

    assert costs.reserve() == 60 + 100 + 100


def test_a_slow_fetch_with_cheap_writes_counts_once() -> None:
    clock = Clock()
    costs = PageCosts(clock, floor=60)

    fetch(costs, clock, 20)
    write(costs, clock, 1)

    assert costs.reserve() == 60 + 20 + 1


def test_only_the_recent_pages_count() -> None:
    clock = Clock()
    costs = PageCosts(clock, floor=0, window=2)
    for seconds in (50, 3, 4):
        fetch(costs, clock, seconds)
        write(costs, clock, seconds)

    assert costs.slowest_fetch() == 4
    assert costs.slowest_write() == 4


def test_a_failed_write_is_timed_too() -> None:
    clock = Clock()
    costs = PageCosts(clock)

    def failing(_: int) -> None:
        clock.sleep(30)
        raise RuntimeError("throttled")

    with pytest.raises(RuntimeError):
        costs.timed(failing)(1)

    assert costs.writes_measured
    assert costs.slowest_write() == 30
