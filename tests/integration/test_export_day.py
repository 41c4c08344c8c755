"""A day's export over HTTP: simulator pages in, S3 object and DynamoDB items out."""

from __future__ import annotations

from decimal import Decimal

import pytest

from local.seq_simulator import Scenario, expected_records
from seq_export.layout import CONTROL_KEY, DEFAULT_SOURCE, ITEM_ATTRIBUTES
from seq_export.models import RECORD_KEYS
from tests.support import Stack, days_ago
from tests.support.builders import day_metrics

pytestmark = pytest.mark.integration


def test_three_pages_export_exactly_the_simulators_records_with_ineligible_as_nulls(stack: Stack) -> None:
    day = days_ago(1)
    stack.simulator.reset(Scenario(subusers=2_500, ineligible_every=7))

    summary = stack.invoke({"date": day})

    truth = expected_records(day, stack.simulator.scenario)
    lines = stack.lines(day)
    assert summary["status"] == "exported"
    assert summary["source"] == DEFAULT_SOURCE
    assert summary["pages"] == 3
    assert summary["records"] == len(truth) == len(lines) == 2_500
    assert summary["s3_key"] == stack.key(day, DEFAULT_SOURCE)
    assert summary["s3_key"].startswith("seq/subuser_scores/")
    assert RECORD_KEYS[0] == "source"
    assert [tuple(line) for line in lines] == [RECORD_KEYS] * len(lines)
    assert [line["user_id"] for line in lines] == [r["user_id"] for r in truth]
    for line, record in zip(lines, truth, strict=True):
        assert line["source"] == DEFAULT_SOURCE
        assert line["date"] == day
        assert line["username"] == record["username"]
        assert line["score"] == record.get("score")
        assert line["metrics"] == record.get("metrics")
    ineligible = [line for line in lines if line["score"] is None]
    assert len(ineligible) == summary["ineligible"] == 2_500 // 7
    assert all(line["metrics"] is None for line in ineligible)
    assert len({line["exported_at"] for line in lines}) == 1


def test_an_exported_day_emits_its_records_pages_ineligible_and_latest_writes_as_metrics(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=1_200, ineligible_every=4))

    summary = stack.invoke({"date": days_ago(1)})

    assert summary == summary | {"status": "exported", "records": 1_200, "pages": 2, "ineligible": 300}
    assert summary["latest_written"] == 1_200 - 300
    exported = day_metrics(
        records=summary["records"],
        pages=summary["pages"],
        ineligible=summary["ineligible"],
        written=summary["latest_written"],
    )
    assert dict(stack.metrics) == exported  # the stack-wide series: no fleet metrics
    assert dict(stack.source_metrics(DEFAULT_SOURCE)) == {**exported, **stack.band_counts(days_ago(1))}


def test_requests_follow_the_cursor_with_limit_and_a_versioned_user_agent(stack: Stack) -> None:
    day = days_ago(1)
    stack.invoke({"date": day})

    params = [r["params"] for r in stack.simulator.requests]
    assert [p.get("after_key") for p in params] == [None, "101000", "102000"]
    assert {p["limit"] for p in params} == {"1000"}
    assert {p["date"] for p in params} == {day}
    assert all(r["user_agent"].startswith("seq-export/") for r in stack.simulator.requests)


def test_latest_table_holds_every_scored_subuser_and_no_ineligible_one(stack: Stack) -> None:
    day = days_ago(1)
    stack.invoke({"date": day})

    truth = expected_records(day, stack.simulator.scenario)
    scored = [r for r in truth if "score" in r]
    first = scored[0]
    item = stack.item(first["user_id"])
    assert item is not None
    assert set(item) == {"user_id", *ITEM_ATTRIBUTES}
    assert item["source"] == DEFAULT_SOURCE
    assert item["date"] == day
    assert item["score"] == Decimal(first["score"])
    assert item["metrics"] == {k: Decimal(v) for k, v in first["metrics"].items()}
    assert item["username"] == first["username"]
    ineligible = next(r for r in truth if "score" not in r)
    assert stack.item(ineligible["user_id"]) is None
    scan = stack.session.client("dynamodb").get_paginator("scan")
    pages = scan.paginate(TableName=stack.resources.table, Select="COUNT", FilterExpression="attribute_exists(score)")
    assert sum(page["Count"] for page in pages) == len(scored)


def test_rerun_of_a_day_replaces_the_object_without_duplicates(stack: Stack) -> None:
    day = days_ago(2)
    first = stack.invoke({"date": day})
    first_lines = stack.lines(day)
    second = stack.invoke({"date": day})
    second_lines = stack.lines(day)

    assert first["s3_key"] == second["s3_key"]
    assert stack.data_keys() == [stack.key(day)]
    assert len(second_lines) == len(first_lines) == 2_500
    assert len({line["user_id"] for line in second_lines}) == 2_500
    strip = [{k: v for k, v in line.items() if k != "exported_at"} for line in second_lines]
    assert strip == [{k: v for k, v in line.items() if k != "exported_at"} for line in first_lines]


def test_an_older_day_never_overwrites_a_newer_score(stack: Stack) -> None:
    newer, older = days_ago(1), days_ago(5)
    stack.simulator.reset(Scenario(subusers=600))  # the older day takes one conditional write each
    first = stack.invoke({"date": newer})
    summary = stack.invoke({"date": older})

    truth = {r["user_id"]: r for r in expected_records(newer, stack.simulator.scenario)}
    user = next(uid for uid, r in truth.items() if "score" in r)
    item = stack.item(user)
    assert item is not None
    assert item["date"] == newer
    assert item["score"] == Decimal(truth[user]["score"])
    assert summary["latest_written"] == 0
    assert summary["latest_kept_newer"] == sum(1 for r in truth.values() if "score" in r)
    assert stack.metrics["LatestScoresWritten"] == first["latest_written"]  # kept-newer items are not written
    assert stack.lines(older)[0]["date"] == older  # the lake still gets the older day


def test_a_newer_day_replaces_an_older_score(stack: Stack) -> None:
    older, newer = days_ago(5), days_ago(1)
    stack.invoke({"date": older})
    stack.invoke({"date": newer})

    user = next(r for r in expected_records(newer, stack.simulator.scenario) if "score" in r)
    item = stack.item(user["user_id"])
    assert item is not None
    assert item["date"] == newer
    assert item["score"] == Decimal(user["score"])


def test_a_day_without_a_score_keeps_the_known_score(stack: Stack) -> None:
    scored_day, ineligible_day = days_ago(3), days_ago(2)
    stack.simulator.reset(Scenario(subusers=300, ineligible_every=0))
    stack.invoke({"date": scored_day})
    stack.simulator.reset(Scenario(subusers=300, ineligible_every=1))  # everyone ineligible
    summary = stack.invoke({"date": ineligible_day})

    assert summary["ineligible"] == 300
    assert all(line["score"] is None for line in stack.lines(ineligible_day))
    known = expected_records(scored_day, Scenario(subusers=300, ineligible_every=0))[0]
    item = stack.item(known["user_id"])
    assert item is not None
    assert item["date"] == scored_day
    assert item["score"] == Decimal(known["score"])


def test_an_empty_day_publishes_an_empty_object(stack: Stack) -> None:
    day = days_ago(1)
    stack.simulator.reset(Scenario(subusers=0))

    summary = stack.invoke({"date": day})

    assert summary == summary | {"status": "exported", "records": 0, "pages": 1}
    assert stack.lines(day) == []
    exported = day_metrics(records=0, pages=1, ineligible=0, written=0)
    assert dict(stack.metrics) == exported
    assert dict(stack.source_metrics(DEFAULT_SOURCE)) == {
        **exported,
        **stack.band_counts(day),  # all 0; no MeanScore without a scored subuser
    }
    assert stack.band_counts(day) == {f"SubusersWithScore{band}": 0 for band in range(1, 6)}
    assert not any("MeanScore" in document for document in stack.documents)


def test_last_page_with_a_null_cursor_ends_the_day(stack: Stack) -> None:
    day = days_ago(1)
    stack.simulator.reset(Scenario(subusers=2_000, last_cursor="null"))

    summary = stack.invoke({"date": day})

    assert summary["pages"] == 2
    assert len(stack.lines(day)) == 2_000


def test_the_control_item_is_not_a_subuser(stack: Stack) -> None:
    stack.invoke({"date": days_ago(1)})

    control = stack.item(CONTROL_KEY)
    assert control is not None
    assert "score" not in control
    assert control["newest_date"] == control["lease_date"] == days_ago(1)
    assert set(control) <= {"user_id", "newest_date", "lease_date", "lease_until", "lease_holders"}
    assert "lease_holders" not in control  # released after the run: no holder left


def test_fractional_values_arrive_unchanged_in_s3_and_dynamodb(stack: Stack) -> None:
    day = days_ago(1)
    stack.simulator.reset(Scenario(subusers=1_200, fractional=True))

    stack.invoke({"date": day})

    body = stack.session.client("s3").get_object(Bucket=stack.resources.bucket, Key=stack.key(day))["Body"].read()
    truth = [r for r in expected_records(day, stack.simulator.scenario) if "score" in r]
    scored_lines = [line for line in body.decode().splitlines() if '"score": null' not in line]
    for record, line in zip(truth[:50], scored_lines[:50], strict=True):
        assert f'"score": {record["score"]!r}' in line  # the API's own text, not re-rounded
        for name, value in record["metrics"].items():
            assert f'"{name}": {value!r}' in line
        item = stack.item(record["user_id"])
        assert item is not None
        assert item["score"] == Decimal(repr(record["score"]))
        assert item["metrics"] == {k: Decimal(repr(v)) for k, v in record["metrics"].items()}
    assert any(Decimal(repr(r["score"])) % 1 for r in truth)  # fractions were really sent
