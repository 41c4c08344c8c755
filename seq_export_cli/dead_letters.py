"""The dead-letter queue as the commands read it: every message, peeked, never consumed.

A message is there for one of two reasons. The function gave the job up (SendGrid answered 202
``MAX_NOT_READY_ATTEMPTS`` times): it sent the message itself, a new job under a fresh run whose
``reason`` says why (``gave_up_not_ready``) and whose ``gave_up_run`` names the run it ends. Or
SQS moved a retry message there after ``maxReceiveCount`` failed deliveries: the body is the job
as it was queued (reason ``backfill``, ``scheduled``, ``not_ready``, ``continue``). ``DeadLetter``
says which, as ``why``: the message's reason, or "failed N deliveries".

Peeking is a ReceiveMessage with ``VisibilityTimeout=0`` and ``WaitTimeSeconds=0``, repeated
until a round brings no message not seen before (SQS answers a short poll from a sample of its
servers, so one round may miss some): the messages stay visible to everyone else. Each receive
counts in the messages' ``ApproximateReceiveCount``, so ``receive_count`` includes peeks (this
one's too); why a moved message is there comes from the retry queue's ``maxReceiveCount``
instead (``max_receive_count``).

A redrive on AWS is SQS's message move task (``start_move_task``: every message of the
dead-letter queue sent back to the retry queue, bodies unchanged, by SQS itself, asynchronously);
``newest_move_task`` reads how it is going. SQS runs one move task per queue at a time, so the
queue's newest task is the one just started, once it is listed (one started earlier, read
before, is told apart by its start time). Retries: botocore's standard mode, as every CLI
call; a move task retries nothing itself (a FAILED task says why, and is started again).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from seq_export.errors import InvalidEventError
from seq_export.job_message import Job, JobId
from seq_export_cli.errors import aws_failures_named

#: SQS's most messages per ReceiveMessage.
RECEIVE_LIMIT = 10
#: Rounds of a peek at most, however many messages keep appearing.
MAX_ROUNDS = 100
#: The prefix of the reason of a job the function gave up on (``not_ready.NotReadyPolicy``).
GAVE_UP = "gave_up"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message of the dead-letter queue, as far as its body and attributes say."""

    message_id: str
    body: str
    #: The job it is for; None when the body is not a job message.
    job: JobId | None = None
    #: The request the job belonged to: a give-up's ``gave_up_run``, else the job's own run.
    run: str | None = None
    #: The run the message itself carries (a give-up's fresh one): what a redriven job runs
    #: under, and what its next dead letter names as ``gave_up_run``.
    message_run: str | None = None
    attempt: int | None = None
    #: The message's own ``reason`` (``gave_up_not_ready``, or how it was queued: ``backfill``, ...).
    reason: str | None = None
    #: Receives so far, peeks included (SQS's ``ApproximateReceiveCount``).
    receive_count: int = 0
    #: When it was first sent (``SentTimestamp``; a moved message keeps its retry-queue time).
    sent_at: datetime | None = None
    #: The retry queue's ``maxReceiveCount``, when known: how many deliveries a moved message failed.
    max_receive_count: int | None = None

    @property
    def given_up(self) -> bool:
        """Sent by the function itself (it gave the job up), not moved by SQS after failed deliveries."""
        return (self.reason or "").startswith(GAVE_UP)

    @property
    def why(self) -> str:
        """Why it is there, in a few words: the message's reason, or the deliveries it failed."""
        if self.given_up:
            return str(self.reason)
        if self.max_receive_count is not None:
            return f"failed {self.max_receive_count} deliveries"
        return f"failed its deliveries (received {self.receive_count} times, peeks included)"

    def age(self, now: datetime) -> timedelta | None:
        """How long ago it was first sent."""
        return None if self.sent_at is None else now - self.sent_at

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the job's fields (null for a message that is no job, which keeps its
        ``body``), then the message's."""
        job = self.job.to_dict() if self.job is not None else dict.fromkeys(("source", "kind", "date"))
        return {
            **job,
            "job_message": self.job is not None,
            "run": self.run,
            "attempt": self.attempt,
            "reason": self.reason,
            "why": self.why,
            "given_up": self.given_up,
            "receive_count": self.receive_count,
            "max_receive_count": self.max_receive_count,
            "sent_at": None if self.sent_at is None else self.sent_at.isoformat(),
            "message_id": self.message_id,
            **({} if self.job is not None else {"body": self.body}),
        }


def dead_letter(message: Mapping[str, Any], *, default_source: str, max_receive_count: int | None) -> DeadLetter:
    """A received message as a ``DeadLetter``; a body that is no job keeps ``job`` None."""
    attributes = message.get("Attributes", {})
    body = str(message.get("Body", ""))
    common: dict[str, Any] = {
        "message_id": str(message.get("MessageId", "")),
        "body": body,
        "receive_count": _int(attributes.get("ApproximateReceiveCount")) or 0,
        "sent_at": _instant(attributes.get("SentTimestamp")),
        "max_receive_count": max_receive_count,
    }
    try:
        job = Job.from_json(body, default_source=default_source)
    except InvalidEventError:
        reason = _field(body, "reason")
        return DeadLetter(**common, reason=reason if isinstance(reason, str) else None)
    return DeadLetter(
        **common,
        job=job.id,
        run=job.gave_up_run or job.run,
        message_run=job.run,
        attempt=job.attempt,
        reason=job.reason,
    )


def peek_dead_letters(
    sqs: Any, queue_url: str, *, default_source: str, max_receive_count: int | None = None
) -> list[DeadLetter]:
    """Every message of the dead-letter queue at ``queue_url``, left where it is (module docstring)."""
    seen: dict[str, DeadLetter] = {}
    for _ in range(MAX_ROUNDS):
        with aws_failures_named(f"SQS ReceiveMessage from {queue_url}"):
            answer = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=RECEIVE_LIMIT,
                VisibilityTimeout=0,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
            )
        new = [m for m in answer.get("Messages", []) if m.get("MessageId") not in seen]
        if not new:
            break
        for message in new:
            letter = dead_letter(message, default_source=default_source, max_receive_count=max_receive_count)
            seen[letter.message_id] = letter
    return sorted(seen.values(), key=lambda letter: letter.sent_at or datetime.min.replace(tzinfo=UTC))


def max_receive_count(sqs: Any, retry_queue_url: str) -> int | None:
    """The retry queue's ``maxReceiveCount`` (its ``RedrivePolicy``): the deliveries a message
    fails before SQS moves it to the dead-letter queue; None when the queue has no policy."""
    with aws_failures_named(f"SQS GetQueueAttributes of {retry_queue_url}"):
        attributes = sqs.get_queue_attributes(QueueUrl=retry_queue_url, AttributeNames=["RedrivePolicy"])
    raw = attributes.get("Attributes", {}).get("RedrivePolicy")
    try:
        policy = json.loads(raw) if raw else {}
    except ValueError:
        return None
    return _int(policy.get("maxReceiveCount")) if isinstance(policy, dict) else None


def queue_arn(sqs: Any, queue_url: str) -> str:
    """The ARN of the queue at ``queue_url`` (what a message move task names queues by)."""
    with aws_failures_named(f"SQS GetQueueAttributes of {queue_url}"):
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


#: A message move task's states (SQS ListMessageMoveTasks); every one but these two is final.
MOVE_RUNNING = ("RUNNING", "CANCELLING")
MOVE_COMPLETED = "COMPLETED"
MOVE_FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class MoveTask:
    """A message move task as SQS reports it (ListMessageMoveTasksResultEntry)."""

    status: str
    #: Only while RUNNING (SQS names a task by its handle only then).
    handle: str | None = None
    moved: int | None = None
    to_move: int | None = None
    failure_reason: str | None = None
    #: When SQS started it (epoch milliseconds): what tells a task from the one before it.
    started: int | None = None

    @property
    def finished(self) -> bool:
        return self.status not in MOVE_RUNNING

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "moved": self.moved,
            "to_move": self.to_move,
            "failure_reason": self.failure_reason,
        }


def start_move_task(sqs: Any, source_arn: str, destination_arn: str) -> str:
    """Start SQS's message move task from the dead-letter queue ``source_arn`` to the queue
    ``destination_arn``; its task handle."""
    with aws_failures_named(f"SQS StartMessageMoveTask from {source_arn} to {destination_arn}"):
        answer = sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn)
    return str(answer["TaskHandle"])


def newest_move_task(sqs: Any, source_arn: str) -> MoveTask | None:
    """The newest message move task of the queue ``source_arn`` (one runs per queue at a time);
    None when it has none."""
    with aws_failures_named(f"SQS ListMessageMoveTasks of {source_arn}"):
        answer = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1)
    results = answer.get("Results", [])
    if not results:
        return None
    task = results[0]
    return MoveTask(
        status=str(task.get("Status", "")),
        handle=task.get("TaskHandle"),
        moved=_int(task.get("ApproximateNumberOfMessagesMoved")),
        to_move=_int(task.get("ApproximateNumberOfMessagesToMove")),
        failure_reason=task.get("FailureReason"),
        started=_int(task.get("StartedTimestamp")),
    )


class DeadLetterWatch:
    """The dead letters of the jobs a ``--wait`` follows: a message is a followed job's when it
    is for the same job (source, kind, day) and the same run (a give-up's ``gave_up_run``), so a
    dead letter of another request for the same day is never taken for this one's."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        followed: Mapping[JobId, str],
        *,
        default_source: str,
        max_receive_count: int | None = None,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._followed = dict(followed)
        self._default_source = default_source
        self._max_receive_count = max_receive_count
        self.found: dict[JobId, DeadLetter] = {}

    def check(self, pending: list[JobId]) -> dict[JobId, DeadLetter]:
        """Peek the queue when a followed job is still pending; the followed jobs found there so far."""
        if not any(job in self._followed and job not in self.found for job in pending):
            return self.found
        letters = peek_dead_letters(
            self._sqs, self._queue_url, default_source=self._default_source, max_receive_count=self._max_receive_count
        )
        for letter in letters:
            job = letter.job
            if job is not None and job in pending and letter.run is not None and self._followed.get(job) == letter.run:
                self.found.setdefault(job, letter)
        return self.found


def _field(body: str, name: str) -> Any:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get(name) if isinstance(data, dict) else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _instant(millis: Any) -> datetime | None:
    number = _int(millis)
    return None if number is None else datetime.fromtimestamp(number / 1000, tz=UTC)
