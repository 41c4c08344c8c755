"""The one backoff formula: exponential from the first wait, capped, scaled by a jitter draw."""

from __future__ import annotations

import pytest

from seq_export.backoff import Backoff


def never_drawn() -> float:
    raise AssertionError("a wait without jitter must not draw")


def test_the_ceiling_doubles_from_the_first_wait_and_stops_at_the_cap() -> None:
    backoff = Backoff(first=0.5, cap=3.0)

    ceilings = [backoff.ceiling(retry) for retry in range(1, 6)]

    assert ceilings == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(("draw", "pause"), [(0.0, 0.0), (0.25, 1.0), (0.5, 2.0)])
def test_full_jitter_scales_the_ceiling_by_the_draw(draw: float, pause: float) -> None:
    assert Backoff(first=1.0, cap=8.0).pause(3, lambda: draw) == pause


@pytest.mark.parametrize(("draw", "pause"), [(0.0, 1.0), (0.5, 2.0), (0.75, 2.5)])
def test_a_jitter_range_maps_the_draw_onto_low_to_high(draw: float, pause: float) -> None:
    assert Backoff(first=2.0, cap=2.0, low=0.5, high=1.5).pause(1, lambda: draw) == pause


def test_an_exact_backoff_never_draws_and_adds_up() -> None:
    backoff = Backoff.exact(300, 900)

    pauses = [backoff.pause(retry, never_drawn) for retry in range(1, 5)]

    assert pauses == [300, 600, 900, 900]


def test_a_steady_wait_is_the_same_every_time_and_never_past_what_is_left() -> None:
    poll = Backoff.steady(5.0)

    assert [poll.pause(retry, never_drawn) for retry in range(1, 4)] == [5.0, 5.0, 5.0]
    assert poll.pause(4, never_drawn, within=2.0) == 2.0


@pytest.mark.parametrize("retry", [0, -3])
def test_a_retry_number_below_one_waits_the_first_wait(retry: int) -> None:
    assert Backoff.exact(0.5, 10.0).pause(retry) == 0.5


def test_an_absurd_retry_number_still_waits_the_cap() -> None:
    assert Backoff(first=0.1, cap=5.0).pause(100_000, lambda: 1.0) == 5.0
