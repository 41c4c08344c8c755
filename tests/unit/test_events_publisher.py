"""Score-change events: ten to a call, refused entries re-sent alone, bounded, counted."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from seq_export.events_publisher import DETAIL_TYPE, SOURCE, ScoreChangePublisher
from seq_export.models import ScoreChange


def change(n: int, old: int | Decimal = 4, new: int | Decimal = 2) -> ScoreChange:
    return ScoreChange(
        user_id=str(n),
        username=f"u{n}",
        date="2026-11-22",
        previous_date="2026-11-21",
        old_score=Decimal(old),
        new_score=new,
        old_metrics={"open_rate": Decimal("3.5")},
        new_metrics={"open_rate": 2},
    )


class FakeEvents:
    def __init__(self, refuse: dict[str, int] | None = None, raise_times: int = 0) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.refuse = refuse or {}  # user_id -> how many times to refuse its entry
        self.raise_times = raise_times

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        if self.raise_times:
            self.raise_times -= 1
            raise ClientError({"Error": {"Code": "InternalException", "Message": "x"}}, "PutEvents")
        answers = []
        for entry in Entries:
            user = json.loads(entry["Detail"])["user_id"]
            if self.refuse.get(user, 0) > 0:
                self.refuse[user] -= 1
                answers.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            else:
                answers.append({"EventId": f"e-{user}"})
        return {"FailedEntryCount": sum(1 for a in answers if "ErrorCode" in a), "Entries": answers}


def publisher(fake: FakeEvents, sleeps: list[float]) -> ScoreChangePublisher:
    return ScoreChangePublisher(fake, "bus", max_attempts=3, sleep=sleeps.append, jitter=lambda: 1.0)  # type: ignore[arg-type]


def test_events_are_sent_ten_to_a_call_with_the_documented_shape() -> None:
    fake, sleeps = FakeEvents(), list[float]()

    counts = publisher(fake, sleeps).publish([change(n) for n in range(23)])

    assert [len(call) for call in fake.calls] == [10, 10, 3]
    assert (counts.sent, counts.failed) == (23, 0)
    entry = fake.calls[0][0]
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (SOURCE, DETAIL_TYPE, "bus")
    detail = json.loads(entry["Detail"])
    assert detail == {
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

    counts = publisher(fake, sleeps).publish([change(n) for n in range(10)])

    assert (counts.sent, counts.failed) == (10, 0)
    assert [[json.loads(e["Detail"])["user_id"] for e in call] for call in fake.calls[1:]] == [["3", "7"], ["7"]]
    assert sleeps == [0.4, 0.8]


def test_entries_still_refused_after_the_bound_are_counted_not_raised() -> None:
    fake, sleeps = FakeEvents(refuse={"1": 99}), list[float]()

    counts = publisher(fake, sleeps).publish([change(0), change(1)])

    assert (counts.sent, counts.failed) == (1, 1)
    assert len(fake.calls) == 3  # bounded by max_attempts


def test_a_failing_call_is_retried_whole() -> None:
    fake, sleeps = FakeEvents(raise_times=1), list[float]()

    counts = publisher(fake, sleeps).publish([change(0), change(1)])

    assert (counts.sent, counts.failed) == (2, 0)
    assert len(fake.calls) == 2


def test_fractional_moves_keep_their_value() -> None:
    moved = change(1, old=Decimal("3.25"), new=Decimal("2.5"))

    assert moved.change == Decimal("-0.75")
    assert json.loads(moved.detail())["change"] == -0.75
