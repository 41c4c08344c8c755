"""Event routing decisions that need no AWS: rejected shapes and backfill ranges."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from seq_export import handler
from seq_export.errors import InvalidEventError

TODAY = date(2026, 11, 23)


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"Records": []},
        {"Records": [{"eventSource": "aws:sns"}]},
        {"detail-type": "Object Created", "source": "aws.s3"},
        {"date": "2026-11-22", "extra": 1},
        {"from": "2026-11-01"},
        "2026-11-22",
        None,
    ],
)
def test_unknown_shapes_are_rejected_listing_every_accepted_shape(event: Any) -> None:
    with pytest.raises(InvalidEventError) as caught:
        handler.route(event, None, today=TODAY)

    text = str(caught.value)
    for shape in ("scheduled_time", "Scheduled Event", "SQS", '{"date"', '{"from"'):
        assert shape in text


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        ("2026-11-10", "2026-11-01", "'from' 2026-11-10 is after 'to' 2026-11-01"),
        ("2026-08-24", "2026-09-01", "older than SendGrid's 90-day window (2026-08-25)"),
        ("2026-11-20", "2026-11-23", "'to' 2026-11-23 is not a finished UTC day; the newest allowed is 2026-11-22"),
        ("2026-11-20", "2026-13-01", "to is not a calendar date"),
    ],
)
def test_backfill_ranges_outside_what_sendgrid_serves_are_rejected(first: str, last: str, message: str) -> None:
    with pytest.raises(InvalidEventError, match=message.replace("(", r"\(").replace(")", r"\)")):
        handler.route({"from": first, "to": last}, None, today=TODAY)
