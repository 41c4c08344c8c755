"""Event parsing that needs no AWS: what each shape becomes, rejected shapes, backfill ranges."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from seq_export.errors import InvalidEventError
from seq_export.events import Backfill, DailyRun, ExportDay, QueuedJobs, parse_event
from seq_export.models import ACCOUNT, Job

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
        parse_event(event)

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
    def days() -> list[str]:
        request = parse_event({"from": first, "to": last})
        assert isinstance(request, Backfill)
        return request.days(TODAY)

    with pytest.raises(InvalidEventError, match=message.replace("(", r"\(").replace(")", r"\)")):
        days()


@pytest.mark.parametrize(
    ("event", "request_"),
    [
        ({"scheduled_time": "2026-11-23T06:00:00Z"}, DailyRun("2026-11-22")),
        (
            {"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-23T06:00:00Z"},
            DailyRun("2026-11-22"),
        ),
        ({"date": "2026-11-20"}, ExportDay(Job(date="2026-11-20", attempt=1))),
        ({"date": "2026-11-20", "kind": "account"}, ExportDay(Job(date="2026-11-20", attempt=1, kind=ACCOUNT))),
        ({"from": "2026-11-01", "to": "2026-11-02"}, Backfill(date(2026, 11, 1), date(2026, 11, 2))),
        (
            {"from": "2026-11-01", "to": "2026-11-02", "force": True},
            Backfill(date(2026, 11, 1), date(2026, 11, 2), force=True),
        ),
    ],
)
def test_each_accepted_shape_becomes_its_typed_request(event: dict[str, Any], request_: object) -> None:
    assert parse_event(event) == request_


def test_an_sqs_event_is_handed_whole_to_the_job_worker() -> None:
    event = {"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}

    assert parse_event(event) == QueuedJobs(event)
