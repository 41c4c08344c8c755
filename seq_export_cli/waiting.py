"""``--wait``: follow days until their objects are in S3, with progress on stderr.

A day counts as exported only once its object landed during the wait: each followed day's
object version (ETag, LastModified) is taken before the command asks for anything
(``versions_before``), and an object that was already there counts once it has been replaced.

Against a deployed stack the CLI polls (HeadObject every few seconds). With ``--local`` there is
no Lambda to drain the retry queue, so the CLI also plays its SQS event source
(``seq_export_cli.local_lambda.deliver_until``) one message at a time, so progress moves as each day
finishes and the timeout is checked between days. Either way it also peeks at the dead-letter
queue (``dead_letters.DeadLetterWatch``, by job and run): a followed day found there ends the
wait at once. So a wait ends when every day is exported, a day is dead-lettered, (locally) the
queue has nothing left, or the timeout passes. A Ctrl-C of a local delivery leaves the message
on the queue for a later run (``SqsEventSource.put_back``) and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from seq_export.backoff import Backoff
from seq_export.errors import InvalidEventError
from seq_export.job_message import Job, JobId
from seq_export.layout import DEFAULT_SOURCE
from seq_export_cli.app import App
from seq_export_cli.dead_letters import DeadLetterWatch, max_receive_count
from seq_export_cli.errors import aws_failure, aws_failures_named
from seq_export_cli.invoke import invoke_local
from seq_export_cli.local_lambda import LONG_POLL_SECONDS, Delivery, Invoke, SqsEventSource, deliver_until
from seq_export_cli.output import Progressing, counted
from seq_export_cli.s3_objects import Version, head_version, require_bucket

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

POLL_INTERVAL_SECONDS = 5.0
#: A deployed stack's ``--wait`` polls: every 5 s, never past the deadline (``within``).
POLL = Backoff.steady(POLL_INTERVAL_SECONDS)
#: How a wait ended: every day exported, the time ran out, a followed day is in the dead-letter
#: queue, or (--local) the retry queue has nothing left that could export the missing days.
Outcome = Literal["exported", "timeout", "dead_lettered", "queue_empty"]


class DayWatcher:
    """Which days' objects are in S3, by what each is (source, kind and day, as the function's
    summaries name a job). A day that had an object before the wait (``baseline``) counts only
    once it has been replaced (another ETag or LastModified)."""

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


def versions_before(app: App, jobs: list[JobId]) -> dict[JobId, Version]:
    """Each day's object version before the command asks for anything: it counts once replaced."""
    bucket = app.target.need("bucket")
    s3 = app.client("s3")
    require_bucket(s3, bucket)
    versions: dict[JobId, Version] = {}
    for job in jobs:
        version = head_version(s3, bucket, app.target.key_for(job.date, job.kind, job.source))
        if version is not None:
            versions[job] = version
    return versions


def dead_letter_watch(app: App, followed: Mapping[JobId, str | None]) -> DeadLetterWatch:
    """The dead letters of ``followed`` (by job and run; a job of no known run is not matched)."""
    sqs = app.client("sqs")
    url = app.dead_letter_queue_url()
    deliveries = max_receive_count(sqs, app.target.queue_url) if app.target.queue_url else None
    runs = {job: run for job, run in followed.items() if run is not None}
    return DeadLetterWatch(sqs, url, runs, default_source=app.target.sources[0], max_receive_count=deliveries)


def _dead_lettered(watcher: DayWatcher, dead_letters: DeadLetterWatch | None) -> bool:
    return dead_letters is not None and bool(dead_letters.check(watcher.pending))


def poll_until_exported(
    watcher: DayWatcher,
    progress: Progressing,
    *,
    timeout: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    interval: float = POLL_INTERVAL_SECONDS,
    dead_letters: DeadLetterWatch | None = None,
) -> Outcome:
    """HeadObject (and peek at the dead-letter queue) every ``interval`` seconds until every day
    is exported, a day is dead-lettered, or ``timeout`` passes."""
    deadline = clock() + timeout
    poll = Backoff.steady(interval)
    polls = 0
    while True:
        progress.update(watcher.refresh())
        if not watcher.pending:
            return "exported"
        if _dead_lettered(watcher, dead_letters):
            return "dead_lettered"
        remaining = deadline - clock()
        if remaining <= 0:
            return "timeout"
        polls += 1
        sleep(poll.pause(polls, within=remaining))


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
    dead_letters: DeadLetterWatch | None = None,
    on_interrupt: Callable[[list[JobId]], None] = lambda _jobs: None,
) -> Outcome:
    """Play the SQS event source (``deliver_until``, one message at a time): until every day is
    exported (then deliver what is visible at once and stop), a day is dead-lettered, the queue
    has nothing left that could export a day, or ``timeout`` passes. A Ctrl-C during a delivery
    tells ``on_interrupt`` the jobs it was delivering (back on the queue) and goes on."""
    source = _NamedEventSource(sqs, queue_url, on_interrupt)
    with aws_failures_named(f"SQS GetQueueAttributes of {queue_url}"):
        _ = source.queue_arn  # looked up once, before the first batch

    def dead_lettered() -> bool:
        progress.update(watcher.refresh())
        return bool(watcher.pending) and _dead_lettered(watcher, dead_letters)

    def delivered(delivery: Delivery) -> None:
        if delivery.failed:
            on_failures(delivery.failed)

    def nothing_left() -> bool:
        if not watcher.pending:
            return True
        with aws_failures_named(f"SQS GetQueueAttributes of {queue_url}"):
            return source.is_empty()

    ended = deliver_until(
        source,
        invoke,
        stop=dead_lettered,
        on_delivery=delivered,
        idle=nothing_left,
        wait_seconds=lambda: LONG_POLL_SECONDS if watcher.pending else 0,
        timeout=timeout,
        clock=clock,
    )
    if ended == "stopped":
        return "dead_lettered"
    if ended == "idle" and watcher.pending and dead_lettered():  # the queue is empty: a last look
        return "dead_lettered"
    if ended == "timeout":
        return "timeout" if watcher.pending else "exported"
    return "queue_empty" if watcher.pending else "exported"


class _NamedEventSource(SqsEventSource):
    """The retry queue's event source, one message at a time, with an SQS failure named by its
    call: ReceiveMessage before the handler runs, DeleteMessage after. The handler's own errors
    pass through unchanged; a Ctrl-C while it runs is told to ``on_interrupt`` with the jobs
    being delivered."""

    def __init__(self, sqs: SQSClient, queue_url: str, on_interrupt: Callable[[list[JobId]], None]) -> None:
        super().__init__(sqs, queue_url, batch_size=1)
        self._on_interrupt = on_interrupt

    def deliver(
        self, invoke: Invoke, *, wait_seconds: int = LONG_POLL_SECONDS, retry_failed_at_once: bool = False
    ) -> Delivery | None:
        step: str | None = "ReceiveMessage"
        delivering: list[JobId] = []

        def handler(event: dict[str, Any]) -> Mapping[str, Any]:
            nonlocal step
            step = None
            delivering[:] = _jobs_of(event)
            answer = invoke(event)
            step = "DeleteMessage"
            return answer

        try:
            return super().deliver(handler, wait_seconds=wait_seconds, retry_failed_at_once=retry_failed_at_once)
        except KeyboardInterrupt:
            if step is None:
                self._on_interrupt(delivering)
            raise
        except (ClientError, BotoCoreError) as exc:
            if step is None:
                raise
            raise aws_failure(f"SQS {step} from {self._queue_url}", exc) from None


def _jobs_of(event: Mapping[str, Any]) -> list[JobId]:
    """The jobs an SQS event of job messages carries (what a note can name)."""
    found: list[JobId] = []
    for record in event.get("Records", []):
        try:
            found.append(Job.from_json(str(record.get("body", "")), default_source=DEFAULT_SOURCE).id)
        except InvalidEventError:  # a body the function refuses itself: nothing to name
            continue
    return found


def deliver_locally(
    app: App,
    watcher: DayWatcher,
    progress: Progressing,
    *,
    timeout: float,
    dead_letters: DeadLetterWatch | None = None,
) -> Outcome:
    """``--local --wait``: deliver the retry queue to the handler in this process, one message at
    a time, until ``watcher``'s days are exported, a day is dead-lettered, the queue has nothing
    left, or ``timeout``."""
    from seq_export_cli.local_lambda import QUEUE_VISIBILITY_TIMEOUT_SECONDS  # noqa: PLC0415 - local only

    verbose = app.options.verbose
    minutes = QUEUE_VISIBILITY_TIMEOUT_SECONDS // 60
    return deliver_until_exported(
        app.client("sqs"),
        app.target.need("queue_url"),
        lambda event: invoke_local(event, verbose=verbose),
        watcher,
        progress,
        timeout=timeout,
        clock=app.clock,
        on_failures=lambda n: app.output.note(
            f"{counted(n, 'queued export')} failed; {'it returns' if n == 1 else 'they return'} to the queue after "
            "its visibility timeout "
            f"({minutes} minutes, as deployed)" + ("" if verbose else " (--verbose shows the function's logs)")
        ),
        dead_letters=dead_letters,
        on_interrupt=lambda jobs: app.output.note(
            f"interrupted while exporting {', '.join(map(str, jobs)) or 'a queued job'}: its message is back on "
            "the retry queue, and the same command run again exports it"
        ),
    )


def follow(
    app: App,
    followed: Mapping[JobId, str | None],
    baseline: Mapping[JobId, Version],
    *,
    local: bool,
    timeout: float,
    label: str,
) -> tuple[Outcome, DayWatcher, DeadLetterWatch]:
    """Follow the days of ``followed`` (each with the run that queued it) until they are exported
    (their objects replaced, against ``baseline``), one is dead-lettered, or the wait ends:
    delivering the local queue with ``local``, polling otherwise (the deployed function's event
    source delivers it). Progress on stderr, labelled ``label``."""
    bucket = app.target.need("bucket")
    s3 = app.client("s3")
    require_bucket(s3, bucket)
    keys = {job: app.target.key_for(job.date, job.kind, job.source) for job in followed}
    watcher = DayWatcher(s3, bucket, keys, baseline)
    dead_letters = dead_letter_watch(app, followed)
    with app.output.progress(len(keys), label) as progress:
        if local:
            outcome = deliver_locally(app, watcher, progress, timeout=timeout, dead_letters=dead_letters)
        else:
            outcome = poll_until_exported(
                watcher, progress, timeout=timeout, clock=app.clock, sleep=app.sleep, dead_letters=dead_letters
            )
    return outcome, watcher, dead_letters
