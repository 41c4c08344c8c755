"""EventBridge adapter: ``SEQ Score Changed`` events for subusers whose score moved, and one
``SEQ Daily Digest`` event per exported subusers' day.

Events are sent ten to a PutEvents call (its limit). PutEvents can accept a call yet refuse
some entries (``FailedEntryCount``): those entries alone are sent again with backoff
(``RETRY_BACKOFF``), at most ``max_attempts`` times; what still fails is counted and logged (with the user ids, or the
digest's source and date), never raised, because the day's data is already correct and a re-run
could not recreate the comparison (the table then holds the new score). Whole-call errors are
retried by botocore's standard mode.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from seq_export.backoff import Backoff
from seq_export.errors import describe_aws_error
from seq_export.models import ScoreChange
from seq_export.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

    from seq_export.score_bands import DailyDigest

SOURCE = "seq-export"
DETAIL_TYPE = "SEQ Score Changed"
DIGEST_DETAIL_TYPE = "SEQ Daily Digest"
PUT_EVENTS_LIMIT = 10
#: Between sends of refused entries: 0.4 s doubling to 5 s, full jitter.
RETRY_BACKOFF = Backoff(first=0.4, cap=5.0)


class _Event(Protocol):
    def detail(self) -> str: ...


_E = TypeVar("_E", bound=_Event)


@dataclass
class PublishCounts:
    sent: int = 0
    failed: int = 0


class ScoreChangePublisher:
    def __init__(
        self,
        client: EventBridgeClient,
        event_bus: str,
        *,
        max_attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self._event_bus = event_bus
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._jitter = jitter

    def publish(self, changes: Sequence[ScoreChange]) -> PublishCounts:
        counts = PublishCounts()
        for start in range(0, len(changes), PUT_EVENTS_LIMIT):
            batch = list(changes[start : start + PUT_EVENTS_LIMIT])
            failed = self._send(batch, DETAIL_TYPE)
            counts.sent += len(batch) - len(failed)
            counts.failed += len(failed)
            if failed:
                logger.error(
                    "Score-change events not delivered",
                    event_bus=self._event_bus,
                    user_ids=[change.user_id for change in failed],
                    date=failed[0].date,
                )
        return counts

    def publish_digest(self, digest: DailyDigest) -> bool:
        """Send a day's digest; False (logged, not raised) when it still fails after the bounded tries."""
        if self._send([digest], DIGEST_DETAIL_TYPE):
            logger.error(
                "Daily digest not delivered", event_bus=self._event_bus, source=digest.source, date=digest.date
            )
            return False
        return True

    def _send(self, batch: list[_E], detail_type: str) -> list[_E]:
        """Send one batch; returns the events that still failed after the bounded retries."""
        pending = batch
        for attempt in range(1, self._max_attempts + 1):
            entries: list[Any] = [
                {
                    "Source": SOURCE,
                    "DetailType": detail_type,
                    "Detail": event.detail(),
                    "EventBusName": self._event_bus,
                    "Resources": [],
                }
                for event in pending
            ]
            try:
                answer = self._client.put_events(Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                logger.warning("PutEvents failed", problem=describe_aws_error(exc), attempt=attempt)
                failed = pending
            else:
                failed = [
                    event
                    for event, entry in zip(pending, answer.get("Entries", []), strict=False)
                    if entry.get("ErrorCode")
                ]
                if len(answer.get("Entries", [])) < len(pending):  # unanswered entries count as failed
                    failed += pending[len(answer.get("Entries", [])) :]
            if not failed:
                return []
            pending = failed
            if attempt < self._max_attempts:
                self._sleep(RETRY_BACKOFF.pause(attempt, self._jitter))
        return pending
