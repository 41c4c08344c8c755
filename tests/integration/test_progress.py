"""What the function tells a caller in its process (``seq_export.progress``), the seam through which
`make run` and `--local` follow pages and queued jobs instead of reading log lines: each page with
the day's records so far, and what became of each queued job by its SQS message."""

from __future__ import annotations

import pytest

from local.seq_simulator import Fault, Scenario
from seq_export import wiring
from seq_export.errors import InvalidEventError, SeqExportError
from seq_export.progress import JobEnded, PageFetched
from tests.support import Stack, days_ago, job, run_to_completion

pytestmark = pytest.mark.integration


def send(stack: Stack, body: str) -> str:
    """Queue ``body``; its message id."""
    return str(stack.sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=body)["MessageId"])


def test_each_page_of_a_day_tells_its_number_and_the_records_so_far(stack: Stack) -> None:
    day = days_ago(1)
    pages: list[PageFetched] = []

    with wiring.dependencies().progress.followed(on_page=pages.append):
        summary = stack.invoke({"date": day})

    assert summary["status"] == "exported"
    assert [(page.job, page.page, page.records) for page in pages] == [
        (job(day).id, 1, 1_000),
        (job(day).id, 2, 2_000),
        (job(day).id, 3, 2_500),
    ]


def test_a_continued_day_goes_on_counting_pages_and_records_from_its_checkpoint(stack: Stack) -> None:
    day = days_ago(1)
    pages: list[PageFetched] = []

    with wiring.dependencies().progress.followed(on_page=pages.append):
        first, continuations = run_to_completion(stack, day, pages=1)

    assert (first["status"], len(continuations)) == ("continued", 2)  # three invocations
    assert [(page.page, page.records) for page in pages] == [(1, 1_000), (2, 2_000), (3, 2_500)]


def test_each_queued_job_tells_what_became_of_it_by_its_message(stack: Stack) -> None:
    day = days_ago(1)
    exported = send(stack, job(day).to_json())
    refused = send(stack, job(days_ago(0)).to_json())  # today: not a finished day
    ended: list[JobEnded] = []

    with wiring.dependencies().progress.followed(on_job=ended.append):
        while stack.deliver(wait_seconds=1) is not None:
            continue

    by_message = {event.message_id: event for event in ended}
    assert by_message.keys() == {exported, refused}
    result = by_message[exported].result
    assert result is not None
    assert by_message[exported].summary() == result.summary()
    assert (result.status, result.date, result.counts.records) == ("exported", day, 2_500)
    assert by_message[refused].refused
    assert isinstance(by_message[refused].error, InvalidEventError)
    assert by_message[refused].summary() == {
        "status": "invalid",
        "error": "InvalidEventError",
        "reason": str(by_message[refused].error),
    }
    assert f"queued job 'date' {days_ago(0)} is not a finished UTC day" in str(by_message[refused].error)


def test_a_job_that_fails_tells_its_error_and_a_failed_status(stack: Stack) -> None:
    stack.simulator.reset(Scenario(faults=[Fault(page=1, status=502, times=50)]))
    message = send(stack, job(days_ago(1)).to_json())
    ended: list[JobEnded] = []

    with wiring.dependencies().progress.followed(on_job=ended.append):
        response = stack.deliver(wait_seconds=1)

    assert response is not None
    assert len(response["batchItemFailures"]) == 1
    (failed,) = ended
    assert (failed.message_id, failed.result, failed.refused) == (message, None, False)
    assert isinstance(failed.error, SeqExportError)
    assert failed.summary() == {"status": "failed", "error": type(failed.error).__name__, "reason": str(failed.error)}


def test_a_duplicate_delivery_answered_from_the_idempotency_record_tells_nothing(stack: Stack) -> None:
    day = days_ago(1)
    message = send(stack, job(day).to_json())
    received = stack.sqs.receive_message(QueueUrl=stack.resources.queue_url, WaitTimeSeconds=1)["Messages"]
    event = stack.queue.event_for(received)
    ended: list[JobEnded] = []

    with wiring.dependencies().progress.followed(on_job=ended.append):
        first = stack.invoke(event)
        told_first = list(ended)
        second = stack.invoke(event)  # the same message again

    assert first == second == {"batchItemFailures": []}
    assert [(event.message_id, event.summary()["status"]) for event in told_first] == [(message, "exported")]
    assert ended == told_first


def test_following_ends_with_the_block_and_restores_who_followed_before(stack: Stack) -> None:
    outer: list[PageFetched] = []
    inner: list[PageFetched] = []
    progress = wiring.dependencies().progress

    with progress.followed(on_page=outer.append):  # older days first: none waits for a newer day's lease
        with progress.followed(on_page=inner.append):
            stack.invoke({"date": days_ago(4)})
        stack.invoke({"date": days_ago(3)})
    stack.invoke({"date": days_ago(2)})

    assert {page.job.date for page in inner} == {days_ago(4)}
    assert {page.job.date for page in outer} == {days_ago(3)}
    assert len(inner) == len(outer) == 3  # three pages each; none told once nobody follows
