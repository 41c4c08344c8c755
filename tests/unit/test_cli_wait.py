"""``--wait`` on fakes of S3, SQS and the clock (no sleeping): polling until each queued day's
object is there, delivering the retry queue in this process (``--local``), and the dead-letter
queue peeked, never consumed. The commands' own waits are in ``test_cli_run.py`` and
``test_cli_backfill.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from seq_export.job_message import JobId
from seq_export_cli.dead_letters import dead_letter, peek_dead_letters
from seq_export_cli.errors import ServiceError
from seq_export_cli.waiting import DayWatcher, deliver_until_exported, poll_until_exported
from tests.support import START, Clock, client_error
from tests.support.cli_fakes import (
    MODIFIED,
    FakeDeadLetters,
    FakeQueue,
    FakeS3,
    Updates,
)


def key_of(day: str) -> str:
    return f"p/source=default/dt={day}/scores.jsonl"


def job_of(day: str) -> JobId:
    return JobId("default", "subusers", day)


def keys(*days: str) -> dict[JobId, str]:
    return {job_of(day): key_of(day) for day in days}


def test_polling_waits_until_every_days_object_exists() -> None:
    clock = Clock()
    s3, progress = FakeS3(clock), Updates()
    s3.put(key_of("2026-11-20"))
    s3.put(key_of("2026-11-21"), at=START + 5)
    watcher = DayWatcher(s3, "bucket", keys("2026-11-20", "2026-11-21"), {})

    outcome = poll_until_exported(watcher, progress, timeout=60, clock=clock, sleep=clock.sleep, interval=5)

    assert outcome == "exported"
    assert clock.sleeps == [5]
    assert progress.seen == [1, 2]
    assert s3.heads.count(key_of("2026-11-20")) == 1  # an exported day is not asked again


def test_polling_gives_up_at_the_timeout_naming_the_missing_days() -> None:
    clock = Clock()
    watcher = DayWatcher(FakeS3(clock), "bucket", keys("2026-11-20", "2026-11-21"), {})

    outcome = poll_until_exported(watcher, Updates(), timeout=12, clock=clock, sleep=clock.sleep, interval=5)

    assert outcome == "timeout"
    assert clock.sleeps == [5, 5, 2]
    assert watcher.pending == [job_of("2026-11-20"), job_of("2026-11-21")]


def test_with_force_an_existing_object_counts_only_once_it_is_replaced() -> None:
    s3 = FakeS3()
    s3.put(key_of("2026-11-20"), etag='"old"')
    watcher = DayWatcher(s3, "bucket", keys("2026-11-20"), {job_of("2026-11-20"): ('"old"', str(MODIFIED))})

    assert watcher.refresh() == 0
    s3.put(key_of("2026-11-20"), etag='"new"')
    assert watcher.refresh() == 1


def test_an_s3_refusal_while_waiting_is_a_service_error() -> None:
    s3 = FakeS3()
    s3.refusal = client_error("403", "HeadObject")
    watcher = DayWatcher(s3, "bucket", keys("2026-11-20"), {})

    with pytest.raises(
        ServiceError, match=r"S3 HeadObject of s3://bucket/p/source=default/dt=2026-11-20/scores.jsonl failed: 403"
    ):
        watcher.refresh()


def exporting(s3: FakeS3, answer: Callable[[str], dict[str, Any]] | None = None) -> Callable[[dict[str, Any]], Any]:
    """A handler for queued retries that writes each message's day (or answers ``answer(day)``)."""

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        [record] = event["Records"]
        day = json.loads(record["body"])["date"]
        if answer is not None:
            return answer(record["messageId"])
        s3.put(key_of(day))
        return {"batchItemFailures": []}

    return handler


def test_delivering_the_retry_queue_exports_the_days_and_deletes_their_messages() -> None:
    clock = Clock()
    s3, progress = FakeS3(clock), Updates()
    queue = FakeQueue(clock, [{"date": "2026-11-20"}, {"date": "2026-11-21"}])
    watcher = DayWatcher(s3, "bucket", keys("2026-11-20", "2026-11-21"), {})

    outcome = deliver_until_exported(queue.client(), "q", exporting(s3), watcher, progress, timeout=60, clock=clock)

    assert outcome == "exported"
    assert queue.deleted == ["r-0", "r-1"]
    assert progress.seen == [0, 1, 2]
    assert queue.waits == [20, 20, 0]  # a long poll while days are missing, then only what is visible


def test_delivering_stops_when_the_queue_has_nothing_left_for_the_missing_days() -> None:
    clock = Clock()
    queue = FakeQueue(clock, [])
    watcher = DayWatcher(FakeS3(clock), "bucket", keys("2026-11-20"), {})

    outcome = deliver_until_exported(
        queue.client(), "q", exporting(FakeS3()), watcher, Updates(), timeout=60, clock=clock
    )

    assert outcome == "queue_empty"
    assert watcher.pending == [job_of("2026-11-20")]


def test_a_failed_delivery_is_reported_and_the_wait_ends_at_the_timeout() -> None:
    clock = Clock()
    queue = FakeQueue(clock, [{"date": "2026-11-20"}])
    watcher = DayWatcher(FakeS3(clock), "bucket", keys("2026-11-20"), {})
    failures: list[int] = []

    outcome = deliver_until_exported(
        queue.client(),
        "q",
        exporting(FakeS3(), answer=lambda message: {"batchItemFailures": [{"itemIdentifier": message}]}),
        watcher,
        Updates(),
        timeout=45,
        clock=clock,
        on_failures=failures.append,
    )

    assert outcome == "timeout"
    assert failures == [1]
    assert queue.deleted == []  # a failed record returns to the queue
    assert queue.waits == [20, 20, 20, 5]  # the last poll only as long as the time left


def test_peeking_the_dead_letter_queue_repeats_until_a_round_brings_nothing_new() -> None:
    clock = Clock()
    sqs = FakeDeadLetters(clock)
    for n in range(3):
        sqs.add({"source": "eu", "kind": "account", "date": f"2026-11-2{n}", "attempt": 1, "reason": "scheduled"})

    letters = peek_dead_letters(sqs, "dlq", default_source="default", max_receive_count=3)

    assert [(str(letter.job), letter.why) for letter in letters] == [
        (f"eu account 2026-11-2{n}", "failed 3 deliveries") for n in range(3)
    ]
    assert len(sqs.receives) == 2  # the second round brought nothing new
    assert sqs.receives[0] | {"QueueUrl": "dlq"} == {
        "QueueUrl": "dlq",
        "MaxNumberOfMessages": 10,
        "VisibilityTimeout": 0,
        "WaitTimeSeconds": 0,
        "AttributeNames": ["All"],
    }


def test_a_dead_letter_that_is_not_a_job_keeps_its_body_and_names_no_job() -> None:
    letter = dead_letter(
        {"MessageId": "m", "Body": "not json", "Attributes": {"ApproximateReceiveCount": "4"}},
        default_source="default",
        max_receive_count=None,
    )

    assert (letter.job, letter.body, letter.given_up) == (None, "not json", False)
    assert letter.why == "failed its deliveries (received 4 times, peeks included)"
