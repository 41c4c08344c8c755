"""``seq-export dead-letters``, the dead-letter runbook of docs/operations.md, in process against moto server
and the SEQ simulator: list what is in the dead-letter queue, fix the cause, move it back, the
day is exported. (The move task of a deployed stack, which moto lacks, is in
``tests/unit/test_cli_dead_letters.py``.)"""

from __future__ import annotations

import json
import re

import pytest

from local.seq_simulator import Fault, Scenario
from tests.support import Stack, days_ago
from tests.support.cli import cli, cli_json, day_lines, deploy

pytestmark = pytest.mark.integration

SENT = re.compile(r", sent (\d+[smhd])( \d+[smh])? ago$")


def give_up(stack: Stack, day: str) -> None:
    """SendGrid answers 202 once too often: the function sends ``day`` to the dead-letter queue."""
    stack.configure(MAX_NOT_READY_ATTEMPTS="1", EXPORT_ACCOUNT_SCORES="false")
    stack.simulator.reset(Scenario(subusers=40, not_ready=1_000))
    assert stack.invoke({"date": day})["status"] == "gave_up"


def fail_deliveries(stack: Stack, day: str) -> None:
    """A queued job whose every delivery fails (SendGrid answers 500): SQS moves it to the
    dead-letter queue after ``maxReceiveCount`` (3) receives."""
    stack.configure(EXPORT_ACCOUNT_SCORES="false")
    stack.simulator.reset(Scenario(subusers=40, faults=[Fault(page=1, status=500, times=1_000)]))
    body = {"source": "default", "kind": "subusers", "date": day, "attempt": 1, "reason": "backfill", "run": "bf-1"}
    stack.sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=json.dumps(body))
    for _ in range(3):
        assert stack.deliver(wait_seconds=1, retry_failed_at_once=True) is not None
    assert stack.deliver(wait_seconds=1) is None  # moved to the dead-letter queue


def not_a_job(stack: Stack) -> None:
    stack.sqs.send_message(QueueUrl=stack.resources.dlq_url, MessageBody="not a job message at all")


def three_kinds_of_dead_letter(stack: Stack) -> tuple[str, str]:
    """A day SQS moved after failed deliveries, a day the function gave up on, and a message
    that is no job; returns the two days (failed, given up)."""
    failed, given_up = days_ago(3), days_ago(2)
    fail_deliveries(stack, failed)
    give_up(stack, given_up)
    not_a_job(stack)
    return failed, given_up


def test_an_empty_dead_letter_queue_says_so_and_exits_0(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "dead-letters")
    json_code, document, _ = cli_json(capsys, "dead-letters")

    assert (code, out, err) == (0, "the dead-letter queue is empty\n", "")
    assert json_code == 0
    assert document == {"queue_url": stack.resources.dlq_url, "count": 0, "dead_letters": []}


def test_each_message_is_listed_with_its_source_kind_day_attempt_reason_and_age_and_exits_1(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    failed, given_up = three_kinds_of_dead_letter(stack)

    code, out, err = cli(capsys, "dead-letters")

    assert code == 1
    *rows, total = out.splitlines()
    assert sorted(SENT.sub("", row) for row in rows) == [
        f"dead letter   default subusers {failed}: attempt 1, failed 3 deliveries",
        f"dead letter   default subusers {given_up}: attempt 1, gave_up_not_ready",
        "dead letter   not a job message 'not a job message at all': failed 3 deliveries",
    ]
    assert all(SENT.search(row) for row in rows)
    assert total == f"3 messages in the dead-letter queue {stack.resources.dlq_url}"
    assert "`seq-export dead-letters --redrive` moves them back" in err
    assert stack.queue_counts(stack.resources.dlq_url) == {"visible": 3, "delayed": 0}  # peeked, never consumed


def test_the_json_document_has_each_job_as_fields_and_numbers_as_numbers(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    give_up(stack, day)
    not_a_job(stack)

    code, document, _ = cli_json(capsys, "dead-letters")

    assert code == 1
    assert (document["queue_url"], document["count"]) == (stack.resources.dlq_url, 2)
    by_kind = {entry["job_message"]: entry for entry in document["dead_letters"]}
    job, other = by_kind[True], by_kind[False]
    assert (job["source"], job["kind"], job["date"], job["attempt"], job["reason"], job["why"]) == (
        "default",
        "subusers",
        day,
        1,
        "gave_up_not_ready",
        "gave_up_not_ready",
    )
    assert job["given_up"] is True
    assert isinstance(job["age_seconds"], int)
    assert job["age_seconds"] >= 0
    assert job["max_receive_count"] == 3
    assert (other["source"], other["kind"], other["date"], other["attempt"]) == (None, None, None, None)
    assert other["body"] == "not a job message at all"


def test_redrive_local_moves_every_day_back_exports_it_and_empties_the_queue(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    failed, given_up = three_kinds_of_dead_letter(stack)
    stack.simulator.reset(Scenario(subusers=40))  # the cause is fixed: SendGrid answers every day

    code, out, err = cli(capsys, "dead-letters", "--redrive", "--local")
    status_codes = [cli(capsys, "status", "--date", day)[0] for day in (failed, given_up)]
    after, left, _ = cli(capsys, "dead-letters")

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "moved         3 messages from the dead-letter queue to the retry queue"
    assert sorted(lines[1:]) == [f"exported      default subusers {day}" for day in (failed, given_up)]
    assert "1 message without a job in the body moved back too: the function refuses such a message" in err
    assert len(day_lines(stack, failed)) == len(day_lines(stack, given_up)) == 40
    assert status_codes == [0, 0]
    assert (after, left) == (0, "the dead-letter queue is empty\n")  # the refused message: in flight, retry queue
    assert stack.queue_counts() == {"visible": 0, "delayed": 0}


def test_redrive_local_reports_a_day_that_is_dead_lettered_again_and_exits_1(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    give_up(stack, day)  # and SendGrid still has not computed the day

    code, document, _ = cli_json(capsys, "dead-letters", "--redrive", "--local", "--timeout", "60")

    assert code == 1
    redrive = document["redrive"]
    assert (redrive["mode"], redrive["moved"], redrive["outcome"]) == ("local", 1, "dead_lettered")
    assert redrive["days"] == [
        {"source": "default", "kind": "subusers", "date": day, "outcome": "dead_lettered", "why": "gave_up_not_ready"}
    ]
    assert [body["reason"] for body in stack.dlq_bodies()] == ["gave_up_not_ready"]
    assert stack.object_keys() == []


def test_redrive_of_an_empty_queue_moves_nothing_and_exits_0(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "dead-letters", "--redrive", "--local")

    assert (code, out) == (0, "the dead-letter queue is empty: nothing to move\n")


def test_a_deployed_stacks_dead_letter_queue_is_found_by_its_outputs(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    day = days_ago(2)
    give_up(stack, day)
    name = deploy(stack)
    for variable in ("DEAD_LETTER_QUEUE_URL", "RETRY_QUEUE_URL"):
        monkeypatch.delenv(variable)

    code, document, _ = cli_json(capsys, "--stack", name, "dead-letters")

    assert code == 1
    assert document["queue_url"] == stack.resources.dlq_url
    [letter] = document["dead_letters"]
    assert (letter["date"], letter["why"], letter["max_receive_count"]) == (day, "gave_up_not_ready", 3)


def test_a_terminal_gets_one_table_row_per_message(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    day = days_ago(2)
    give_up(stack, day)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # Rich: treat the captured stdout as a terminal

    code, out, _ = cli(capsys, "dead-letters")
    shown = re.sub(r"\x1b\[[0-9;]*m", "", out)  # styles aside

    assert code == 1
    assert "1 message in the dead-letter queue" in shown
    assert re.search(r"┃ source\s+┃ kind\s+┃ day\s+┃ attempt ┃ reason\s+┃\s+age ┃", shown)
    assert re.search(rf"│ default\s+│ subusers │ {day} │\s+1 │ gave_up_not_ready │", shown)
