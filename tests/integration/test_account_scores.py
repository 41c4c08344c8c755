"""The parent account's own scores: exported beside the subusers', with the same 202 and retry rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.seq_simulator import Fault, Scenario, account_record
from seq_export import record_codec
from seq_export.errors import ConfigError, SeqAuthError
from seq_export.layout import DEFAULT_SOURCE, day_key
from tests.support import Stack, days_ago
from tests.support.builders import day_metrics

pytestmark = pytest.mark.integration


def account_key(stack: Stack, day: str) -> str:
    return day_key(stack.settings.account_scores_prefix, DEFAULT_SOURCE, day)


def account_lines(stack: Stack, day: str) -> list[dict[str, object]]:
    key = account_key(stack, day)
    body = stack.session.client("s3").get_object(Bucket=stack.resources.bucket, Key=key)["Body"].read()
    return record_codec.decode(body)


def test_a_direct_account_run_writes_the_accounts_day(stack: Stack) -> None:
    day = days_ago(3)
    event = json.loads((Path(__file__).parents[2] / "events" / "direct-account.json").read_text())

    summary = stack.invoke(event | {"date": day})

    assert summary == summary | {"status": "exported", "source": DEFAULT_SOURCE, "kind": "account", "records": 1}
    assert summary["s3_key"] == account_key(stack, day)
    assert summary["s3_key"].startswith("seq/account_scores/")  # the account dataset, beside the subusers'
    truth = account_record(day, stack.simulator.scenario)
    (line,) = account_lines(stack, day)
    assert next(iter(line)) == "source"
    assert line["source"] == DEFAULT_SOURCE
    assert {k: line[k] for k in ("date", "user_id", "username", "score", "metrics")} == truth
    request = stack.simulator.requests[-1]
    assert (request["path"], request["params"]) == ("/v3/engagementquality/scores", {"from": day, "to": day})
    assert stack.item("1") is None  # the account's score is not a subuser's latest score
    assert dict(stack.metrics) == {"AccountScoresExported": 1}  # no subuser counts
    assert dict(stack.source_metrics(DEFAULT_SOURCE)) == {"AccountScoresExported": 1}


def test_the_daily_run_queues_the_accounts_day_on_its_own(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=50))
    day = days_ago(1)

    summary = stack.invoke({"scheduled_time": f"{days_ago(0)}T06:00:00Z"})
    assert summary["records"] == 50
    assert stack.deliver(wait_seconds=1) == {"batchItemFailures": []}

    assert account_lines(stack, day)[0]["date"] == day
    exported = day_metrics(records=50, pages=1, ineligible=50 // 7, AccountScoresExported=1)
    assert dict(stack.metrics) == exported  # the fleet metrics are the source's alone
    assert dict(stack.source_metrics(DEFAULT_SOURCE)) == {
        **exported,
        **stack.band_counts(day),  # the subusers' day only
    }


def test_202_for_the_account_re_schedules_an_account_message(stack: Stack) -> None:
    day = days_ago(1)
    stack.simulator.reset(Scenario(account_not_ready=1))

    first = stack.invoke({"date": day, "kind": "account"})
    response = stack.deliver(wait_seconds=10)

    assert first == first | {"status": "not_ready", "source": DEFAULT_SOURCE, "kind": "account", "next_attempt": 2}
    assert response == {"batchItemFailures": []}
    assert len(account_lines(stack, day)) == 1
    assert dict(stack.metrics) == {"NotReadyRescheduled": 1, "AccountScoresExported": 1}


def test_an_account_failure_does_not_hold_up_the_subusers_day(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=50, faults=[Fault(page=0, status=403, times=10)]))

    summary = stack.invoke({"scheduled_time": f"{days_ago(0)}T06:00:00Z"})
    response = stack.deliver(wait_seconds=1)

    assert summary["status"] == "exported"
    assert stack.data_keys() == [stack.key(days_ago(1))]
    assert response is not None
    assert len(response["batchItemFailures"]) == 1  # the account message fails on its own
    with pytest.raises(SeqAuthError, match="403"):
        stack.invoke({"date": days_ago(1), "kind": "account"})
    assert stack.metrics["ExportFailed"] == 2  # the queued account job, then the direct run
    assert stack.metrics["RecordsExported"] == 50
    assert "AccountScoresExported" not in stack.metrics


def test_account_export_can_be_switched_off(stack: Stack) -> None:
    stack.configure(EXPORT_ACCOUNT_SCORES="false")
    stack.simulator.reset(Scenario(subusers=5))

    stack.invoke({"scheduled_time": f"{days_ago(0)}T06:00:00Z"})

    assert stack.queue_counts() == {"visible": 0, "delayed": 0}
    with pytest.raises(
        ConfigError, match=r"^source default does not export its account scores \(account_scores is off\)$"
    ):
        stack.invoke({"date": days_ago(1), "kind": "account"})
    assert stack.metrics["ExportFailed"] == 1
    assert "AccountScoresExported" not in stack.metrics
