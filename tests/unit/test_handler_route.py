"""Event parsing that needs no AWS: what each shape becomes, rejected shapes, backfill ranges."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from seq_export.errors import InvalidEventError
from seq_export.invocations import Backfill, DailyRun, ExportDay, QueuedJobs, parse_event
from seq_export.models import ACCOUNT
from tests.support import job

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
        ("2026-11-20", "2026-13-01", "backfill event 'to' is not a calendar date"),
    ],
)
def test_backfill_ranges_outside_what_sendgrid_serves_are_rejected(first: str, last: str, message: str) -> None:
    with pytest.raises(InvalidEventError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_event({"from": first, "to": last}, today=TODAY)


@pytest.mark.parametrize(
    ("event", "request_"),
    [
        ({"scheduled_time": "2026-11-23T06:00:00Z"}, DailyRun("2026-11-22")),
        (
            {"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-23T06:00:00Z"},
            DailyRun("2026-11-22"),
        ),
        ({"date": "2026-11-20"}, ExportDay(job("2026-11-20", attempt=1))),
        ({"date": "2026-11-20", "kind": "account"}, ExportDay(job("2026-11-20", attempt=1, kind=ACCOUNT))),
        ({"from": "2026-11-01", "to": "2026-11-02"}, Backfill(date(2026, 11, 1), date(2026, 11, 2))),
        (
            {"from": "2026-11-01", "to": "2026-11-02", "force": True},
            Backfill(date(2026, 11, 1), date(2026, 11, 2), force=True),
        ),
        (
            {"from": "2026-11-01", "to": "2026-11-02", "kind": "account"},
            Backfill(date(2026, 11, 1), date(2026, 11, 2), kind=ACCOUNT),
        ),
    ],
)
def test_each_accepted_shape_becomes_its_typed_request(event: dict[str, Any], request_: object) -> None:
    assert parse_event(event, today=TODAY) == request_


def test_a_backfill_of_an_unknown_kind_is_rejected_naming_the_kinds() -> None:
    with pytest.raises(InvalidEventError, match=r"backfill event 'kind' must be one of \['subusers', 'account'\]"):
        parse_event({"from": "2026-11-01", "to": "2026-11-02", "kind": "everyone"}, today=TODAY)


def test_an_sqs_event_is_handed_whole_to_the_job_worker() -> None:
    event = {"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}

    assert parse_event(event) == QueuedJobs(event)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"date": "2026-11-23"}, "direct date event 'date' 2026-11-23 is not a finished UTC day"),
        ({"date": "2026-12-25"}, "direct date event 'date' 2026-12-25 is not a finished UTC day"),
        ({"date": "2026-08-24"}, "direct date event 'date' 2026-08-24 is older than SendGrid's 90-day window"),
        ({"date": "2026-11-23", "kind": "account"}, "direct date event 'date' 2026-11-23 is not a finished"),
        ({"scheduled_time": "2026-11-25T06:00:00Z"}, "scheduled event 'scheduled_time': the day 2026-11-24 is not"),
        ({"from": "2026-11-20", "to": "2026-11-23"}, "backfill event 'to' 2026-11-23 is not a finished UTC day"),
    ],
)
def test_only_finished_days_within_sendgrids_window_are_accepted_naming_the_allowed_range(
    event: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidEventError, match=message) as caught:
        parse_event(event, today=TODAY)

    assert "days from 2026-08-25 to 2026-11-22 (UTC) can be exported" in str(caught.value)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"date": "yesterday"}, "direct date event 'date' must be a day YYYY-MM-DD, got 'yesterday'"),
        ({"date": "2026-11-20", "attempt": 0}, "direct date event 'attempt' must be a positive integer"),
        ({"date": "2026-11-20", "kind": "both"}, "direct date event 'kind' must be one of subusers, account"),
        ({"from": "last week", "to": "2026-11-20"}, "backfill event 'from' must be a day YYYY-MM-DD"),
        ({"from": "2026-11-01", "to": "2026-11-20", "force": "yes"}, "backfill event 'force' must be true or false"),
        ({"scheduled_time": "tomorrow"}, "scheduled event 'scheduled_time' must be an ISO-8601 timestamp"),
    ],
)
def test_errors_name_the_shape_the_caller_sent_and_the_field(event: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidEventError, match=message):
        parse_event(event, today=TODAY)
