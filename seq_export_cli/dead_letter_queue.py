"""``seq-export dead-letters``: the dead-letter runbook as one command.

Without options it lists every message of the export's dead-letter queue, peeked, never consumed
(``dead_letters.peek_dead_letters``): the source, kind and day of its job, the attempt, why it is
there and its age, one row per message; a message that is no job message is listed as such, with
its body. It exits 0 when the queue is empty and 1 when it holds anything: each message is a day
not exported, a finding as ``status``'s missing day is.

``--redrive`` moves every message back to the retry queue, bodies unchanged, and says how many.
Against AWS that is SQS's message move task (from the dead-letter queue's ARN to the retry
queue's), which SQS runs on its own; ``--wait`` polls it (ListMessageMoveTasks every few seconds)
until it completes, and the deployed function's event source then exports the days. With
``--local`` there is neither a move task (moto has none) nor a Lambda: the CLI moves the messages
itself (``local_lambda.move_messages``, as the tests do) and delivers the retry queue in this
process (``waiting.follow``, as ``--local --wait`` does) until the moved days are exported, one is
dead-lettered again, or ``--timeout`` passes, then reports each day.

Retries: botocore's standard mode for every call; the move task's progress is polled, not retried
(``waiting.POLL``: every 5 s until ``--timeout``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from seq_export.job_message import JobId
from seq_export_cli.app import App, with_app
from seq_export_cli.dead_letters import (
    MOVE_COMPLETED,
    MOVE_FAILED,
    DeadLetter,
    MoveTask,
    max_receive_count,
    newest_move_task,
    peek_dead_letters,
    queue_arn,
    start_move_task,
)
from seq_export_cli.errors import (
    EXIT_NEGATIVE,
    EXIT_OK,
    ServiceError,
    TargetConfigError,
    UsageError,
    aws_failures_named,
    one_line,
)
from seq_export_cli.local_lambda import move_messages
from seq_export_cli.options import DEFAULT_WAIT_TIMEOUT, local_options, shared_options
from seq_export_cli.output import counted, table
from seq_export_cli.waiting import POLL, Outcome, follow, versions_before

EMPTY = "the dead-letter queue is empty"
#: How much of a body that is no job message a line shows (``--json`` has it whole).
EXCERPT = 60


@click.command("dead-letters", short_help="List the dead-letter queue; --redrive moves it back to the retry queue.")
@click.option(
    "--redrive",
    is_flag=True,
    help="Move every message back to the retry queue, bodies unchanged, and say how many: SQS's message move task "
    "against AWS; with --local, moved here and delivered until the days are exported.",
)
@click.option(
    "--wait",
    is_flag=True,
    help="With --redrive against a deployed stack: poll the message move task until it completes and say how many "
    "messages it moved (--local always delivers the moved days).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    default=None,
    help="How long --wait (or --local's delivery) waits, then exit 1 saying what is pending "
    f"[default: {DEFAULT_WAIT_TIMEOUT:.0f}].",
)
@local_options
@shared_options
@with_app
def dead_letters(app: App, *, redrive: bool, wait: bool, timeout: float | None, local: bool) -> int:
    """List the export's dead-letter queue, one row per message: source, kind, day, attempt,
    why it is there and how long ago it was sent. Messages are peeked, never consumed.

    Exits 0 when the queue is empty, 1 when it holds a message. With --redrive: 0 once the
    messages are moved (and, with --local, their days exported), 1 when --wait ran out or a
    day did not export, 4 when the move task failed.
    """
    if (wait or timeout is not None) and not redrive:
        raise UsageError(f"{'--wait' if wait else '--timeout'} applies to --redrive")
    if timeout is not None and not (wait or local):
        raise UsageError("--timeout applies to --wait (or --local, whose redrive always delivers)")
    app.check_local(local)
    sqs = app.client("sqs")
    url = app.dead_letter_queue_url()
    letters = peek_dead_letters(sqs, url, default_source=app.target.sources[0], max_receive_count=_deliveries(app, sqs))
    listed = _listing(url, letters, datetime.now(UTC))
    if not redrive:
        app.output.answer(listed, _lines(letters, url, listed), _table(letters, listed))
        if letters:
            app.output.note(
                "fix the cause, then `seq-export dead-letters --redrive` moves them back to the retry queue"
            )
        return EXIT_NEGATIVE if letters else EXIT_OK
    if not letters:
        app.output.answer(listed | {"redrive": None}, [f"{EMPTY}: nothing to move"])
        return EXIT_OK
    limit = DEFAULT_WAIT_TIMEOUT if timeout is None else timeout
    if local:
        return _redrive_locally(app, sqs, url, letters, listed, timeout=limit)
    return _redrive(app, sqs, url, listed, wait=wait, timeout=limit)


def _deliveries(app: App, sqs: Any) -> int | None:
    """The retry queue's ``maxReceiveCount``, when its URL is known (a listing needs no more)."""
    try:
        retry_queue = app.retry_queue_url()
    except TargetConfigError:
        return None
    return max_receive_count(sqs, retry_queue)


def _redrive(app: App, sqs: Any, url: str, listed: dict[str, Any], *, wait: bool, timeout: float) -> int:
    """SQS's message move task from the dead-letter queue to the retry queue; with ``wait``,
    followed until it completes or ``timeout``."""
    retry_queue = app.retry_queue_url()
    source_arn, destination_arn = queue_arn(sqs, url), queue_arn(sqs, retry_queue)
    earlier = newest_move_task(sqs, source_arn) if wait else None  # not to be taken for this one
    handle = start_move_task(sqs, source_arn, destination_arn)
    count = listed["count"]
    redrive: dict[str, Any] = {
        "mode": "message_move_task",
        "task_handle": handle,
        "source_arn": source_arn,
        "destination_arn": destination_arn,
        "messages": count,
    }
    started = (
        f"moving        {messages(count)} from the dead-letter queue to the retry queue (message move task {handle})"
    )
    if not wait:
        app.output.answer(listed | {"redrive": redrive | {"status": "started"}}, [started])
        app.output.note(
            "SQS moves them on its own; the deployed function exports each day as its event source receives it: "
            "`seq-export status --date D` says when a day is exported, `seq-export dead-letters` what is left"
        )
        return EXIT_OK
    task = _follow_move(app, sqs, source_arn, count, timeout=timeout, earlier=earlier)
    redrive |= {"status": task.status if task else "unknown"} | (task.to_dict() if task else {})
    if task is not None and task.status == MOVE_FAILED:
        raise ServiceError(
            f"SQS message move task {handle} from {source_arn} to {destination_arn} failed: "
            f"{one_line(task.failure_reason or 'no reason given')} ({task.moved or 0} of {task.to_move} moved)"
        )
    if task is not None and task.status == MOVE_COMPLETED:
        moved = (
            f"moved         {messages(task.moved or 0)} back to the retry queue (message move task {handle} completed)"
        )
        app.output.answer(listed | {"redrive": redrive}, [started, moved])
        return EXIT_OK
    app.output.answer(listed | {"redrive": redrive}, [started])
    if task is None or not task.finished:
        state = f"is still running after {timeout:g} s"
    else:
        state = f"ended {task.status} ({task.moved or 0} of {task.to_move} moved)"
    app.output.note(f"message move task {handle} {state}: `seq-export dead-letters` shows what is left")
    return EXIT_NEGATIVE


def _follow_move(
    app: App, sqs: Any, source_arn: str, count: int, *, timeout: float, earlier: MoveTask | None
) -> MoveTask | None:
    """Poll the queue's newest move task (the one just started: one runs per queue at a time;
    ``earlier``, the newest before it, until it is listed) until it is finished or ``timeout``
    passes, with the messages moved as progress."""
    deadline = app.clock() + timeout
    polls = 0
    with app.output.progress(count, "dead letters moved") as progress:
        while True:
            task = newest_move_task(sqs, source_arn)
            if (
                task is not None
                and earlier is not None
                and earlier.started is not None
                and task.started == earlier.started
            ):
                task = None  # this one is not listed yet
            if task is not None:
                progress.update(task.moved or 0)
                if task.finished:
                    return task
            remaining = deadline - app.clock()
            if remaining <= 0:
                return task
            polls += 1
            app.sleep(POLL.pause(polls, within=remaining))


def _redrive_locally(
    app: App, sqs: Any, url: str, letters: Sequence[DeadLetter], listed: dict[str, Any], *, timeout: float
) -> int:
    """Move the messages as the move task would, then deliver the retry queue in this process
    until the moved days are exported, one is dead-lettered again, or ``timeout``."""
    retry_queue = app.retry_queue_url()
    # each job under the run its message carries: a day dead-lettered again names that run
    followed: dict[JobId, str | None] = {letter.job: letter.message_run for letter in letters if letter.job is not None}
    baseline = versions_before(app, list(followed))
    with aws_failures_named(f"SQS move of the messages of {url} to {retry_queue}"):
        moved = move_messages(sqs, url, retry_queue)
    header = f"moved         {messages(len(moved))} from the dead-letter queue to the retry queue"
    if not app.output.json:
        app.output.line(header)
    others = sum(1 for letter in letters if letter.job is None)
    days: list[dict[str, Any]] = []
    outcome: Outcome = "exported"
    if followed:
        outcome, watcher, watch = follow(
            app, followed, baseline, local=True, timeout=timeout, label="moved days exported"
        )
        for job in followed:
            letter = watch.found.get(job)
            if job in watcher.exported:
                days.append(job.to_dict() | {"outcome": "exported"})
            elif letter is not None:
                days.append(job.to_dict() | {"outcome": "dead_lettered", "why": letter.why})
            else:
                days.append(job.to_dict() | {"outcome": "not_exported", "why": outcome})
    redrive = {"mode": "local", "moved": len(moved), "outcome": outcome, "days": days, "not_job_messages": others}
    lines = [_day_line(day) for day in days]
    shown = table(
        f"moved {messages(len(moved))} back to the retry queue",
        ["source", "kind", "day", "outcome"],
        [(day["source"], day["kind"], day["date"], day["outcome"]) for day in days],
    )
    app.output.answer(listed | {"redrive": redrive}, lines, shown if days else None)
    if others:
        app.output.note(
            f"{messages(others)} without a job in the body moved back too: the function refuses such a message, "
            "and SQS returns it to the dead-letter queue after its failed deliveries"
        )
    return EXIT_OK if all(day["outcome"] == "exported" for day in days) else EXIT_NEGATIVE


def _day_line(day: Mapping[str, Any]) -> str:
    job = f"{day['source']} {day['kind']} {day['date']}"
    if day["outcome"] == "exported":
        return f"exported      {job}"
    if day["outcome"] == "dead_lettered":
        return f"dead letter   {job}: in the dead-letter queue again ({day['why']})"
    why = "--timeout passed" if day["why"] == "timeout" else "the retry queue has nothing left for it (see --verbose)"
    return f"not exported  {job}: {why}"


# -- the listing -------------------------------------------------------------------------------------
def _listing(url: str, letters: Sequence[DeadLetter], now: datetime) -> dict[str, Any]:
    """The ``--json`` document of the queue: each message with its age in seconds."""
    return {
        "queue_url": url,
        "count": len(letters),
        "dead_letters": [letter.to_dict() | {"age_seconds": _age_seconds(letter, now)} for letter in letters],
    }


def _age_seconds(letter: DeadLetter, now: datetime) -> int | None:
    age = letter.age(now)
    return None if age is None else max(0, int(age.total_seconds()))


def messages(count: int) -> str:
    return counted(count, "message")


def age_text(seconds: int | None) -> str:
    """A short age: ``45s``, ``12m``, ``3h 12m``, ``2d 4h``."""
    if seconds is None:
        return "-"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if days:
        return f"{days}d {hours % 24}h"
    if hours:
        return f"{hours}h {minutes % 60}m"
    return f"{minutes}m" if minutes else f"{seconds}s"


def _excerpt(body: str) -> str:
    text = one_line(body)
    return repr(text if len(text) <= EXCERPT else text[:EXCERPT] + "...")


def _lines(letters: Sequence[DeadLetter], url: str, listed: Mapping[str, Any]) -> list[str]:
    if not letters:
        return [EMPTY]
    lines = []
    for letter, entry in zip(letters, listed["dead_letters"], strict=True):
        age = age_text(entry["age_seconds"])
        if letter.job is None:
            lines.append(f"dead letter   not a job message {_excerpt(letter.body)}: {letter.why}, sent {age} ago")
        else:
            lines.append(f"dead letter   {letter.job}: attempt {letter.attempt}, {letter.why}, sent {age} ago")
    return [*lines, f"{messages(len(letters))} in the dead-letter queue {url}"]


def _table(letters: Sequence[DeadLetter], listed: Mapping[str, Any]) -> Any:
    if not letters:
        return None
    rows: list[tuple[str | int | None, ...]] = []
    for letter, entry in zip(letters, listed["dead_letters"], strict=True):
        age = age_text(entry["age_seconds"])
        if letter.job is None:
            rows.append((None, None, None, None, f"not a job message: {_excerpt(letter.body)}", age))
        else:
            rows.append((letter.job.source, letter.job.kind, letter.job.date, letter.attempt, letter.why, age))
    return table(
        f"{messages(len(letters))} in the dead-letter queue",
        ["source", "kind", "day", "attempt>", "reason", "age>"],
        rows,
    )
