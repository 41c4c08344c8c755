"""Date rules: strict days, the day a schedule exports, ranges and the backfill window."""

from __future__ import annotations

from datetime import date

import pytest

from seq_export.dates import backfill_days, day_before, days_between, parse_day
from seq_export.errors import InvalidEventError

TODAY = date(2026, 11, 23)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-11-23T06:00:00Z", date(2026, 11, 22)),
        ("2026-11-23T00:00:00Z", date(2026, 11, 22)),
        ("2026-11-23T23:59:59.999Z", date(2026, 11, 22)),
        ("2026-11-22T23:30:00-02:00", date(2026, 11, 22)),  # 01:30 UTC on the 23rd
        ("2026-03-01T05:00:00+00:00", date(2026, 2, 28)),
    ],
)
def test_scheduled_runs_export_the_utc_day_before(moment: str, expected: date) -> None:
    assert day_before(moment, what="t") == expected


def test_dates_are_strict() -> None:
    assert parse_day("2024-02-29") == date(2024, 2, 29)
    for text in ("2026-02-29", "20261122", "2026-11-22T00:00:00", " 2026-11-22", None, 20261122):
        with pytest.raises(InvalidEventError):
            parse_day(text)


def test_a_range_lists_every_day_once_both_ends_included() -> None:
    assert days_between(date(2026, 2, 27), date(2026, 3, 1)) == ["2026-02-27", "2026-02-28", "2026-03-01"]
    assert days_between(date(2026, 3, 1), date(2026, 3, 1)) == ["2026-03-01"]


def test_a_backfill_may_reach_from_the_oldest_day_sendgrid_keeps_to_yesterday() -> None:
    days = backfill_days(date(2026, 8, 25), date(2026, 11, 22), TODAY)

    assert (days[0], days[-1], len(days)) == ("2026-08-25", "2026-11-22", 90)
