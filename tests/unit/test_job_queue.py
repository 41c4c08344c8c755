"""JobQueue against a fake SQS client that records every call."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import EndpointConnectionError

from seq_export.config import SQS_MAX_DELAY_SECONDS
from seq_export.errors import StorageError
from seq_export.job_message import Job
from seq_export.job_queue import SEND_BATCH_LIMIT, JobQueue
from seq_export.layout import DEFAULT_SOURCE
from tests.support import FakeSQS, all_successful, client_error, job, jobs

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/seq-export-retry"
DLQ_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/seq-export-dlq"


def make_scheduler(fake: FakeSQS, *, first_delay: int = 60) -> JobQueue:
    return JobQueue(cast("SQSClient", fake), QUEUE_URL, DLQ_URL, first_delay=first_delay)


# -- delay_for -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "delay"),
    [(0, 0), (1, 0), (2, 60), (3, 120), (4, 240), (5, 480), (6, 900), (7, 900), (10_000, 900)],
)
def test_delay_is_zero_first_then_first_delay_doubling_up_to_900(attempt: int, delay: int) -> None:
    assert make_scheduler(FakeSQS(), first_delay=60).delay_for(attempt) == delay


def test_delay_cap_is_sqs_maximum() -> None:
    assert SQS_MAX_DELAY_SECONDS == 900


@pytest.mark.parametrize(("first_delay", "expected"), [(1, [0, 1, 2, 4, 8]), (300, [0, 300, 600, 900, 900])])
def test_delay_starts_from_the_configured_first_delay(first_delay: int, expected: list[int]) -> None:
    scheduler = make_scheduler(FakeSQS(), first_delay=first_delay)

    assert [scheduler.delay_for(a) for a in range(1, 6)] == expected


def test_a_first_delay_above_the_sqs_maximum_is_capped_already_at_attempt_two() -> None:
    assert make_scheduler(FakeSQS(), first_delay=1200).delay_for(2) == 900


def test_delay_is_an_int_as_sqs_requires() -> None:
    assert type(make_scheduler(FakeSQS(), first_delay=60).delay_for(30)) is int


# -- schedule and give_up --------------------------------------------------------------------


def test_schedule_sends_the_message_to_the_retry_queue_with_its_delay() -> None:
    fake = FakeSQS()
    message = job("2024-05-01", attempt=3)

    delay = make_scheduler(fake, first_delay=60).schedule(message)

    assert delay == 120
    assert fake.sent == [{"QueueUrl": QUEUE_URL, "MessageBody": message.to_json(), "DelaySeconds": 120}]
    assert Job.from_json(default_source=DEFAULT_SOURCE, body=fake.sent[0]["MessageBody"]) == message
    assert fake.batches == []


def test_schedule_body_is_the_retry_message_json() -> None:
    fake = FakeSQS()

    make_scheduler(fake).schedule(job("2024-05-01", attempt=2, reason="not_ready"))

    assert json.loads(fake.sent[0]["MessageBody"]) == {
        "source": "default",
        "kind": "subusers",
        "date": "2024-05-01",
        "attempt": 2,
        "reason": "not_ready",
    }


def test_give_up_sends_to_the_dead_letter_queue_without_delay() -> None:
    fake = FakeSQS()
    message = job("2024-05-01", attempt=9, reason="not_ready")

    make_scheduler(fake, first_delay=60).give_up(message)

    assert fake.sent == [{"QueueUrl": DLQ_URL, "MessageBody": message.to_json(), "DelaySeconds": 0}]


@pytest.mark.parametrize("operation", ["schedule", "give_up"])
def test_send_client_error_becomes_storage_error_naming_queue_and_day(operation: str) -> None:
    fake = FakeSQS(error=client_error("AccessDenied", "SendMessage"))
    scheduler = make_scheduler(fake)
    message = job("2024-05-01", attempt=2)

    with pytest.raises(StorageError) as info:
        getattr(scheduler, operation)(message)

    text = str(info.value)
    assert "2024-05-01" in text
    assert "AccessDenied" in text
    assert (DLQ_URL if operation == "give_up" else QUEUE_URL) in text


def test_send_connection_failure_becomes_storage_error() -> None:
    fake = FakeSQS(error=EndpointConnectionError(endpoint_url=QUEUE_URL))

    with pytest.raises(StorageError, match="SendMessage"):
        make_scheduler(fake).schedule(job("2024-05-01", attempt=2))


# -- enqueue ---------------------------------------------------------------------------------


def test_enqueue_sends_batches_of_at_most_ten() -> None:
    fake = FakeSQS()
    messages = jobs(23)

    make_scheduler(fake).enqueue(messages)

    assert SEND_BATCH_LIMIT == 10
    assert [len(b["Entries"]) for b in fake.batches] == [10, 10, 3]
    assert all(b["QueueUrl"] == QUEUE_URL for b in fake.batches)
    sent = [
        Job.from_json(default_source=DEFAULT_SOURCE, body=e["MessageBody"]) for b in fake.batches for e in b["Entries"]
    ]
    assert sent == messages
    for batch in fake.batches:
        ids = [e["Id"] for e in batch["Entries"]]
        assert len(set(ids)) == len(ids)  # SQS refuses a batch with repeated ids
        assert all("DelaySeconds" not in e for e in batch["Entries"])
    assert fake.sent == []


@pytest.mark.parametrize(("count", "sizes"), [(0, []), (1, [1]), (10, [10]), (11, [10, 1]), (20, [10, 10])])
def test_enqueue_batch_sizes(count: int, sizes: list[int]) -> None:
    fake = FakeSQS()

    make_scheduler(fake).enqueue(jobs(count))

    assert [len(b["Entries"]) for b in fake.batches] == sizes


def test_enqueue_names_the_days_sqs_reported_as_failed() -> None:
    # Given SQS refuses entries 1 and 3 of the *second* batch (ids restart at 0 per batch)
    def answer(call: dict[str, Any]) -> dict[str, Any]:
        if len(fake.batches) != 2:
            return all_successful(call)
        return {
            "Successful": [{"Id": e["Id"], "MessageId": "m"} for e in call["Entries"] if e["Id"] not in {"1", "3"}],
            "Failed": [
                {"Id": i, "SenderFault": True, "Code": "InvalidParameterValue", "Message": "too big"}
                for i in ("1", "3")
            ],
        }

    fake = FakeSQS(batch=answer)
    messages = jobs(23)

    # When the backfill is enqueued
    with pytest.raises(StorageError) as info:
        make_scheduler(fake).enqueue(messages)

    # Then the error names days 12 and 14 (batch 2, ids 1 and 3), not days 2 and 4 of batch 1
    text = str(info.value)
    assert messages[11].date in text
    assert messages[13].date in text
    assert "too big" in text
    for index in (1, 3, 10, 12):
        assert messages[index].date not in text


def test_enqueue_failure_without_message_falls_back_to_the_code() -> None:
    def answer(call: dict[str, Any]) -> dict[str, Any]:
        return {"Failed": [{"Id": "0", "SenderFault": False, "Code": "InternalError"}]}

    fake = FakeSQS(batch=answer)

    with pytest.raises(StorageError, match=r"2024-03-01: InternalError"):
        make_scheduler(fake).enqueue(jobs(2))


def test_enqueue_client_error_becomes_storage_error_naming_the_queue() -> None:
    fake = FakeSQS(error=client_error("AccessDenied", "SendMessageBatch"))

    with pytest.raises(StorageError) as info:
        make_scheduler(fake).enqueue(jobs(3))

    assert QUEUE_URL in str(info.value)
    assert "SendMessageBatch" in str(info.value)
    assert "AccessDenied" in str(info.value)
