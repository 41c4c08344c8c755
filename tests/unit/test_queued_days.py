"""The queued-job markers: what a claim and a release ask of DynamoDB, and what they make of its
answers (conditions are evaluated for real in tests/integration/test_queued_days.py)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from seq_export.config import DEFAULT_MAX_NOT_READY_ATTEMPTS, DEFAULT_NOT_READY_DELAY_SECONDS
from seq_export.errors import StorageError
from seq_export.job_message import JobId
from seq_export.job_queue import JobQueue
from seq_export.jobs import IDEMPOTENCY_KEY_PREFIX
from seq_export.not_ready import NotReadyPolicy
from seq_export.queued_days import QUEUE_SLACK_SECONDS, QueuedDays, marker_id, marker_lifetime
from tests.support import START, client_error

JOB = JobId("eu", "account", "2026-11-22")
LIFETIME = 99_000


class FakeMarkers:
    """DynamoDB as the markers use it: records PutItem and DeleteItem, answers with ``error``."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def put_item(self, **call: Any) -> dict[str, Any]:
        return self._answer("put_item", call)

    def delete_item(self, **call: Any) -> dict[str, Any]:
        return self._answer("delete_item", call)

    def _answer(self, operation: str, call: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, call))
        if self.error is not None:
            raise self.error
        return {}


def markers(fake: FakeMarkers) -> QueuedDays:
    return QueuedDays(cast(Any, fake), "idempotency", lifetime_seconds=LIFETIME, clock=lambda: START)


def test_a_claim_puts_the_marker_with_its_run_and_expiry_unless_another_live_run_holds_it() -> None:
    fake = FakeMarkers()

    holder = markers(fake).claim(JOB, "run-1")

    assert holder is None
    [(operation, call)] = fake.calls
    assert operation == "put_item"
    assert call["Item"] == {
        "id": {"S": "seq-export#queued-job#eu#account#2026-11-22"},
        "run": {"S": "run-1"},
        "expiration": {"N": str(int(START) + LIFETIME)},
    }
    assert call["ConditionExpression"] == "attribute_not_exists(id) OR expiration < :now OR #run = :run"
    assert call["ExpressionAttributeValues"] == {":now": {"N": str(int(START))}, ":run": {"S": "run-1"}}
    assert call["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"


def test_a_refused_claim_answers_with_the_run_that_holds_the_job() -> None:
    held = {"id": {"S": marker_id(JOB)}, "run": {"S": "daily-2026-11-22"}, "expiration": {"N": "1"}}
    fake = FakeMarkers(client_error("ConditionalCheckFailedException", "PutItem", Item=held))

    assert markers(fake).claim(JOB, "run-2") == "daily-2026-11-22"


def test_a_refused_claim_without_the_old_item_names_an_unknown_holder() -> None:
    fake = FakeMarkers(client_error("ConditionalCheckFailedException", "PutItem"))

    assert markers(fake).claim(JOB, "run-2") == "unknown"


def test_a_forced_claim_takes_the_marker_over_unconditionally() -> None:
    fake = FakeMarkers()

    markers(fake).claim(JOB, "forced", force=True)

    [(_, call)] = fake.calls
    assert "ConditionExpression" not in call
    assert call["Item"]["run"] == {"S": "forced"}


def test_a_claim_dynamodb_fails_is_a_storage_error_naming_the_table_and_the_job() -> None:
    fake = FakeMarkers(client_error("ProvisionedThroughputExceededException", "PutItem"))

    with pytest.raises(StorageError, match=r"PutItem on idempotency marking eu account 2026-11-22 queued failed"):
        markers(fake).claim(JOB, "run-1")


def test_a_release_deletes_the_marker_only_while_its_run_holds_it() -> None:
    fake = FakeMarkers()

    markers(fake).release(JOB, "run-1")

    [(operation, call)] = fake.calls
    assert operation == "delete_item"
    assert call["Key"] == {"id": {"S": marker_id(JOB)}}
    assert call["ConditionExpression"] == "#run = :run"
    assert call["ExpressionAttributeValues"] == {":run": {"S": "run-1"}}


@pytest.mark.parametrize(
    "error",
    [
        client_error("ConditionalCheckFailedException", "DeleteItem"),
        client_error("AccessDeniedException", "DeleteItem"),
    ],
    ids=["held-by-another-run", "refused"],
)
def test_a_release_that_cannot_delete_never_fails_the_job_that_ended(error: Exception) -> None:
    fake = FakeMarkers(error)

    markers(fake).release(JOB, "run-1")  # no error: the day is done, the marker expires

    assert len(fake.calls) == 1


def test_a_job_of_no_run_holds_no_marker_to_release() -> None:
    fake = FakeMarkers()

    markers(fake).release(JOB, None)

    assert fake.calls == []


def test_marker_ids_never_meet_powertools_records() -> None:
    assert not marker_id(JOB).startswith(IDEMPOTENCY_KEY_PREFIX)
    assert marker_id(JOB) != marker_id(JobId("eu", "subusers", "2026-11-22"))


def test_a_marker_outlives_the_longest_202_chain_by_a_day() -> None:
    queue = JobQueue(cast(Any, None), "retry", "dlq", first_delay=DEFAULT_NOT_READY_DELAY_SECONDS)
    span = NotReadyPolicy(queue, max_attempts=DEFAULT_MAX_NOT_READY_ATTEMPTS).longest_wait_seconds()

    assert span == 300 + 600 + 13 * 900  # 3.5 hours of re-schedules by default
    assert marker_lifetime(span) == span + QUEUE_SLACK_SECONDS == 99_000  # 27.5 hours
