"""S3, DynamoDB and SQS failing part-way, injected over HTTP in front of moto.

The documented outcome: the day fails with a StorageError naming the service and the
operation, nothing is published to S3, the DynamoDB rows already written are true scores of
that day, and a re-run after the fault converges to the complete day.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

import pytest

from local.aws_fault_proxy import AwsFault, AwsFaultProxy
from local.seq_simulator import Scenario, expected_records
from seq_export.errors import StorageError
from seq_export.layout import DEFAULT_SOURCE
from tests.support import Stack, days_ago
from tests.support.builders import day_metrics

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(stack: Stack, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsFaultProxy]:
    proxy = AwsFaultProxy(moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.start())
    stack.configure()  # the function's clients now go through the proxy
    yield proxy
    proxy.stop()


def assert_complete(stack: Stack, day: str) -> None:
    truth = expected_records(day, stack.simulator.scenario)
    lines = stack.lines(day)
    assert [line["user_id"] for line in lines] == [r["user_id"] for r in truth]
    scored = [r for r in truth if "score" in r]
    for record in (scored[0], scored[-1]):
        item = stack.item(record["user_id"])
        assert item is not None
        assert (item["source"], item["date"], item["score"]) == (DEFAULT_SOURCE, day, Decimal(record["score"]))


def test_dynamodb_throttling_is_absorbed_by_botocore_retries(stack: Stack, proxy: AwsFaultProxy) -> None:
    day = days_ago(1)
    proxy.faults = [AwsFault("DynamoDB.BatchWriteItem", "ThrottlingException", after=30)]

    summary = stack.invoke({"date": day})

    assert proxy.faults[0].fired == 1
    assert summary["records"] == 2_500
    assert_complete(stack, day)


def test_dynamodb_denied_part_way_publishes_nothing_and_a_rerun_converges(stack: Stack, proxy: AwsFaultProxy) -> None:
    day = days_ago(1)
    proxy.faults = [AwsFault("DynamoDB.BatchWriteItem", "AccessDeniedException", after=45, times=1)]

    with pytest.raises(StorageError, match="BatchWriteItem on seq-export-latest-scores failed: AccessDeniedException"):
        stack.invoke({"date": day})

    assert stack.data_keys() == []
    first_page_user = expected_records(day, stack.simulator.scenario)[0]["user_id"]
    assert stack.item(first_page_user) is not None  # rows already written are true scores of the day
    assert dict(stack.metrics) == {"ExportFailed": 1}

    summary = stack.invoke({"date": day})

    assert_complete(stack, day)
    exported = day_metrics(
        records=2_500, pages=3, ineligible=2_500 // 7, written=summary["latest_written"], ExportFailed=1
    )
    assert dict(stack.metrics) == exported
    assert dict(stack.source_metrics(DEFAULT_SOURCE)) == {**exported, **stack.band_counts(day)}


def test_a_missing_table_fails_the_day_naming_it(stack: Stack, proxy: AwsFaultProxy) -> None:
    stack.session.client("dynamodb").delete_table(TableName=stack.resources.table)

    with pytest.raises(StorageError, match=r"seq-export-latest-scores.*ResourceNotFoundException"):
        stack.invoke({"date": days_ago(1)})

    assert stack.data_keys() == []


def test_s3_denied_at_publish_leaves_no_object_and_a_rerun_converges(stack: Stack, proxy: AwsFaultProxy) -> None:
    day = days_ago(1)
    proxy.faults = [AwsFault("S3.PutObject", "AccessDenied", status=403)]

    with pytest.raises(StorageError, match=rf"S3 PutObject s3://.*/{re.escape(stack.key(day))} failed: AccessDenied"):
        stack.invoke({"date": day})

    assert stack.data_keys() == []
    stack.invoke({"date": day})
    assert_complete(stack, day)
    assert stack.data_keys() == [stack.key(day)]


def test_s3_slow_down_is_absorbed_by_botocore_retries(stack: Stack, proxy: AwsFaultProxy) -> None:
    day = days_ago(1)
    proxy.faults = [AwsFault("S3.PutObject", "SlowDown", status=503)]

    stack.invoke({"date": day})

    assert proxy.faults[0].fired == 1
    assert_complete(stack, day)


def test_sqs_refusing_the_retry_message_fails_loudly(stack: Stack, proxy: AwsFaultProxy) -> None:
    stack.simulator.reset(Scenario(subusers=10, not_ready=1))
    proxy.faults = [AwsFault("SQS.SendMessage", "AccessDenied", status=400)]

    with pytest.raises(StorageError, match=r"SQS SendMessage to .* failed: AccessDenied"):
        stack.invoke({"date": days_ago(1)})

    assert stack.queue_counts() == {"visible": 0, "delayed": 0}
    assert dict(stack.metrics) == {"ExportFailed": 1}  # not counted as rescheduled
