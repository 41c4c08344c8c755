"""SendGrid misbehaving over HTTP: every failure is bounded, clear, and publishes nothing partial."""

from __future__ import annotations

import io
import json

import pytest

from local.seq_simulator import Fault, Scenario
from seq_export.errors import (
    InvalidEventError,
    InvalidRecordError,
    SeqAuthError,
    SeqBadRequestError,
    SeqNotFoundError,
    SeqProtocolError,
    SeqUnavailableError,
)
from tests.support import Stack, days_ago

pytestmark = pytest.mark.integration


def statuses(stack: Stack) -> list[int]:
    return [r["status"] for r in stack.simulator.requests]


def test_a_date_outside_the_90_day_window_is_refused_before_reaching_sendgrid(stack: Stack) -> None:
    day = days_ago(120)
    with pytest.raises(InvalidEventError, match=f"direct date event 'date' {day} is older than SendGrid's 90-day"):
        stack.invoke({"date": day})

    assert statuses(stack) == []
    assert stack.object_keys() == []
    assert dict(stack.metrics) == {"InvalidEvents": 1}


def test_a_day_sendgrid_refuses_fails_fast_quoting_sendgrid(stack: Stack) -> None:
    refusal = {"errors": [{"field": "date", "message": 'failed to parse request: "date" cannot be more than 90 days'}]}
    stack.simulator.reset(Scenario(subusers=10, faults=[Fault(page=1, status=400, body=json.dumps(refusal))]))

    with pytest.raises(SeqBadRequestError) as caught:
        stack.invoke({"date": days_ago(90)})

    assert 'date: failed to parse request: "date" cannot be more than 90 days' in str(caught.value)
    assert "(400)" in str(caught.value)
    assert statuses(stack) == [400]
    assert stack.object_keys() == []
    assert stack.queue_counts() == {"visible": 0, "delayed": 0}
    assert dict(stack.metrics) == {"ExportFailed": 1}


def test_a_wrong_api_key_fails_fast_with_a_credentials_message(stack: Stack) -> None:
    stack.session.client("secretsmanager").put_secret_value(
        SecretId=stack.resources.secret_id, SecretString="SG.not-the-right-key"
    )

    with pytest.raises(SeqAuthError, match=r"401 Unauthorized.*API key in Secrets Manager"):
        stack.invoke({"date": days_ago(1)})

    assert statuses(stack) == [401]
    assert stack.object_keys() == []


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [(403, SeqAuthError, "403 Forbidden"), (404, SeqNotFoundError, "check the source.s base_url")],
)
def test_403_and_404_fail_fast_with_what_to_check(stack: Stack, status: int, error: type[Exception], text: str) -> None:
    stack.simulator.reset(Scenario(faults=[Fault(page=1, status=status)]))

    with pytest.raises(error, match=text):
        stack.invoke({"date": days_ago(1)})

    assert statuses(stack) == [status]


def test_429_waits_until_the_rate_limit_reset_then_completes(stack: Stack) -> None:
    day = days_ago(1)
    stack.simulator.reset(Scenario(subusers=2_500, faults=[Fault(page=2, status=429, times=2)]))

    summary = stack.invoke({"date": day})

    assert statuses(stack) == [200, 429, 429, 200, 200]
    assert len(stack.sleeps) == 2
    # X-RateLimit-Reset is now + 1 s (whole seconds), plus a 0.25 s margin for clock drift
    assert all(0.25 <= wait <= 1.25 + 0.01 for wait in stack.sleeps)
    assert summary["records"] == 2_500
    assert len({line["user_id"] for line in stack.lines(day)}) == 2_500


def test_429_without_rate_headers_backs_off_and_completes(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=1_500, faults=[Fault(page=2, status=429, rate_headers=False)]))

    summary = stack.invoke({"date": days_ago(1)})

    assert summary["records"] == 1_500
    assert len(stack.sleeps) == 1
    assert 0 < stack.sleeps[0] <= 20


def test_5xx_on_a_middle_page_is_retried_and_the_day_completes_exactly(stack: Stack) -> None:
    day = days_ago(1)
    faults = [Fault(page=2, status=500), Fault(page=2, status=502), Fault(page=2, status=503)]
    stack.simulator.reset(Scenario(subusers=2_500, faults=faults))

    summary = stack.invoke({"date": day})

    assert statuses(stack) == [200, 500, 502, 503, 200, 200]
    assert len(stack.sleeps) == 3
    lines = stack.lines(day)
    assert summary["records"] == len(lines) == 2_500
    assert [line["user_id"] for line in lines] == [str(100_001 + i) for i in range(2_500)]


def test_5xx_past_the_retry_bound_fails_the_day_and_publishes_nothing(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=2_500, faults=[Fault(page=2, status=502, times=50)]))

    with pytest.raises(SeqUnavailableError, match=r"page 2: SendGrid answered 502.*after 5 tries"):
        stack.invoke({"date": days_ago(1)})

    assert statuses(stack) == [200] + [502] * 5
    assert stack.object_keys() == []
    assert dict(stack.metrics) == {"ExportFailed": 1}  # the first page's records are not counted as exported


def test_a_cursor_that_does_not_advance_stops_the_run(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=5_000, faults=[Fault(page=2, kind="stuck_cursor")]))

    with pytest.raises(SeqProtocolError, match="cursor did not advance"):
        stack.invoke({"date": days_ago(1)})

    assert len(stack.simulator.requests) == 2  # stopped as soon as page 2 handed back used cursor
    assert stack.data_keys() == []
    (kept,) = stack.quarantined()
    assert json.loads(kept)["_metadata"]["next_params"]["after_key"] == "101000"


def test_a_page_repeating_users_stops_the_run(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=3_000, faults=[Fault(page=2, kind="repeat_users")]))

    with pytest.raises(SeqProtocolError, match="user_id 100001 was already returned"):
        stack.invoke({"date": days_ago(1)})

    assert stack.data_keys() == []
    (kept,) = stack.quarantined()
    assert json.loads(kept)["result"][0]["user_id"] == "100001"


def test_a_200_that_is_not_json_names_the_page(stack: Stack) -> None:
    stack.simulator.reset(Scenario(faults=[Fault(page=2, status=200, body="<html>oops</html>")]))

    with pytest.raises(SeqProtocolError, match=r"page 2: 200 answer is not valid JSON.*\[answer kept at seq/"):
        stack.invoke({"date": days_ago(1)})

    assert stack.data_keys() == []
    assert stack.quarantined() == [b"<html>oops</html>"]


def test_a_record_out_of_range_fails_the_day_naming_page_record_and_user(stack: Stack) -> None:
    day = days_ago(1)
    bad = {"result": [{"user_id": "777", "date": day, "score": 7}], "_metadata": {}}
    stack.simulator.reset(Scenario(faults=[Fault(page=2, status=200, body=json.dumps(bad))]))

    with pytest.raises(InvalidRecordError, match=r"page 2 record 1 \(user_id 777\): score must be within 1..5, got 7"):
        stack.invoke({"date": day})

    assert stack.data_keys() == []
    assert stack.quarantined() == [json.dumps(bad).encode()]
    assert dict(stack.metrics) == {"ExportFailed": 1}


def test_a_200_without_result_names_the_page_and_keeps_the_answer(stack: Stack, log_output: io.StringIO) -> None:
    stack.simulator.reset(Scenario(faults=[Fault(page=3, status=200, body='{"results": []}')]))

    with pytest.raises(SeqProtocolError, match="page 3: 'result' must be a list"):
        stack.invoke({"date": days_ago(1)})

    assert stack.data_keys() == []
    assert stack.quarantined() == [b'{"results": []}']
    kept = [json.loads(line) for line in log_output.getvalue().splitlines() if "Bad answer kept aside" in line]
    assert kept[0]["excerpt"] == '{"results": []}'


def test_a_failing_retry_record_is_reported_as_a_batch_item_failure(stack: Stack) -> None:
    stack.simulator.reset(Scenario(faults=[Fault(page=1, status=502, times=50)]))
    stack.sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=json.dumps({"date": days_ago(1)}))

    response = stack.deliver(wait_seconds=1)

    assert response is not None
    assert len(response["batchItemFailures"]) == 1
    assert stack.queue_counts()["visible"] + stack.queue_counts()["delayed"] == 0  # in flight, not deleted
    in_flight = stack.sqs.get_queue_attributes(
        QueueUrl=stack.resources.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]["ApproximateNumberOfMessagesNotVisible"]
    assert in_flight == "1"
    assert dict(stack.metrics) == {"ExportFailed": 1}


@pytest.mark.parametrize(
    "fault",
    [Fault(page=2, kind="reset"), Fault(page=2, kind="truncate"), Fault(page=3, kind="slow", delay=1.5)],
    ids=["connection-reset", "body-cut-off", "read-timeout"],
)
def test_network_faults_on_a_page_are_retried_and_the_day_completes_exactly(stack: Stack, fault: Fault) -> None:
    day = days_ago(1)
    stack.configure(SEQ_READ_TIMEOUT_SECONDS="1")
    stack.simulator.reset(Scenario(subusers=2_500, faults=[fault]))

    summary = stack.invoke({"date": day})

    lines = stack.lines(day)
    assert summary["records"] == len(lines) == 2_500
    assert [line["user_id"] for line in lines] == [str(100_001 + i) for i in range(2_500)]
    assert len(stack.sleeps) == 1  # one backoff, then the page came through
