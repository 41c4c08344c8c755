"""LatestStore against a hand-written fake DynamoDB client: exact calls, scripted refusals.

These are the rules moto cannot check for us: moto accepts 26 puts in one BatchWriteItem
where AWS refuses more than 25, and it never answers with UnprocessedItems.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import EndpointConnectionError

from seq_export.errors import LatestStoreBusyError, StorageError
from seq_export.latest_store import (
    BATCH_LIMIT,
    LEASE_SECONDS,
    DayWriter,
    LatestStore,
    chunks,
    to_item,
)
from seq_export.layout import CONTROL_KEY, DEFAULT_SOURCE
from seq_export.models import ScoreRecord
from tests.support import (
    CONDITION_FAILED,
    RECORD_DAY,
    START,
    Clock,
    FakeDynamoDB,
    client_error,
    lease_held_by,
    raising,
    raising_first,
    record,
    records,
    retryable,
    write_path,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE = "seq-latest-unit"
DAY = RECORD_DAY
UPDATED_AT = "2024-05-11T06:00:00.000Z"

CONDITIONAL_PUT = "attribute_not_exists(#date) OR #date <= :date"


def make_store(fake: FakeDynamoDB, clock: Clock | None = None, *, jitter: float = 1.0, **options: Any) -> LatestStore:
    clock = clock or Clock()
    return LatestStore(
        cast("DynamoDBClient", fake),
        TABLE,
        sleep=clock.sleep,
        clock=clock,
        jitter=lambda: jitter,
        **options,
    )


def write_day(store: LatestStore, batch: list[ScoreRecord]) -> DayWriter:
    """Write one page of ``day`` the way the exporter does: inside the writer's context."""
    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write(batch)
    return writer


def put_user_ids(requests: list[dict[str, Any]]) -> list[str]:
    return [r["PutRequest"]["Item"]["user_id"]["S"] for r in requests]


# -- chunks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "sizes"),
    [(0, []), (1, [1]), (25, [25]), (26, [25, 1]), (50, [25, 25]), (51, [25, 25, 1])],
)
def test_chunks_never_exceed_the_batch_write_limit(count: int, sizes: list[int]) -> None:
    items = list(range(count))

    parts = chunks(items)

    assert [len(p) for p in parts] == sizes
    assert [x for part in parts for x in part] == items  # nothing lost, order kept
    assert BATCH_LIMIT == 25


def test_chunks_refuse_a_size_below_one() -> None:
    with pytest.raises(ValueError, match="positive"):
        chunks([1, 2], size=0)


# -- to_item ---------------------------------------------------------------------------------


def test_to_item_writes_numbers_from_their_exact_text() -> None:
    rec = ScoreRecord(
        source=DEFAULT_SOURCE,
        date=DAY,
        user_id="42",
        username="alice",
        score=Decimal("3.75"),
        metrics={
            "engagement_recency": 4,
            "open_rate": Decimal("3.10"),
            "bounce_classification": Decimal("1.0000001"),
            "bounce_rate": 5,
            "spam_rate": Decimal("2.5"),
        },
    )

    item = to_item(rec, UPDATED_AT)

    assert item == {
        "user_id": {"S": "42"},
        "source": {"S": DEFAULT_SOURCE},
        "date": {"S": DAY},
        "updated_at": {"S": UPDATED_AT},
        "username": {"S": "alice"},
        "score": {"N": "3.75"},
        "metrics": {
            "M": {
                "engagement_recency": {"N": "4"},
                "open_rate": {"N": "3.10"},
                "bounce_classification": {"N": "1.0000001"},
                "bounce_rate": {"N": "5"},
                "spam_rate": {"N": "2.5"},
            }
        },
    }


def test_to_item_writes_an_integer_score_without_a_decimal_point() -> None:
    assert to_item(record(1, score=4), UPDATED_AT)["score"] == {"N": "4"}


def test_to_item_omits_username_when_none() -> None:
    item = to_item(record(1, username=None), UPDATED_AT)

    assert "username" not in item
    assert item["user_id"] == {"S": "1001"}


def test_to_item_omits_score_and_metrics_of_an_ineligible_record() -> None:
    item = to_item(record(1, score=None), UPDATED_AT)

    assert "score" not in item
    assert "metrics" not in item


# -- batch path ------------------------------------------------------------------------------


def test_the_batch_path_sends_at_most_25_puts_per_batch_write_item() -> None:
    # Given a free lease and 26 scored records
    fake = FakeDynamoDB()
    store = make_store(fake)

    # When they are written
    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write(records(26))

    # Then two BatchWriteItem calls carry 25 + 1 puts, all to this table
    assert write_path(writer) == "batch"
    assert [len(b) for b in fake.batches()] == [25, 1]
    assert all(set(c["RequestItems"]) == {TABLE} for op, c in fake.calls if op == "batch_write_item")
    assert put_user_ids([r for b in fake.batches() for r in b]) == [str(1000 + n) for n in range(26)]
    assert writer.counts.written == 26
    assert writer.counts.kept_newer == 0
    assert fake.puts() == []  # no per-item updates on the batch path


def test_each_page_is_chunked_separately_and_the_lease_is_claimed_once() -> None:
    fake = FakeDynamoDB()
    store = make_store(fake)

    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write(records(30))
        writer.write(records(3))

    assert [len(b) for b in fake.batches()] == [25, 5, 3]
    assert len(fake.claims()) == 1
    assert writer.counts.written == 33


def test_batch_puts_carry_the_exact_items() -> None:
    fake = FakeDynamoDB()
    store = make_store(fake)
    rec = record(7, score=Decimal("3.75"))

    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write([rec])

    assert fake.batches() == [[{"PutRequest": {"Item": to_item(rec, UPDATED_AT)}}]]


def test_ineligible_records_are_never_written() -> None:
    fake = FakeDynamoDB()
    store = make_store(fake)
    mixed = [record(n, score=None if n % 3 == 0 else 4) for n in range(30)]
    ineligible = {r.user_id for r in mixed if r.score is None}

    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write(mixed)

    written = put_user_ids([r for b in fake.batches() for r in b])
    assert ineligible.isdisjoint(written)
    assert len(written) == 30 - len(ineligible)
    assert writer.counts.written == 30 - len(ineligible)


def test_a_page_of_only_ineligible_records_makes_no_call_at_all() -> None:
    fake = FakeDynamoDB()
    store = make_store(fake)

    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write(records(5, score=None))

    assert fake.calls == []
    assert write_path(writer) is None
    assert writer.counts.written == 0


def test_ineligible_records_are_not_written_on_the_conditional_path_either() -> None:
    fake = FakeDynamoDB(claim=raising(lease_held_by("2024-06-01")))
    store = make_store(fake)

    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write([record(1), record(2, score=None), record(3)])

    assert sorted(c["Key"]["user_id"]["S"] for c in fake.puts()) == ["1001", "1003"]
    assert writer.counts.written == 2


def test_unprocessed_items_are_resent_alone_with_backoff() -> None:
    # Given DynamoDB leaves two items of the first call unprocessed, then takes them
    answers: list[dict[str, Any]] = []

    def batch(call: dict[str, Any]) -> dict[str, Any]:
        if not answers:
            answers.append(call)
            return {"UnprocessedItems": {TABLE: call["RequestItems"][TABLE][3:5]}}
        return {"UnprocessedItems": {}}

    fake = FakeDynamoDB(batch=batch)
    clock = Clock()
    store = make_store(fake, clock, jitter=1.0)

    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write(records(10))

    # Then the second call carries exactly those two, after one backoff sleep
    assert [len(b) for b in fake.batches()] == [10, 2]
    assert put_user_ids(fake.batches()[1]) == ["1003", "1004"]
    assert clock.sleeps == [pytest.approx(0.1)]  # min(5, 0.05 * 2**1) * jitter
    assert writer.counts.written == 10


def test_unprocessed_items_that_never_go_through_raise_storage_error() -> None:
    def never(call: dict[str, Any]) -> dict[str, Any]:
        return {"UnprocessedItems": {TABLE: call["RequestItems"][TABLE]}}

    fake = FakeDynamoDB(batch=never)
    clock = Clock()
    store = make_store(fake, clock, jitter=0.5, max_batch_attempts=4)

    with pytest.raises(StorageError, match=rf"{TABLE}: 3 items still unprocessed after 4 tries"):
        write_day(store, records(3))

    assert len(fake.batches()) == 4
    assert clock.sleeps == [pytest.approx(x) for x in (0.05, 0.1, 0.2)]  # 0.05 * 2**n * 0.5, none after the last


def test_unprocessed_backoff_is_capped_at_five_seconds() -> None:
    calls = 0

    def slow(call: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {"UnprocessedItems": {TABLE: call["RequestItems"][TABLE]}} if calls < 9 else {}

    fake = FakeDynamoDB(batch=slow)
    clock = Clock()
    store = make_store(fake, clock, jitter=1.0, max_batch_attempts=10)

    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write(records(1))

    assert clock.sleeps[-1] == 5.0
    assert max(clock.sleeps) == 5.0
    assert len(clock.sleeps) == 8


def test_a_batch_write_client_error_becomes_storage_error_naming_the_table() -> None:
    fake = FakeDynamoDB(batch=raising(client_error("ValidationException", "BatchWriteItem")))
    store = make_store(fake)

    with pytest.raises(StorageError, match=rf"BatchWriteItem on {TABLE} failed: ValidationException"):
        write_day(store, records(2))


# -- lease -----------------------------------------------------------------------------------


def test_the_lease_claim_is_a_conditional_update_of_the_control_item() -> None:
    fake = FakeDynamoDB()
    store = make_store(fake)

    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write(records(1))

    (claim,) = fake.claims()
    assert claim["TableName"] == TABLE
    assert claim["Key"] == {"user_id": {"S": CONTROL_KEY}}
    assert "SET newest_date = :d" in claim["UpdateExpression"]
    assert "lease_until < :now" in claim["ConditionExpression"]
    values = claim["ExpressionAttributeValues"]
    assert values[":d"] == {"S": DAY}
    assert values[":now"] == {"N": str(int(START))}
    assert values[":u"] == {"N": str(int(START) + LEASE_SECONDS)}
    (owner,) = values[":o"]["SS"]
    assert owner.startswith(f"{DAY}/")
    assert claim["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"


def test_a_granted_claim_means_batch_mode_and_close_releases_the_lease_conditionally() -> None:
    fake = FakeDynamoDB()
    store = make_store(fake)

    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write(records(2))
        assert fake.releases() == []  # held while the day is being written

    assert write_path(writer) == "batch"
    (claim,) = fake.claims()
    (release,) = fake.releases()
    owner = claim["ExpressionAttributeValues"][":o"]
    assert release["Key"] == {"user_id": {"S": CONTROL_KEY}}
    assert release["UpdateExpression"] == "DELETE lease_holders :o"
    assert release["ExpressionAttributeValues"] == {":o": owner}
    assert fake.calls[-1] == ("update_item", release)


def test_the_lease_is_released_even_when_the_day_fails() -> None:
    fake = FakeDynamoDB(batch=raising(client_error("InternalServerError", "BatchWriteItem")))
    store = make_store(fake)

    with pytest.raises(StorageError):
        write_day(store, records(2))

    assert len(fake.releases()) == 1


def test_a_failed_release_is_not_an_error_because_the_lease_expires() -> None:
    fake = FakeDynamoDB(release=raising(client_error(CONDITION_FAILED, "UpdateItem")))
    store = make_store(fake)

    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write(records(1))

    assert len(fake.releases()) == 1


def test_two_writers_use_different_lease_owners() -> None:
    fake = FakeDynamoDB()
    store = make_store(fake)

    for _ in range(2):
        with store.open_day(DAY, UPDATED_AT) as writer:
            writer.write(records(1))

    owners = {c["ExpressionAttributeValues"][":o"]["SS"][0] for c in fake.claims()}
    assert len(owners) == 2


def test_a_live_lease_of_the_same_day_is_joined_not_waited_for() -> None:
    # Given another export of the same day (another source) holds the lease
    fake = FakeDynamoDB(claim=raising_first([lease_held_by(DAY)]))
    clock = Clock()
    store = make_store(fake, clock)

    # When this export writes its records
    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write(records(3))

    # Then it joins the holders at once and batch-writes; closing removes only itself
    assert write_path(writer) == "batch"
    assert clock.sleeps == []
    (join,) = fake.joins()
    assert join["ConditionExpression"] == "newest_date = :d AND lease_date = :d AND attribute_exists(lease_holders)"
    (release,) = fake.releases()
    assert release["ExpressionAttributeValues"][":o"] == join["ExpressionAttributeValues"][":o"]
    assert [len(b) for b in fake.batches()] == [3]


@pytest.mark.parametrize("held", ["2024-05-11", "2025-01-01"], ids=["next-day", "much-newer"])
def test_when_a_newer_day_is_known_the_writer_writes_conditionally(held: str) -> None:
    # Given the claim is refused and the control item names a day > ours
    fake = FakeDynamoDB(claim=raising(lease_held_by(held)))
    clock = Clock()
    store = make_store(fake, clock)

    # When three records are written
    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write(records(3))

    # Then each is a conditional UpdateItem, no batch, no waiting, no lease to release
    assert write_path(writer) == "conditional"
    assert fake.batches() == []
    assert fake.releases() == []
    assert clock.sleeps == []
    assert len(fake.claims()) == 1
    puts = fake.puts()
    assert sorted(p["Key"]["user_id"]["S"] for p in puts) == ["1000", "1001", "1002"]
    for put in puts:
        assert put["TableName"] == TABLE
        assert put["ConditionExpression"] == CONDITIONAL_PUT
        assert put["ExpressionAttributeNames"]["#date"] == "date"
        assert put["ExpressionAttributeValues"][":date"] == {"S": DAY}
    assert writer.counts.written == 3


def test_refused_conditional_writes_are_counted_as_kept_newer() -> None:
    newer = {"1001", "1003"}

    def put(call: dict[str, Any]) -> dict[str, Any]:
        if call["Key"]["user_id"]["S"] in newer:
            raise client_error(CONDITION_FAILED, "UpdateItem")
        return {}

    fake = FakeDynamoDB(claim=raising(lease_held_by("2024-06-01")), put=put)
    store = make_store(fake, workers=3)

    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write(records(5))
        writer.write([record(10)])

    assert writer.counts.written == 4
    assert writer.counts.kept_newer == 2
    assert len(fake.puts()) == 6


def test_a_conditional_put_sets_the_values_and_removes_what_is_missing() -> None:
    fake = FakeDynamoDB(claim=raising(lease_held_by("2024-06-01")))
    store = make_store(fake)
    rec = record(5, score=Decimal("3.75"), username=None)

    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write([rec])

    (put,) = fake.puts()
    item = to_item(rec, UPDATED_AT)
    assert put["Key"] == {"user_id": {"S": "1005"}}
    assert put["UpdateExpression"] == (
        "SET #source = :source, #date = :date, #updated_at = :updated_at, #score = :score, #metrics = :metrics "
        "REMOVE #username"
    )
    assert put["ExpressionAttributeValues"] == {
        ":source": {"S": DEFAULT_SOURCE},
        ":date": {"S": DAY},
        ":updated_at": {"S": UPDATED_AT},
        ":score": {"N": "3.75"},
        ":metrics": item["metrics"],
    }
    # "date" and "metrics" are DynamoDB reserved words: every name must go through a placeholder
    names = put["ExpressionAttributeNames"]
    words = re.findall(r"[#:]?[A-Za-z_]+", put["UpdateExpression"] + " " + put["ConditionExpression"])
    bare = [w for w in words if w[0] not in "#:" and w not in {"SET", "REMOVE", "OR", "attribute_not_exists"}]
    assert bare == []
    assert set(names.values()) == {"source", "date", "updated_at", "username", "score", "metrics"}


def test_a_conditional_put_failing_for_another_reason_is_a_storage_error() -> None:
    fake = FakeDynamoDB(
        claim=raising(lease_held_by("2024-06-01")),
        put=raising(client_error("ProvisionedThroughputExceededException", "UpdateItem")),
    )
    store = make_store(fake)

    with pytest.raises(StorageError) as info:
        write_day(store, [record(1)])

    assert f"UpdateItem on {TABLE} for user_id 1001" in str(info.value)
    assert "ProvisionedThroughputExceededException" in str(info.value)


def test_an_older_day_holding_the_lease_makes_a_newer_day_wait_then_give_up() -> None:
    # Given an older day holds the lease for longer than we are willing to wait
    older = "2024-05-09"
    fake = FakeDynamoDB(claim=raising(lease_held_by(older)))
    clock = Clock()
    store = make_store(fake, clock, jitter=0.5, lease_wait_seconds=30.0)

    # When the newer day tries to write
    with pytest.raises(LatestStoreBusyError) as info:
        write_day(store, records(2))

    # Then it slept with doubling pauses (capped at 10 s) until the wait ran out, writing nothing
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert clock.now - START >= 30.0
    assert len(fake.claims()) == len(clock.sleeps) + 1
    assert fake.batches() == []
    assert fake.puts() == []
    assert fake.releases() == []
    assert older in str(info.value)
    assert DAY in str(info.value)
    assert TABLE in str(info.value)
    assert retryable(info.value)


def test_each_retried_claim_uses_the_current_time() -> None:
    fake = FakeDynamoDB(claim=raising(lease_held_by("2024-05-01")))
    clock = Clock()
    store = make_store(fake, clock, jitter=0.5, lease_wait_seconds=2.0)

    with pytest.raises(LatestStoreBusyError):
        write_day(store, records(1))

    # claims at +0, +0.5, +1.5 (still inside the 2 s wait) and +3.5 (past it, so the last)
    nows = [int(c["ExpressionAttributeValues"][":now"]["N"]) for c in fake.claims()]
    assert nows == [int(START), int(START + 0.5), int(START + 1.5), int(START + 3.5)]


def test_a_newer_day_gets_the_lease_once_the_older_day_releases_it() -> None:
    fake = FakeDynamoDB(claim=raising_first([lease_held_by("2024-05-09"), lease_held_by("2024-05-09")]))
    clock = Clock()
    store = make_store(fake, clock, jitter=0.5)

    with store.open_day(DAY, UPDATED_AT) as writer:
        writer.write(records(3))

    assert write_path(writer) == "batch"
    assert clock.sleeps == [0.5, 1.0]
    assert len(fake.claims()) == 3
    assert [len(b) for b in fake.batches()] == [3]
    assert len(fake.releases()) == 1


@pytest.mark.parametrize(
    "code", ["ResourceNotFoundException", "AccessDeniedException", "ProvisionedThroughputExceededException"]
)
def test_other_claim_client_errors_become_storage_error_naming_the_table(code: str) -> None:
    fake = FakeDynamoDB(claim=raising(client_error(code, "UpdateItem")))
    store = make_store(fake)

    with pytest.raises(StorageError) as info:
        write_day(store, records(1))

    assert type(info.value) is StorageError
    assert TABLE in str(info.value)
    assert code in str(info.value)
    assert fake.batches() == []


def test_a_claim_that_cannot_reach_dynamodb_becomes_storage_error() -> None:
    fake = FakeDynamoDB(claim=raising(EndpointConnectionError(endpoint_url="https://dynamodb.invalid")))
    store = make_store(fake)

    with pytest.raises(StorageError, match=TABLE):
        write_day(store, records(1))


def test_open_day_returns_a_writer_without_calling_dynamodb() -> None:
    fake = FakeDynamoDB()
    store = make_store(fake)

    writer = store.open_day(DAY, UPDATED_AT)
    writer.close()

    assert isinstance(writer, DayWriter)
    assert fake.calls == []
