"""DynamoDB adapter: the latest-score table (one item per subuser, newest day wins).

Why two write paths. The contract says an older day never overwrites a newer one, and that
must hold while several days export at once (backfills). BatchWriteItem is the cheap way to
write (25 puts a call, 1 write unit per small item) but it cannot carry a condition; a
conditional UpdateItem can, at one call per subuser. So:

* **Batch path** (the daily run): a day that is the newest the table has seen claims a lease
  on a control item (``user_id = "#seq-export#control"``) with one conditional UpdateItem:
  ``newest_date <= day`` and no live lease of another day. The lease is shared by every export
  of that same day (the sources of a stack export the same day at the same time: each joins
  the holders, none waits). While it is held no newer day can be written by anyone else, so
  unconditional batch puts of this day are correct whichever source writes them.
* **Conditional path** (older days, or the same day while another run holds the lease): one
  UpdateItem per scored subuser with ``attribute_not_exists(date) OR date <= :date``. A newer
  item refuses the write; the refusal is counted, not an error.
* A *newer* day that finds an *older* day holding the lease waits (bounded), because its
  conditional writes could be overwritten by the holder's unconditional puts. If the lease
  outlives the wait it raises ``LatestStoreBusyError`` and the day is retried later.

The lease lasts longer than any Lambda invocation can (15 minutes) past its latest holder's
claim, so a crashed holder blocks newer days for at most that long.

Two sources returning the same ``user_id`` (the global host answering for an EU-pinned subuser
too) share one item: the newest day wins as ever, and on the same day the last write wins (both
answers score the same subuser); ``source`` says which one wrote it, and the lake keeps both
lines, one in each source's object. Ineligible records (no score) are never written:
a day without a score must not erase a known one.

Retries: botocore's standard mode retries throttled calls; ``UnprocessedItems`` (which botocore
does not retry) are retried here with exponential backoff and full jitter (``UNPROCESSED_BACKOFF``),
at most ``max_batch_attempts`` times per batch. A newer day waiting for an older day's lease
polls with growing pauses (``LEASE_BACKOFF``) for at most ``lease_wait_seconds``.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from seq_export.backoff import Backoff
from seq_export.errors import LatestStoreBusyError, StorageError, describe_aws_error
from seq_export.layout import CONTROL_KEY, ITEM_ATTRIBUTES
from seq_export.models import METRIC_NAMES, ScoreChange, ScoreRecord
from seq_export.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_LIMIT = 25  # BatchWriteItem's hard limit on AWS (moto accepts more)
LEASE_SECONDS = 960  # > the 900 s Lambda maximum, so an expired lease has no live holder
#: Between tries of a batch's unprocessed items: 0.1 s doubling to 5 s, full jitter.
UNPROCESSED_BACKOFF = Backoff(first=0.1, cap=5.0)
#: Between claims of a lease an older day holds: 0.5 s doubling to 10 s, each 0.5 to 1.5 times that.
LEASE_BACKOFF = Backoff(first=0.5, cap=10.0, low=0.5, high=1.5)


@dataclass
class WriteCounts:
    written: int = 0
    kept_newer: int = 0


def chunks(items: Sequence[Any], size: int = BATCH_LIMIT) -> list[Sequence[Any]]:
    if size < 1:
        raise ValueError("chunk size must be positive")
    return [items[i : i + size] for i in range(0, len(items), size)]


def to_item(record: ScoreRecord, updated_at: str) -> dict[str, Any]:
    """DynamoDB attribute values built from the numbers' own text, so nothing is rounded."""
    item: dict[str, Any] = {
        "user_id": {"S": record.user_id},
        "source": {"S": record.source},
        "date": {"S": record.date},
        "updated_at": {"S": updated_at},
    }
    if record.username:  # an empty string cannot be a key of the username index: leave it out
        item["username"] = {"S": record.username}
    if record.score is not None:
        item["score"] = {"N": str(record.score)}
    if record.metrics is not None:
        item["metrics"] = {"M": {name: {"N": str(record.metrics[name])} for name in METRIC_NAMES}}
    return item


class LatestStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        workers: int = 8,
        max_batch_attempts: int = 8,
        lease_wait_seconds: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        track_changes: bool = False,
    ) -> None:
        self._client = client
        self._track_changes = track_changes
        self._table = table
        self._workers = workers
        self._max_batch_attempts = max_batch_attempts
        self._lease_wait_seconds = lease_wait_seconds
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self._executor: ThreadPoolExecutor | None = None

    def open_day(self, day: str, updated_at: str) -> DayWriter:
        return DayWriter(self, day, updated_at)

    @property
    def tracks_changes(self) -> bool:
        """Whether writes return the item they replace (score-change events are on)."""
        return self._track_changes

    # -- lease -----------------------------------------------------------------------------
    def claim_lease(self, day: str, owner: str) -> bool:
        """True if this run may batch-write ``day``; False if it must write conditionally.

        Two tries, both conditional on no newer day being known: take a free (or expired) lease
        whole, or join a live lease of the same day; the holders of one day never wait on each
        other. Only an older day's live lease is waited for (bounded)."""
        deadline = self._clock() + self._lease_wait_seconds
        waits = 0
        while True:
            now = int(self._clock())
            values = {":d": {"S": day}, ":o": {"SS": [owner]}, ":u": {"N": str(now + LEASE_SECONDS)}}
            held = self._update_control(
                # a lease of the version before shared leases (``lease_owner``) is live until it expires
                "SET newest_date = :d, lease_date = :d, lease_until = :u, lease_holders = :o REMOVE lease_owner",
                "(attribute_not_exists(newest_date) OR newest_date <= :d) "
                "AND ((attribute_not_exists(lease_holders) AND attribute_not_exists(lease_owner)) "
                "OR attribute_not_exists(lease_until) OR lease_until < :now)",
                {**values, ":now": {"N": str(now)}},
            )
            if held is not None and held.get("lease_date", {}).get("S") == day:
                held = self._update_control(
                    "SET lease_until = :u ADD lease_holders :o",
                    "newest_date = :d AND lease_date = :d AND attribute_exists(lease_holders)",
                    values,
                )
            if held is None:
                return True
            newest = str(held.get("newest_date", {}).get("S", ""))
            if newest > day or (newest == day and held.get("lease_date", {}).get("S") != day):
                return False  # a newer day is known: conditional writes are safe
            if self._clock() >= deadline:
                raise LatestStoreBusyError(
                    f"DynamoDB {self._table}: an export of {newest} still holds the write lease; {day} will be retried"
                )
            logger.info("Waiting for an older day's write lease", date=day, lease_date=newest)
            waits += 1
            self._sleep(LEASE_BACKOFF.pause(waits, self._jitter))

    def _update_control(self, expression: str, condition: str, values: dict[str, Any]) -> dict[str, Any] | None:
        """One conditional update of the control item: None when it was made, else the item as it was."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"user_id": {"S": CONTROL_KEY}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise StorageError(
                    f"DynamoDB {self._table}: claiming the write lease failed: {describe_aws_error(exc)}"
                ) from None
            response: Any = exc.response
            return dict(response.get("Item") or {})
        except BotoCoreError as exc:
            raise StorageError(f"DynamoDB {self._table}: claiming the write lease failed: {exc}") from None
        return None

    def release_lease(self, owner: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"user_id": {"S": CONTROL_KEY}},
                UpdateExpression="DELETE lease_holders :o",
                ExpressionAttributeValues={":o": {"SS": [owner]}},
            )
        except (ClientError, BotoCoreError) as exc:  # the lease expires on its own
            logger.warning("Could not release the write lease", problem=describe_aws_error(exc))

    # -- writes ----------------------------------------------------------------------------
    def batch_put(self, records: Sequence[ScoreRecord], updated_at: str) -> int:
        """Put every record, 25 per call, the calls of a page in parallel (each waits on the network)."""
        parts = chunks(records)
        if len(parts) == 1:
            self._put_chunk(parts[0], updated_at)
        else:
            list(self._pool().map(lambda chunk: self._put_chunk(chunk, updated_at), parts))
        return len(records)

    def _pool(self) -> ThreadPoolExecutor:
        """One pool for the container's life: threads are reused across pages and invocations."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="latest-store")
        return self._executor

    def _put_chunk(self, chunk: Sequence[ScoreRecord], updated_at: str) -> None:
        pending: list[Any] = [{"PutRequest": {"Item": to_item(r, updated_at)}} for r in chunk]
        for attempt in range(1, self._max_batch_attempts + 1):
            try:
                answer = self._client.batch_write_item(RequestItems={self._table: pending})
            except (ClientError, BotoCoreError) as exc:
                raise StorageError(
                    f"DynamoDB BatchWriteItem on {self._table} failed: {describe_aws_error(exc)}"
                ) from None
            pending = answer.get("UnprocessedItems", {}).get(self._table, [])
            if not pending:
                return
            if attempt == self._max_batch_attempts:
                raise StorageError(
                    f"DynamoDB {self._table}: {len(pending)} items still unprocessed after {attempt} tries"
                )
            self._sleep(UNPROCESSED_BACKOFF.pause(attempt, self._jitter))

    def _conditional_put(self, record: ScoreRecord, updated_at: str) -> tuple[bool, dict[str, Any] | None]:
        """Write if not older than the stored day; returns (written, the item it replaced)."""
        # every name goes through a placeholder: "date" and "metrics" are DynamoDB reserved words
        item = to_item(record, updated_at)
        names = {f"#{name}": name for name in ITEM_ATTRIBUTES}
        values = {f":{name}": item[name] for name in ITEM_ATTRIBUTES if name in item}
        sets = [f"#{name} = :{name}" for name in ITEM_ATTRIBUTES if name in item]
        removes = [f"#{name}" for name in ITEM_ATTRIBUTES if name not in item]
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key={"user_id": {"S": record.user_id}},
                UpdateExpression=expression,
                ConditionExpression="attribute_not_exists(#date) OR #date <= :date",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                # the old item comes back with the write itself: no read, no extra unit
                ReturnValues="ALL_OLD" if self._track_changes else "NONE",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False, None
            raise StorageError(
                f"DynamoDB UpdateItem on {self._table} for user_id {record.user_id} failed: {describe_aws_error(exc)}"
            ) from None
        except BotoCoreError as exc:
            raise StorageError(f"DynamoDB UpdateItem on {self._table} failed: {exc}") from None
        return True, answer.get("Attributes")

    def conditional_puts(
        self, records: Sequence[ScoreRecord], updated_at: str
    ) -> tuple[WriteCounts, list[ScoreChange]]:
        """One conditional write per record, in parallel; refusals (a newer day) are counted."""
        results = list(self._pool().map(lambda r: self._conditional_put(r, updated_at), records))
        written = sum(1 for done, _ in results if done)
        changes = [
            change
            for record, (done, old) in zip(records, results, strict=True)
            if done and old is not None and (change := _change(record, old)) is not None
        ]
        return WriteCounts(written=written, kept_newer=len(results) - written), changes


class DayWriter:
    """Writes one day's scored records page by page; a context manager that frees the lease."""

    def __init__(self, store: LatestStore, day: str, updated_at: str) -> None:
        self._store = store
        self._day = day
        self._updated_at = updated_at
        self._owner = f"{day}/{secrets.token_hex(16)}"
        self._mode: str | None = None  # "batch", "conditional" or "tracked", from the first scored record on
        self.counts = WriteCounts()

    def write(self, records: Sequence[ScoreRecord]) -> list[ScoreChange]:
        """Write the scored records; returns how scores moved (only when tracking changes)."""
        scored = [r for r in records if r.eligible]
        if not scored:
            return []
        if self._mode is None:
            if self._store.tracks_changes:
                self._mode = "tracked"  # every write must return the old item: no batch path
            else:
                self._mode = "batch" if self._store.claim_lease(self._day, self._owner) else "conditional"
        if self._mode == "batch":
            self.counts.written += self._store.batch_put(scored, self._updated_at)
            return []
        counts, changes = self._store.conditional_puts(scored, self._updated_at)
        self.counts.written += counts.written
        self.counts.kept_newer += counts.kept_newer
        return changes

    def close(self) -> None:
        if self._mode == "batch":
            self._store.release_lease(self._owner)

    def __enter__(self) -> DayWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _change(record: ScoreRecord, old: dict[str, Any]) -> ScoreChange | None:
    """How ``record`` moved against the item it replaced; None without an earlier day's score."""
    old_score = old.get("score", {}).get("N")
    old_date = old.get("date", {}).get("S", "")
    if old_score is None or record.score is None or old_date >= record.date:
        return None
    old_metrics = old.get("metrics", {}).get("M")
    return ScoreChange(
        source=record.source,
        user_id=record.user_id,
        username=record.username,
        date=record.date,
        previous_date=old_date,
        old_score=Decimal(old_score),
        new_score=record.score,
        old_metrics=None if old_metrics is None else {k: Decimal(v["N"]) for k, v in old_metrics.items()},
        new_metrics=record.metrics,
    )
