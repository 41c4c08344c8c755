"""Date rules in one place: the strict day format, the day a scheduled run exports, day ranges,
and SendGrid's 90-day window. The function, the CLI, ``local/``, tests and the benchmark import
these instead of spelling a date pattern or a range of their own.

Every day is a UTC calendar day written ``YYYY-MM-DD``: the API's ``date``, the lake's ``dt=``
partition and the latest-score table's ``date`` all use that one form.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from seq_export.errors import InvalidEventError

DAY_FORMAT = "%Y-%m-%d"
DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: SendGrid keeps 90 days of scores; older dates answer 400.
RETENTION_DAYS = 90


def parse_day(value: object, *, what: str = "date") -> date:
    """Parse a strict ``YYYY-MM-DD`` string (no other ISO forms), naming ``what`` on failure."""
    if not isinstance(value, str) or not DAY_PATTERN.match(value):
        raise InvalidEventError(f"{what} must be a day YYYY-MM-DD, got {value!r}")
    try:
        return datetime.strptime(value, DAY_FORMAT).date()
    except ValueError:
        raise InvalidEventError(f"{what} is not a calendar date: {value!r}") from None


def parse_instant(moment: str) -> datetime:
    """An ISO-8601 instant, ``Z`` accepted for UTC (as ``iso_timestamp`` writes it)."""
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def day_before(moment: str, *, what: str) -> date:
    """The UTC day before an ISO-8601 instant: the day a scheduled run at ``moment`` exports."""
    try:
        parsed = parse_instant(moment)
    except (AttributeError, ValueError):
        raise InvalidEventError(f"{what} must be an ISO-8601 timestamp, got {moment!r}") from None
    if parsed.tzinfo is None:
        raise InvalidEventError(f"{what} must carry a UTC offset (for example 'Z'), got {moment!r}")
    return parsed.astimezone(UTC).date() - timedelta(days=1)


def today_utc() -> date:
    return datetime.now(UTC).date()


def yesterday_utc() -> date:
    """The newest finished UTC day: what the daily schedule exports."""
    return today_utc() - timedelta(days=1)


def days_between(first: date, last: date) -> list[str]:
    """Every day from ``first`` to ``last``, both included, oldest first."""
    return [(first + timedelta(days=offset)).isoformat() for offset in range((last - first).days + 1)]


def export_window(today: date) -> tuple[date, date]:
    """The oldest and newest day that may be exported on ``today``: SendGrid's 90-day window,
    up to yesterday (UTC). Today is never finished: SendGrid may serve a partial day, and once
    written it would become the newest day in the latest-score table."""
    return today - timedelta(days=RETENTION_DAYS), today - timedelta(days=1)


def check_exportable(day: date, today: date, *, what: str) -> None:
    """The one rule for every way a day arrives (direct event, schedule, backfill, queued job):
    raise an ``InvalidEventError`` naming ``what`` and the allowed range unless the day is in it."""
    oldest, newest = export_window(today)
    allowed = f"days from {oldest} to {newest} (UTC) can be exported"
    if day > newest:
        raise InvalidEventError(f"{what} {day} is not a finished UTC day; the newest allowed is {newest}: {allowed}")
    if day < oldest:
        raise InvalidEventError(
            f"{what} {day} is older than SendGrid's {RETENTION_DAYS}-day window ({oldest}): {allowed}"
        )


def backfill_days(first: date, last: date, today: date) -> list[str]:
    """The days of a backfill, once the range is checked: in order, and each end exportable."""
    if first > last:
        raise InvalidEventError(f"backfill event 'from' {first} is after 'to' {last}")
    check_exportable(first, today, what="backfill event 'from'")
    check_exportable(last, today, what="backfill event 'to'")
    return days_between(first, last)


def iso_timestamp(moment: datetime) -> str:
    """An instant as ISO-8601 UTC with milliseconds and ``Z``: the lines' ``exported_at``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def compact_timestamp(moment: datetime) -> str:
    """An instant that sorts as text and fits in an S3 key (quarantined answers)."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
