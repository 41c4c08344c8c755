"""The write lease against moto's real DynamoDB conditions: newest day wins across concurrent days."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from seq_export.errors import LatestStoreBusyError
from seq_export.latest_store import LatestStore
from seq_export.layout import CONTROL_KEY
from tests.support import Stack, records, write_path

pytestmark = pytest.mark.integration


def latest(stack: Stack, user_id: str) -> tuple[str, Decimal]:
    item = stack.item(user_id)
    assert item is not None
    return item["date"], item["score"]


def store(stack: Stack, *, wait: float = 0.0) -> LatestStore:
    return LatestStore(stack.session.client("dynamodb"), stack.resources.table, lease_wait_seconds=wait)


def test_a_newer_day_cannot_write_while_an_older_day_holds_the_lease(stack: Stack) -> None:
    with store(stack).open_day("2026-11-20", "t1") as older:
        older.write(records(30, day="2026-11-20", score=2))
        assert write_path(older) == "batch"
        with pytest.raises(LatestStoreBusyError, match="an export of 2026-11-20 still holds the write lease"):
            store(stack).open_day("2026-11-21", "t2").write(records(30, day="2026-11-21", score=5))
        older.write(records(30, day="2026-11-20", score=2))  # the holder keeps writing safely

    with store(stack).open_day("2026-11-21", "t2") as newer:  # lease released: the newer day goes
        newer.write(records(30, day="2026-11-21", score=5))
    assert write_path(newer) == "batch"
    assert latest(stack, "1007") == ("2026-11-21", Decimal(5))


def test_an_older_day_writes_conditionally_and_never_replaces_newer_items(stack: Stack) -> None:
    with store(stack).open_day("2026-11-21", "t1") as newer:
        newer.write(records(10, day="2026-11-21", score=5))

    with store(stack).open_day("2026-11-18", "t2") as older:
        older.write(records(20, day="2026-11-18", score=1))  # users 1010..1019 are new to the table

    assert write_path(older) == "conditional"
    assert (older.counts.written, older.counts.kept_newer) == (10, 10)
    assert latest(stack, "1003") == ("2026-11-21", Decimal(5))
    assert latest(stack, "1015") == ("2026-11-18", Decimal(1))


def holders(stack: Stack) -> set[str]:
    """Who holds the write lease now (the control item's ``lease_holders``; none when free)."""
    control = stack.item(CONTROL_KEY)
    assert control is not None
    assert "lease_owner" not in control
    return set(control.get("lease_holders", set()))


def test_the_same_day_twice_at_once_writes_identical_values(stack: Stack) -> None:
    with store(stack).open_day("2026-11-21", "t1") as first:
        with store(stack).open_day("2026-11-21", "t2") as second:
            first.write(records(30, day="2026-11-21", score=4))
            second.write(records(30, day="2026-11-21", score=4))
            assert len(holders(stack)) == 2  # the second joined the first's lease: neither waits
            control = stack.item(CONTROL_KEY)
            assert control is not None
            assert (control["newest_date"], control["lease_date"]) == ("2026-11-21", "2026-11-21")
            assert "lease_until" in control
            with pytest.raises(LatestStoreBusyError, match="an export of 2026-11-21 still holds the write lease"):
                store(stack).open_day("2026-11-22", "t3").write(records(30, day="2026-11-22", score=5))
        assert len(holders(stack)) == 1  # the first still holds it
        with pytest.raises(LatestStoreBusyError, match="an export of 2026-11-21 still holds the write lease"):
            store(stack).open_day("2026-11-22", "t3").write(records(30, day="2026-11-22", score=5))

    assert holders(stack) == set()  # the last holder freed it
    assert (write_path(first), write_path(second)) == ("batch", "batch")
    assert first.counts.written == second.counts.written == 30
    assert latest(stack, "1029") == ("2026-11-21", Decimal(4))
    with store(stack).open_day("2026-11-22", "t3") as newer:  # free again: the newer day goes
        newer.write(records(30, day="2026-11-22", score=5))
    assert write_path(newer) == "batch"
    assert latest(stack, "1029") == ("2026-11-22", Decimal(5))


def control_item(stack: Stack) -> dict[str, Any]:
    dynamodb = stack.session.client("dynamodb")
    return dict(dynamodb.get_item(TableName=stack.resources.table, Key={"user_id": {"S": CONTROL_KEY}})["Item"])


def put_old_version_lease(stack: Stack, day: str, until: int) -> None:
    """The control item as the version before shared leases leaves it while it writes ``day``."""
    stack.session.client("dynamodb").put_item(
        TableName=stack.resources.table,
        Item={
            "user_id": {"S": CONTROL_KEY},
            "newest_date": {"S": day},
            "lease_owner": {"S": f"{day}/old-version"},
            "lease_until": {"N": str(until)},
        },
    )


def test_a_live_lease_of_the_version_before_is_waited_for_and_an_expired_one_taken_over(stack: Stack) -> None:
    # Given the previous version still writes an older day during a deploy
    put_old_version_lease(stack, "2026-11-20", until=int(time.time()) + 600)

    # Then a newer day does not batch-write beside it
    with pytest.raises(LatestStoreBusyError, match="an export of 2026-11-20 still holds the write lease"):
        store(stack).open_day("2026-11-21", "t2").write(records(3, day="2026-11-21", score=5))

    # And once that lease has expired, the newer day takes it over whole
    put_old_version_lease(stack, "2026-11-20", until=int(time.time()) - 1)
    with store(stack).open_day("2026-11-21", "t2") as newer:
        newer.write(records(3, day="2026-11-21", score=5))
        held = control_item(stack)
        assert "lease_owner" not in held
        assert len(held["lease_holders"]["SS"]) == 1
    assert write_path(newer) == "batch"
