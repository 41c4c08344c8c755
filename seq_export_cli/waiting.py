"""``--wait``: follow days until their objects are in S3, with progress on stderr.

Against a deployed stack the CLI only polls (HeadObject every few seconds). With ``--local``
there is no Lambda to drain the retry queue, so the CLI also plays its SQS event source
(``local.lambda_runtime.SqsEventSource``) one message at a time, so progress moves as each day
finishes and the timeout is checked between days, until every day is exported, the queue has
nothing left, or the timeout passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from local.lambda_runtime import LONG_POLL_SECONDS, Invoke, SqsEventSource
from seq_export.job_message import JobId
from seq_export_cli.app import App
from seq_export_cli.errors import aws, aws_failure
from seq_export_cli.invoke import invoke_local
from seq_export_cli.output import Progressing
from seq_export_cli.s3_objects import Version, head_version

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

POLL_INTERVAL_SECONDS = 5.0
#: How a wait ended: every day exported, the time ran out, or (--local) the retry queue has
#: nothing left that could export the missing days.
Outcome = Literal["exported", "timeout", "queue_empty"]


class DayWatcher:
    """Which days' objects are in S3, by what each is (source, kind and day, as the function's
    summaries name a job). With ``baseline`` (``--force``), a day that already had an object
    counts only once it has been replaced (another ETag or LastModified)."""

    def __init__(self, s3: Any, bucket: str, keys: Mapping[JobId, str], baseline: Mapping[JobId, Version]) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._keys = dict(keys)
        self._baseline = dict(baseline)
        self.exported: set[JobId] = set()

    @property
    def days(self) -> list[JobId]:
        return list(self._keys)

    @property
    def pending(self) -> list[JobId]:
        return [day for day in self.days if day not in self.exported]

    def refresh(self) -> int:
        for day in self.pending:
            version = head_version(self._s3, self._bucket, self._keys[day])
            if version is not None and version != self._baseline.get(day):
                self.exported.add(day)
        return len(self.exported)


def poll_until_exported(
    watcher: DayWatcher,
    progress: Progressing,
    *,
    timeout: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    interval: float = POLL_INTERVAL_SECONDS,
) -> Outcome:
    """HeadObject every ``interval`` seconds until every day is exported or ``timeout`` passes."""
    deadline = clock() + timeout
    while True:
        progress.update(watcher.refresh())
        if not watcher.pending:
            return "exported"
        remaining = deadline - clock()
        if remaining <= 0:
            return "timeout"
        sleep(min(interval, remaining))


def deliver_until_exported(
    sqs: SQSClient,
    queue_url: str,
    invoke: Invoke,
    watcher: DayWatcher,
    progress: Progressing,
    *,
    timeout: float,
    clock: Callable[[], float],
    on_failures: Callable[[int], None] = lambda _count: None,
) -> Outcome:
    """Play the SQS event source: receive (long poll, so a delayed message is taken as soon as it
    is visible), invoke, delete what succeeded (failed records return to the queue after its
    visibility timeout, as with Lambda); until every day is exported (then deliver what is
    visible at once and stop), the queue has nothing left that could export a day, or
    ``timeout`` passes."""
    deadline = clock() + timeout
    source = SqsEventSource(sqs, queue_url, batch_size=1)
    with aws(f"SQS GetQueueAttributes of {queue_url}"):
        _ = source.queue_arn  # looked up once, before the first batch
    while True:
        progress.update(watcher.refresh())
        remaining = deadline - clock()
        if remaining <= 0:
            return "timeout" if watcher.pending else "exported"
        wait = min(LONG_POLL_SECONDS, math.ceil(remaining)) if watcher.pending else 0
        response = _deliver_once(source, queue_url, invoke, wait)
        if response is None:
            if not watcher.pending:
                return "exported"
            with aws(f"SQS GetQueueAttributes of {queue_url}"):
                empty = source.is_empty()
            if empty:
                progress.update(watcher.refresh())
                return "queue_empty" if watcher.pending else "exported"
            continue
        failed = len(response.get("batchItemFailures", []))
        if failed:
            on_failures(failed)


def _deliver_once(source: SqsEventSource, queue_url: str, invoke: Invoke, wait: int) -> dict[str, Any] | None:
    """``source.deliver_once``, with an SQS failure named by its call: ReceiveMessage before the
    handler runs, DeleteMessage after. The handler's own errors pass through unchanged."""
    step: str | None = "ReceiveMessage"

    def handler(event: dict[str, Any]) -> Mapping[str, Any]:
        nonlocal step
        step = None
        answer = invoke(event)
        step = "DeleteMessage"
        return answer

    try:
        return source.deliver_once(handler, wait_seconds=wait)
    except (ClientError, BotoCoreError) as exc:
        if step is None:
            raise
        raise aws_failure(f"SQS {step} from {queue_url}", exc) from None


def deliver_locally(app: App, watcher: DayWatcher, progress: Progressing, *, timeout: float) -> Outcome:
    """``--local --wait``: deliver the retry queue to the handler in this process, one message at
    a time, until ``watcher``'s days are exported, the queue has nothing left, or ``timeout``."""
    verbose = app.options.verbose
    return deliver_until_exported(
        app.client("sqs"),
        app.target.need("queue_url"),
        lambda event: invoke_local(event, verbose=verbose),
        watcher,
        progress,
        timeout=timeout,
        clock=app.clock,
        on_failures=lambda n: app.output.note(
            f"{n} queued export(s) failed and return to the queue after its visibility timeout"
            + ("" if verbose else " (--verbose shows the function's logs)")
        ),
    )
