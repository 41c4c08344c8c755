"""``seq-export backfill`` in process on fakes of the deployed function: the event it sends, its
listing per day, kind and source with counts that add up, and ``--wait`` following the queued
days to S3 or to the dead-letter queue. The fakes: ``fake_aws`` (``tests/unit/conftest.py``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from seq_export.job_message import JobId
from seq_export_cli.options import DEFAULT_WAIT_TIMEOUT
from tests.support import START, days_ago
from tests.support.cli import cli, cli_json
from tests.support.cli_fakes import (
    RUN,
    FakeAws,
    FakeLambda,
    day_object,
)


def test_a_job_is_named_by_source_kind_and_day_as_the_functions_backfill_lists_it() -> None:
    job = JobId("eu", "account", "2026-11-22")

    assert str(job) == "eu account 2026-11-22"
    assert job.to_dict() == {"source": "eu", "kind": "account", "date": "2026-11-22"}


def backfilled(first: str, last: str) -> bytes:
    """The function's answer to a backfill of two days: the first already exported, the last queued."""
    answer = {
        "from": first,
        "to": last,
        "days": 2,
        "enqueued": [{"source": "default", "kind": "subusers", "date": last}],
        "skipped_already_exported": [{"source": "default", "kind": "subusers", "date": first}],
    }
    return json.dumps(answer).encode()


@pytest.mark.parametrize(
    ("options", "extra"),
    [([], {}), (["--force"], {"force": True}), (["--kind", "account"], {"kind": "account"})],
    ids=["plain", "force", "one-kind"],
)
def test_a_backfill_event_carries_force_and_kind_only_when_asked(
    options: list[str], extra: dict[str, Any], fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = days_ago(3), days_ago(2)
    fake_aws.clients["lambda"] = function = FakeLambda(backfilled(first, last))

    code, _, _ = cli(capsys, "backfill", "--from", first, "--to", last, *options)

    assert code == 0
    assert function.events == [{"from": first, "to": last, **extra}]


def test_a_backfill_says_per_day_and_kind_what_it_queued_and_what_it_skipped(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = days_ago(3), days_ago(2)
    fake_aws.clients["lambda"] = FakeLambda(backfilled(first, last))

    code, out, _ = cli(capsys, "backfill", "--from", first, "--to", last)

    assert code == 0
    assert out.splitlines() == [
        f"already exported  subusers  {first}",
        f"enqueued          subusers  {last}",
        f"2 days x 1 kind (subusers), {first} .. {last}: 1 enqueued, 1 already exported (--force exports them again)",
    ]


def test_a_backfill_wait_polls_until_the_queued_days_are_in_s3(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = days_ago(3), days_ago(2)
    fake_aws.clients["lambda"] = FakeLambda(backfilled(first, last))
    fake_aws.clients["s3"].put(f"seq/subuser_scores/source=default/dt={last}/scores.jsonl", at=START + 10)

    code, out, err = cli(capsys, "backfill", "--from", first, "--to", last, "--wait")

    assert code == 0
    assert fake_aws.clock.sleeps == [5, 5]
    assert out.splitlines()[-1] == f"exported          1/1 queued days ({first} .. {last})"
    assert err.splitlines() == ["seq-export: queued days exported: 0/1", "seq-export: queued days exported: 1/1"]


def test_a_backfill_wait_that_times_out_exits_1_naming_the_days_still_missing(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = days_ago(3), days_ago(2)
    fake_aws.clients["lambda"] = FakeLambda(backfilled(first, last))

    code, _, err = cli(capsys, "backfill", "--from", first, "--to", last, "--wait", "--timeout", "12")

    assert code == 1
    assert fake_aws.clock.sleeps == [5, 5, 2]
    assert err.splitlines()[-1] == f"seq-export: 1 of 1 queued days not exported within 12 s: subusers {last}"


def test_a_backfill_wait_with_json_prints_one_document_with_the_waits_outcome(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = days_ago(3), days_ago(2)
    fake_aws.clients["lambda"] = FakeLambda(backfilled(first, last))

    code, out, _ = cli(capsys, "--json", "backfill", "--from", first, "--to", last, "--wait")

    assert code == 1
    assert fake_aws.clock.now - START == DEFAULT_WAIT_TIMEOUT
    document = json.loads(out)
    assert document["counts"] == {"enqueued": 1, "skipped_already_exported": 1, "skipped_already_queued": 0}
    assert document["wait"] == {
        "outcome": "timeout",
        "queued": 1,
        "exported": 0,
        "missing": [{"source": "default", "kind": "subusers", "date": last}],
        "dead_lettered": [],
    }


def queued_answer(day: str, *, queued_by: str | None = None) -> bytes:
    """The function's answer to a backfill of one subusers' day: queued under ``RUN``, or
    already queued by the run ``queued_by``."""
    job = {"source": "default", "kind": "subusers", "date": day}
    answer = {
        "from": day,
        "to": day,
        "days": 1,
        "run": RUN,
        "enqueued": [] if queued_by else [job],
        "skipped_already_exported": [],
        "skipped_already_queued": [job | {"run": queued_by}] if queued_by else [],
    }
    return json.dumps(answer).encode()


def test_a_backfill_wait_counts_a_day_whose_object_was_there_before_only_once_it_is_replaced(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    fake_aws.clients["lambda"] = FakeLambda(queued_answer(day))
    s3 = fake_aws.clients["s3"]
    s3.put(day_object(day), etag='"before"')  # exported earlier; the backfill queues it again
    s3.put(day_object(day), etag='"after"', at=START + 12)

    code, out, _ = cli(capsys, "backfill", "--from", day, "--to", day, "--kind", "subusers", "--wait")

    assert code == 0
    assert fake_aws.clock.sleeps == [5, 5, 5]  # the old object did not count
    assert out.splitlines()[-1] == f"exported          1/1 queued days ({day} .. {day})"


def test_a_backfill_wait_ends_at_a_followed_days_dead_letter_naming_the_day_and_its_reason(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    fake_aws.clients["lambda"] = FakeLambda(queued_answer(day))
    dead_letters = fake_aws.clients["sqs"]
    gave_up = {"source": "default", "kind": "subusers", "date": day, "attempt": 1, "reason": "gave_up_not_ready"}
    dead_letters.add(gave_up | {"run": "another-run-1", "gave_up_run": "an-older-backfill"})  # not this one's
    dead_letters.add(gave_up | {"run": "fresh-redrive-run", "gave_up_run": RUN}, at=START + 7)

    code, _, err = cli(capsys, "backfill", "--from", day, "--to", day, "--kind", "subusers", "--wait")

    assert code == 1
    assert fake_aws.clock.sleeps == [5, 5]  # stopped at the dead letter, not at the timeout
    assert f"seq-export: default subusers {day} is in the dead-letter queue: gave_up_not_ready" in err.splitlines()
    assert err.splitlines()[-1] == (
        f"seq-export: 1 of 1 queued days not exported (the wait stopped at the dead letter): subusers {day}"
    )
    assert {call["VisibilityTimeout"] for call in dead_letters.receives} == {0}  # peeked, never consumed
    assert {call["WaitTimeSeconds"] for call in dead_letters.receives} == {0}


def test_a_dead_letter_sqs_moved_after_failed_deliveries_says_how_many_it_failed(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    fake_aws.clients["lambda"] = FakeLambda(queued_answer(day))
    moved = {"source": "default", "kind": "subusers", "date": day, "attempt": 1, "reason": "backfill", "run": RUN}
    fake_aws.clients["sqs"].add(moved, received=3)

    code, document, _ = cli_json(capsys, "backfill", "--from", day, "--to", day, "--kind", "subusers", "--wait")

    assert code == 1
    assert document["wait"]["outcome"] == "dead_lettered"
    [letter] = document["wait"]["dead_lettered"]
    assert (letter["date"], letter["run"], letter["why"], letter["given_up"]) == (
        day,
        RUN,
        "failed 3 deliveries",
        False,
    )


def test_a_backfill_lists_days_already_queued_with_counts_that_add_up_and_its_wait_follows_them(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    fake_aws.clients["lambda"] = FakeLambda(queued_answer(day, queued_by="an-earlier-backfill"))
    fake_aws.clients["s3"].put(day_object(day), at=START + 5)

    code, out, _ = cli(capsys, "backfill", "--from", day, "--to", day, "--kind", "subusers", "--wait")

    assert code == 0
    assert out.splitlines() == [
        f"already queued    subusers  {day}",
        f"1 day x 1 kind (subusers), {day} .. {day}: 0 enqueued, 0 already exported, 1 already queued "
        "(--force exports them again)",
        f"exported          1/1 queued days ({day} .. {day})",
    ]


def test_a_wait_without_a_dead_letter_queue_to_watch_is_a_configuration_error_before_anything_is_queued(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    del fake_aws.environ["DEAD_LETTER_QUEUE_URL"]
    fake_aws.clients["lambda"] = function = FakeLambda(queued_answer(day))  # its configuration cannot be read

    code, _, err = cli(capsys, "backfill", "--from", day, "--to", day, "--wait")

    assert code == 3
    assert "DEAD_LETTER_QUEUE_URL is not set" in err
    assert function.calls == []


def test_the_dead_letter_queue_url_is_read_from_the_functions_configuration_when_the_target_lacks_it(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    del fake_aws.environ["DEAD_LETTER_QUEUE_URL"]
    configured = {"DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/function-dlq"}
    fake_aws.clients["lambda"] = FakeLambda(queued_answer(day), environment=configured)
    fake_aws.clients["s3"].put(day_object(day), at=START + 5)

    code, _, _ = cli(capsys, "backfill", "--from", day, "--to", day, "--kind", "subusers", "--wait")

    assert code == 0
    assert {call["QueueUrl"] for call in fake_aws.clients["sqs"].receives} == {configured["DEAD_LETTER_QUEUE_URL"]}


def test_backfill_with_source_passes_it_in_the_event_and_lists_each_job_with_its_source(
    two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = days_ago(3), days_ago(2)
    answer = {
        "from": first,
        "to": last,
        "days": 2,
        "enqueued": [{"source": "eu", "kind": "subusers", "date": last}],
        "skipped_already_exported": [{"source": "eu", "kind": "subusers", "date": first}],
    }
    two_sources.clients["lambda"] = function = FakeLambda(json.dumps(answer).encode())

    code, out, _ = cli(capsys, "backfill", "--from", first, "--to", last, "--source", "eu", "--kind", "subusers")

    assert code == 0
    assert function.events == [{"from": first, "to": last, "kind": "subusers", "source": "eu"}]
    assert out.splitlines() == [
        f"already exported  eu  subusers  {first}",
        f"enqueued          eu  subusers  {last}",
        f"2 days x 1 kind (subusers) x 1 source (eu), {first} .. {last}: 1 enqueued, 1 already exported "
        "(--force exports them again)",
    ]


def test_a_backfill_of_every_source_is_ordered_by_day_then_configured_source_then_kind(
    two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    queued = [
        {"source": "eu", "kind": "subusers", "date": day},
        {"source": "global", "kind": "account", "date": day},
        {"source": "global", "kind": "subusers", "date": day},
    ]
    answer = {"from": day, "to": day, "days": 1, "enqueued": queued, "skipped_already_exported": []}
    two_sources.clients["lambda"] = function = FakeLambda(json.dumps(answer).encode())

    code, out, _ = cli(capsys, "--json", "backfill", "--from", day, "--to", day)

    assert code == 0
    assert function.events == [{"from": day, "to": day}]  # every source: the function's own list
    document = json.loads(out)
    assert [(row["source"], row["kind"]) for row in document["by_day"]] == [
        ("global", "subusers"),
        ("global", "account"),
        ("eu", "subusers"),
    ]
    assert sorted(
        (row["source"], row["kind"], row["date"]) for row in document["by_day"] if row["outcome"] == "enqueued"
    ) == [(q["source"], q["kind"], q["date"]) for q in queued]  # every day the function queued, once
    assert "enqueued" not in document  # the function's lists by outcome: by_day holds each day once


def test_a_backfill_answer_in_another_shape_is_a_service_error(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    answer = {"from": day, "to": day, "days": 1, "enqueued": [f"subusers:{day}"], "skipped_already_exported": []}
    fake_aws.clients["lambda"] = FakeLambda(json.dumps(answer).encode())

    code, _, err = cli(capsys, "backfill", "--from", day, "--to", day)

    assert code == 4
    assert "backfill summary lists" in err


def test_a_backfill_wait_of_several_sources_names_the_missing_days_by_source(
    two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    queued = [{"source": name, "kind": "subusers", "date": day} for name in ("global", "eu")]
    answer = {"from": day, "to": day, "days": 1, "enqueued": queued, "skipped_already_exported": []}
    two_sources.clients["lambda"] = FakeLambda(json.dumps(answer).encode())
    two_sources.clients["s3"].put(f"seq/subuser_scores/source=global/dt={day}/scores.jsonl", at=START + 1)

    code, _, err = cli(capsys, "backfill", "--from", day, "--to", day, "--kind", "subusers", "--wait", "--timeout", "5")

    assert code == 1
    assert err.splitlines()[-1] == f"seq-export: 1 of 2 queued days not exported within 5 s: eu subusers {day}"
