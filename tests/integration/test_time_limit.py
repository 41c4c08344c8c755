"""A day longer than one Lambda invocation: checkpoint, continue through the queue, one whole object."""

from __future__ import annotations

import io
import json

import pytest

from local.seq_simulator import Scenario, expected_records
from seq_export.layout import DEFAULT_SOURCE, staging_key
from tests.support import Stack, days_ago, invoke_short, run_to_completion
from tests.support.builders import day_metrics

pytestmark = pytest.mark.integration


def test_running_short_of_time_continues_page_by_page_into_one_whole_object(
    stack: Stack, log_output: io.StringIO
) -> None:
    day = days_ago(1)
    stack.simulator.reset(Scenario(subusers=2_500))

    first, continuations = run_to_completion(stack, day, pages=1)

    assert first == first | {
        "status": "continued",
        "source": DEFAULT_SOURCE,
        "date": day,
        "pages": 1,
        "records": 1_000,
        "s3_key": None,
    }
    assert [(b["source"], b["kind"], b["date"]) for b in continuations] == [(DEFAULT_SOURCE, "subusers", day)] * 2
    assert [b["checkpoint"]["next_page"] for b in continuations] == [2, 3]
    assert [b["checkpoint"]["after_key"] for b in continuations] == ["101000", "102000"]
    assert {b["reason"] for b in continuations} == {"continue"}
    lines = stack.lines(day)
    assert [line["user_id"] for line in lines] == [
        r["user_id"] for r in expected_records(day, stack.simulator.scenario)
    ]
    assert len({line["exported_at"] for line in lines}) == 1
    assert stack.data_keys() == [stack.key(day)]  # staged tails were cleaned up
    assert [r["params"].get("after_key") for r in stack.simulator.requests] == [None, "101000", "102000"]
    done = [json.loads(line) for line in log_output.getvalue().splitlines() if '"Day exported"' in line]
    assert done[-1]["records"] == 2_500
    assert done[-1]["pages"] == 3
    exported = day_metrics(
        records=2_500, pages=3, ineligible=2_500 // 7, ContinuedAfterTimeLimit=len(continuations)
    )  # one per continuation; the day's counts once, from its last invocation
    assert dict(stack.metrics) == exported
    assert dict(stack.source_metrics(DEFAULT_SOURCE)) == {**exported, **stack.band_counts(day)}


def test_the_object_is_invisible_until_the_last_invocation_completes_it(stack: Stack) -> None:
    day = days_ago(1)
    stack.simulator.reset(Scenario(subusers=2_500))

    invoke_short(stack, {"date": day}, pages=2)

    assert stack.data_keys() == []
    (staged,) = stack.object_keys()
    assert staged.startswith(staging_key(stack.settings.scores_prefix, DEFAULT_SOURCE, day, ""))
    assert staged.startswith("seq/subuser_scores/_staging/")
    assert stack.queue_counts() == {"visible": 1, "delayed": 0}
    assert dict(stack.metrics) == {"ContinuedAfterTimeLimit": 1}  # no export counted before the day is whole


@pytest.mark.slow
def test_a_day_larger_than_a_part_continues_through_a_multipart_upload(stack: Stack) -> None:
    day = days_ago(1)
    stack.simulator.reset(Scenario(subusers=30_000))

    first, continuations = run_to_completion(stack, day, pages=24)  # about 5.5 MiB: one part

    assert first["status"] == "continued"
    assert len(continuations) == 1
    checkpoint = continuations[0]["checkpoint"]
    assert checkpoint["upload_id"]
    assert [number for number, _ in checkpoint["parts"]] == [1]
    assert checkpoint["tail_key"] is None
    lines = stack.lines(day)
    assert len(lines) == 30_000
    assert [line["user_id"] for line in lines] == [str(100_001 + i) for i in range(30_000)]
    assert (stack.metrics["ContinuedAfterTimeLimit"], stack.metrics["RecordsExported"]) == (1, 30_000)
