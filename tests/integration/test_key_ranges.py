"""A day fetched in key ranges at once: used only where the cursor earned trust, checked page by
page, given up for the in-order fetch at any doubt, and always the same bytes as the in-order fetch."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from local.seq_simulator import Fault, Scenario, expected_records
from seq_export import wiring
from seq_export.config import Env, Settings
from seq_export.layout import CONTROL_KEY, split_points_key
from seq_export_cli.local_lambda import FakeLambdaContext
from tests.support import Stack, days_ago, run_to_completion

pytestmark = pytest.mark.integration

#: Pages of 100: the 2,500 subusers of a day are 25 pages, so a trusted day leaves 24 split points
#: (the last page's end is none: the last range stays open) and the next day is 25 ranges.
PAGE_SIZE = "100"
#: One ``exported_at`` for every export of a test, so two exports of a day can be compared byte for byte.
EXPORTED_AT = datetime(2026, 11, 30, 6, 0, 0, 123000, tzinfo=UTC)
SPLIT_DAY, DAY = days_ago(2), days_ago(1)


def configure(stack: Stack, *, ranged: bool = True, waits: bool = False) -> None:
    """The function redeployed with pages of 100, key ranges on or off, and a fixed clock; with
    ``waits``, it really waits when SendGrid says to (a rate limit's reset), else it only notes it."""
    stack.monkeypatch.setenv(Env.SEQ_PAGE_SIZE, PAGE_SIZE)
    stack.monkeypatch.setenv(Env.SEQ_RANGED_FETCH, str(ranged).lower())
    stack.settings = Settings.from_env()
    sleep = time.sleep if waits else stack.sleeps.append
    wiring.use_dependencies(wiring.build_dependencies(stack.settings, sleep=sleep, clock=lambda: EXPORTED_AT))


def export(stack: Stack, day: str, *, ranged: bool = True, waits: bool = False) -> dict[str, Any]:
    configure(stack, ranged=ranged, waits=waits)
    return stack.invoke({"date": day})


def day_object(stack: Stack, day: str) -> bytes:
    s3 = stack.session.client("s3")
    body: bytes = s3.get_object(Bucket=stack.resources.bucket, Key=stack.key(day))["Body"].read()
    return body


def split_points(stack: Stack) -> list[int]:
    key = split_points_key(stack.settings.scores_prefix, stack.settings.source_names[0])
    s3 = stack.session.client("s3")
    ids: list[int] = json.loads(s3.get_object(Bucket=stack.resources.bucket, Key=key)["Body"].read())["user_ids"]
    return ids


def latest_scores(stack: Stack) -> list[dict[str, Any]]:
    """The latest-score table's subuser items (not the exporter's own write-lease item)."""
    items = stack.session.client("dynamodb").scan(TableName=stack.resources.table)["Items"]
    return sorted(
        (item for item in items if item["user_id"]["S"] != CONTROL_KEY), key=lambda item: item["user_id"]["S"]
    )


def in_order_export(stack: Stack, day: str) -> bytes:
    """The same day exported again with ranges off: the bytes key ranges must match."""
    assert export(stack, day, ranged=False)["key_ranges"] == 0
    return day_object(stack, day)


def requests_of(stack: Stack, day: str) -> list[dict[str, Any]]:
    return [r for r in stack.simulator.requests if r["params"].get("date") == day]


def trusted_split_day(stack: Stack, scenario: Scenario) -> list[int]:
    """Export the day before in order with ``scenario``: it leaves its split points."""
    stack.simulator.reset(scenario)
    first = export(stack, SPLIT_DAY)
    assert (first["status"], first["key_ranges"]) == ("exported", 0)
    return split_points(stack)


# -- ranges are used where the cursor earned trust ------------------------------------------


def test_a_day_after_a_trusted_one_is_fetched_in_ranges_at_once_with_the_in_order_bytes(stack: Stack) -> None:
    scenario = Scenario(subusers=2_500, latency=0.05)
    splits = trusted_split_day(stack, scenario)

    ranged = export(stack, DAY)
    ranged_bytes, ranged_table = day_object(stack, DAY), latest_scores(stack)
    in_order_bytes = in_order_export(stack, DAY)

    assert splits == [100_001 + 100 * page - 1 for page in range(1, 25)]  # every page's end but the last
    assert (ranged["status"], ranged["key_ranges"], ranged["records"]) == ("exported", 25, 2_500)
    assert ranged["key_ranges_abandoned"] is None
    assert 1 < stack.simulator.max_in_flight_seen(DAY) <= 8
    assert ranged_bytes == in_order_bytes
    assert latest_scores(stack) == ranged_table
    assert not [key for key in stack.object_keys() if "/_staging/" in key]


def test_the_off_switch_follows_the_cursor_page_by_page(stack: Stack) -> None:
    trusted_split_day(stack, Scenario(subusers=2_500, latency=0.02))

    result = export(stack, DAY, ranged=False)

    assert (result["status"], result["key_ranges"], result["pages"]) == ("exported", 0, 25)
    assert max(r["in_flight"] for r in requests_of(stack, DAY)) == 1
    assert [r["params"].get("after_key") for r in requests_of(stack, DAY)][:2] == [None, "100100"]


@pytest.mark.parametrize(
    "scenario",
    [Scenario(subusers=2_500, cursor="offset"), Scenario(subusers=2_500, order="shuffled")],
    ids=["offset cursor", "shuffled ids"],
)
def test_a_cursor_that_is_not_the_last_ascending_user_id_keeps_every_day_in_order(
    stack: Stack, scenario: Scenario
) -> None:
    splits = trusted_split_day(stack, scenario)

    result = export(stack, DAY)

    assert splits == []
    assert (result["status"], result["key_ranges"]) == ("exported", 0)
    assert max(r["in_flight"] for r in requests_of(stack, DAY)) == 1
    assert [line["user_id"] for line in stack.lines(DAY)] == [r["user_id"] for r in expected_records(DAY, scenario)]


def test_subusers_added_and_removed_since_the_split_day_are_all_exported_in_ranges(stack: Stack) -> None:
    trusted_split_day(stack, Scenario(subusers=2_500))
    removed = (0, 99, 100, 101, 640, 1_999, 2_000, 2_499)  # around split points, and whole pages' ends
    changed = Scenario(subusers=2_900, removed=removed)
    stack.simulator.reset(changed)

    result = export(stack, DAY)
    ranged_bytes = day_object(stack, DAY)

    assert (result["status"], result["key_ranges"], result["key_ranges_abandoned"]) == ("exported", 25, None)
    assert [line["user_id"] for line in stack.lines(DAY)] == [r["user_id"] for r in expected_records(DAY, changed)]
    assert ranged_bytes == in_order_export(stack, DAY)


# -- any doubt: the day in order, from its start, in the same invocation --------------------


def test_a_range_that_repeats_ids_of_the_range_before_is_caught_and_the_day_fetched_in_order(stack: Stack) -> None:
    splits = trusted_split_day(stack, Scenario(subusers=2_500))
    overlap = Fault(page=0, kind="overlap", after_key=str(splits[11]), overlap=5)
    stack.simulator.reset(Scenario(subusers=2_500, faults=[overlap]))

    result = export(stack, DAY)
    fell_back = day_object(stack, DAY)

    assert (result["status"], result["key_ranges"], result["records"]) == ("exported", 0, 2_500)
    assert f"does not come after {splits[11]}" in result["key_ranges_abandoned"]
    assert fell_back == in_order_export(stack, DAY)
    assert not [key for key in stack.object_keys() if "/_staging/" in key or "/_quarantine/" in key]


def test_records_past_a_stop_that_are_not_the_next_ranges_are_caught_and_the_day_fetched_in_order(
    stack: Stack,
) -> None:
    splits = trusted_split_day(stack, Scenario(subusers=2_500))
    # the page of the range ending at splits[5] gets one more record, one the next range does not have
    phantom = Fault(page=0, kind="phantom", after_key=str(splits[4]))
    stack.simulator.reset(Scenario(subusers=2_500, faults=[phantom]))

    result = export(stack, DAY)
    fell_back = day_object(stack, DAY)

    assert (result["status"], result["key_ranges"]) == ("exported", 0)
    assert "past its stop are not the next range's first records" in result["key_ranges_abandoned"]
    assert b"phantom" not in fell_back
    assert fell_back == in_order_export(stack, DAY)


@pytest.mark.parametrize(
    "refusal",
    [Fault(page=0, status=400), Fault(page=0, kind="status", status=200, body='{"result": "not a list"}')],
    ids=["400 to its after_key", "a body that does not parse"],
)
def test_a_range_sendgrid_refuses_gives_way_to_the_in_order_fetch_which_exports_the_day(
    stack: Stack, refusal: Fault
) -> None:
    splits = trusted_split_day(stack, Scenario(subusers=2_500))
    aimed = Fault(**{**vars(refusal), "after_key": str(splits[3])})
    stack.simulator.reset(Scenario(subusers=2_500, faults=[aimed]))

    result = export(stack, DAY)

    assert (result["status"], result["key_ranges"], result["records"]) == ("exported", 0, 2_500)
    assert "range 4 page 1" in result["key_ranges_abandoned"]
    assert len(stack.quarantined()) == (1 if refusal.status == 200 else 0)  # a bad answer is kept, as ever
    assert day_object(stack, DAY) == in_order_export(stack, DAY)


def test_a_202_on_one_range_reschedules_the_day_which_then_completes_in_ranges(stack: Stack) -> None:
    splits = trusted_split_day(stack, Scenario(subusers=2_500))
    not_ready = Fault(page=0, status=202, after_key=str(splits[7]))
    stack.simulator.reset(Scenario(subusers=2_500, faults=[not_ready]))
    configure(stack)

    first = stack.invoke({"date": DAY})
    retried = stack.deliver(wait_seconds=10)  # long poll: returns when the re-run's delay has passed

    assert (first["status"], first["next_attempt"]) == ("not_ready", 2)
    assert retried == {"batchItemFailures": []}
    assert not stack.dlq_bodies()
    assert day_object(stack, DAY) == in_order_export(stack, DAY)


# -- rate limits -----------------------------------------------------------------------------


@pytest.mark.parametrize("limit_headers", [True, False], ids=["with headers", "without headers"])
def test_429s_for_too_many_in_flight_slow_the_ranges_down_and_the_day_completes(
    stack: Stack, limit_headers: bool
) -> None:
    trusted_split_day(stack, Scenario(subusers=2_500))
    stack.simulator.reset(Scenario(subusers=2_500, latency=0.05, max_in_flight=3, limit_headers=limit_headers))

    result = export(stack, DAY, waits=True)
    answers = requests_of(stack, DAY)
    refused = [r for r in answers if r["status"] == 429]

    assert (result["status"], result["key_ranges"], result["records"]) == ("exported", 25, 2_500)
    assert refused  # the limit was met...
    assert len(refused) < len(answers) - len(refused)  # ...and then respected: fewer refusals than pages
    assert max(r["in_flight"] for r in answers) <= 8
    ranged_bytes = day_object(stack, DAY)
    stack.simulator.reset(Scenario(subusers=2_500))  # the same day, unlimited, in order
    assert ranged_bytes == in_order_export(stack, DAY)


def test_a_windowed_rate_limit_is_waited_out_and_the_day_completes(stack: Stack) -> None:
    trusted_split_day(stack, Scenario(subusers=2_500))
    stack.simulator.reset(Scenario(subusers=2_500, rate_limit=12, rate_window=1.0))

    result = export(stack, DAY, waits=True)
    answers = requests_of(stack, DAY)

    assert (result["status"], result["records"]) == ("exported", 2_500)
    assert result["key_ranges"] == 25
    assert sum(1 for r in answers if r["status"] == 200) == 25
    ranged_bytes = day_object(stack, DAY)
    stack.simulator.reset(Scenario(subusers=2_500))  # the same day, unlimited, in order
    assert ranged_bytes == in_order_export(stack, DAY)


# -- continuation ----------------------------------------------------------------------------


def test_ranges_in_flight_continue_across_4_second_invocations_into_the_in_order_bytes(stack: Stack) -> None:
    trusted_split_day(stack, Scenario(subusers=2_500))
    stack.simulator.reset(Scenario(subusers=2_500, latency=0.05))
    configure(stack)

    first, continuations = run_to_completion(stack, DAY, context=lambda: FakeLambdaContext(timeout_seconds=4))

    assert (first["status"], first["key_ranges"]) == ("continued", 25)
    carried = continuations[0]["checkpoint"]["ranges"]
    assert len(carried) == 25
    assert sum(1 for key_range in carried if not key_range["done"]) > 1
    assert any(key_range["chunks"] for key_range in carried)
    assert day_object(stack, DAY) == in_order_export(stack, DAY)
    assert not [key for key in stack.object_keys() if "/_staging/" in key]
