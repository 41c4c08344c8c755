"""Score-change events: ten to a call, refused entries re-sent alone, bounded, counted."""

from __future__ import annotations

import json
from decimal import Decimal

from seq_export.events_publisher import DETAIL_TYPE, SOURCE, ScoreChangePublisher
from tests.support import FakeEvents, score_change


def publisher(fake: FakeEvents, sleeps: list[float]) -> ScoreChangePublisher:
    return ScoreChangePublisher(fake, "bus", max_attempts=3, sleep=sleeps.append, jitter=lambda: 1.0)  # type: ignore[arg-type]


def test_events_are_sent_ten_to_a_call_with_the_documented_shape() -> None:
    fake, sleeps = FakeEvents(), list[float]()

    counts = publisher(fake, sleeps).publish([score_change(n) for n in range(23)])

    assert [len(call) for call in fake.calls] == [10, 10, 3]
    assert (counts.sent, counts.failed) == (23, 0)
    entry = fake.calls[0][0]
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (SOURCE, DETAIL_TYPE, "bus")
    detail = json.loads(entry["Detail"])
    assert detail == {
        "source": "default",
        "user_id": "0",
        "username": "u0",
        "date": "2026-11-22",
        "previous_date": "2026-11-21",
        "old_score": 4,
        "new_score": 2,
        "change": -2,
        "old_metrics": {"open_rate": 3.5},
        "new_metrics": {"open_rate": 2},
    }
    assert sleeps == []


def test_refused_entries_alone_are_sent_again_with_backoff() -> None:
    fake, sleeps = FakeEvents(refuse={"3": 1, "7": 2}), list[float]()

    counts = publisher(fake, sleeps).publish([score_change(n) for n in range(10)])

    assert (counts.sent, counts.failed) == (10, 0)
    assert [[json.loads(e["Detail"])["user_id"] for e in call] for call in fake.calls[1:]] == [["3", "7"], ["7"]]
    assert sleeps == [0.4, 0.8]


def test_entries_still_refused_after_the_bound_are_counted_not_raised() -> None:
    fake, sleeps = FakeEvents(refuse={"1": 99}), list[float]()

    counts = publisher(fake, sleeps).publish([score_change(0), score_change(1)])

    assert (counts.sent, counts.failed) == (1, 1)
    assert len(fake.calls) == 3  # bounded by max_attempts


def test_a_failing_call_is_retried_whole() -> None:
    fake, sleeps = FakeEvents(raise_times=1), list[float]()

    counts = publisher(fake, sleeps).publish([score_change(0), score_change(1)])

    assert (counts.sent, counts.failed) == (2, 0)
    assert len(fake.calls) == 2


def test_fractional_moves_keep_their_value() -> None:
    moved = score_change(1, old=Decimal("3.25"), new=Decimal("2.5"))

    assert moved.change == Decimal("-0.75")
    assert json.loads(moved.detail())["change"] == -0.75
