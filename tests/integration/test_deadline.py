"""An invocation checkpoints before its deadline whatever a page costs, on every write path.

Time here is virtual, so nothing sleeps: each page SendGrid serves costs ``FETCH`` seconds and
each item written to DynamoDB costs ``WRITE`` seconds (counted from the function's own boto3
calls). The function times its pages with that clock (``build_dependencies(monotonic=...)``)
and the Lambda context counts down on it, so an invocation that would have been killed shows
as one that ended past its deadline.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest

from local.seq_simulator import Scenario, SeqSimulator, expected_records
from seq_export import wiring
from seq_export_cli.local_lambda import FakeLambdaContext
from tests.support import Stack, days_ago, run_to_completion

pytestmark = pytest.mark.integration

FETCH = 1.0  # seconds per page served
WRITE = 2.0  # seconds per DynamoDB item written: a page of 100 writes for minutes
TIMEOUT = 300.0  # the template's function timeout
BUS = "seq-scores"


class CostedTime:
    """A clock that moves only as the function works: pages served and DynamoDB items written."""

    def __init__(self, simulator: SeqSimulator, session: boto3.session.Session) -> None:
        self._simulator = simulator
        self._items = 0
        self._lock = threading.Lock()  # page writes run on the write-behind thread and its pool
        session.events.register("before-parameter-build.dynamodb.BatchWriteItem", self._batch_written)
        session.events.register("before-parameter-build.dynamodb.UpdateItem", self._item_written)
        session.events.register("before-parameter-build.dynamodb.PutItem", self._item_written)

    def _batch_written(self, params: dict[str, Any], **_: Any) -> None:
        self._add(sum(len(requests) for requests in params["RequestItems"].values()))

    def _item_written(self, **_: Any) -> None:
        self._add(1)

    def _add(self, items: int) -> None:
        with self._lock:
            self._items += items

    def now(self) -> float:
        with self._lock:
            return self._simulator.pages_served() * FETCH + self._items * WRITE


class CostedContext(FakeLambdaContext):
    """A Lambda context whose remaining time counts down on ``CostedTime``."""

    def __init__(self, clock: CostedTime) -> None:
        super().__init__(timeout_seconds=TIMEOUT)
        self._clock = clock
        self._started = clock.now()

        self.used: float | None = None  # set by ``end``: what the invocation took

    def get_remaining_time_in_millis(self) -> int:
        return int((TIMEOUT - (self._clock.now() - self._started)) * 1000)

    def end(self) -> None:
        self.used = self._clock.now() - self._started


def use_costed_time(stack: Stack) -> CostedTime:
    """The function rebuilt on its own session, its pages timed on the virtual clock."""
    session = boto3.session.Session()
    clock = CostedTime(stack.simulator, session)
    wiring.use_dependencies(
        wiring.build_dependencies(stack.settings, session=session, sleep=stack.sleeps.append, monotonic=clock.now)
    )
    return clock


@pytest.mark.parametrize("write_path", ["conditional writes (score-change events on)", "batch writes"])
def test_an_invocation_checkpoints_before_its_deadline_when_writes_cost_more_than_fetches(
    stack: Stack, write_path: str
) -> None:
    day = days_ago(1)
    settings = {"SEQ_PAGE_SIZE": "100", "EXPORT_ACCOUNT_SCORES": "false"}
    if write_path.startswith("conditional"):
        stack.session.client("events").create_event_bus(Name=BUS)
        settings["SCORE_CHANGE_EVENT_BUS"] = BUS
    stack.configure(**settings)
    stack.simulator.reset(Scenario(subusers=600))
    clock = use_costed_time(stack)
    contexts: list[CostedContext] = []

    def new_context() -> CostedContext:  # the previous invocation has ended: nothing else costs
        if contexts:
            contexts[-1].end()
        contexts.append(CostedContext(clock))
        return contexts[-1]

    first, continuations = run_to_completion(stack, day, context=new_context)
    contexts[-1].end()

    used = [context.used or 0.0 for context in contexts]
    assert [seconds for seconds in used if seconds > TIMEOUT] == []  # none would have been killed
    assert first["status"] == "continued"
    assert len(continuations) == len(contexts) - 1 >= 1
    assert [line["user_id"] for line in stack.lines(day)] == [
        r["user_id"] for r in expected_records(day, stack.simulator.scenario)
    ]
    assert stack.metrics["RecordsExported"] == 600
    assert stack.metrics["LatestScoresWritten"] == 600 - 600 // 7
    assert stack.queue_counts(stack.resources.dlq_url) == {"visible": 0, "delayed": 0}
