"""``seq-export run`` in process on fakes of the deployed function: the events it sends (one per
source and kind), what it prints of each answer, ``--wait`` against a stack; and the function's
answer read, its failures told in one line. The fakes: ``fake_aws`` (``tests/unit/conftest.py``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from seq_export_cli.errors import ServiceError
from seq_export_cli.invoke import invoke_function
from seq_export_cli.options import default_day
from tests.support import START, client_error, days_ago
from tests.support.cli import cli
from tests.support.cli_fakes import (
    FULL_OUTPUTS,
    RUN,
    SOURCE_NAMES_OUTPUT,
    TWO_SOURCES,
    FailingForLambda,
    FakeAws,
    FakeCloudFormation,
    FakeLambda,
    PerSourceLambda,
    day_object,
    exported_answer,
)


def test_invoke_is_synchronous_and_returns_the_summary() -> None:
    fake = FakeLambda(b'{"status": "exported", "date": "2026-11-22"}')

    answer = invoke_function(fake, "seq-export-export", {"date": "2026-11-22"})

    assert answer == {"status": "exported", "date": "2026-11-22"}
    [call] = fake.calls
    assert (call["FunctionName"], call["InvocationType"]) == ("seq-export-export", "RequestResponse")
    assert json.loads(call["Payload"]) == {"date": "2026-11-22"}


def test_a_function_error_becomes_one_line_naming_the_function_and_the_error() -> None:
    payload = {"errorType": "InvalidEventError", "errorMessage": "backfill 'from' is after 'to'\nsecond line"}
    fake = FakeLambda(json.dumps(payload).encode(), function_error="Unhandled")

    with pytest.raises(ServiceError) as caught:
        invoke_function(fake, "seq-export-export", {"from": "2026-11-22", "to": "2026-11-20"})

    assert str(caught.value) == (
        "function seq-export-export failed: InvalidEventError: backfill 'from' is after 'to' second line"
    )
    assert caught.value.exit_code == 4


def test_a_function_timeout_without_a_json_payload_is_still_reported() -> None:
    fake = FakeLambda(b"Task timed out after 900.00 seconds", function_error="Unhandled")

    with pytest.raises(ServiceError, match="function f failed: Unhandled: Task timed out"):
        invoke_function(fake, "f", {"date": "2026-11-22"})


def test_an_answer_that_is_not_a_json_object_is_a_service_error() -> None:
    with pytest.raises(ServiceError, match=r"function f answered b'\[1\]', not a JSON object"):
        invoke_function(FakeLambda(b"[1]"), "f", {"date": "2026-11-22"})


def test_a_refused_invoke_is_a_service_error_naming_the_call() -> None:
    class Refusing(FakeLambda):
        def invoke(self, **kwargs: Any) -> dict[str, Any]:
            raise client_error("AccessDeniedException", "Invoke")

    with pytest.raises(ServiceError, match="Lambda Invoke of function f failed: AccessDeniedException"):
        invoke_function(Refusing(), "f", {"date": "2026-11-22"})


def test_run_invokes_the_deployed_function_for_the_day_and_says_what_it_exported(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    fake_aws.clients["lambda"] = function = FakeLambda(exported_answer(day))

    code, out, _ = cli(capsys, "run", "--date", day)

    assert code == 0
    assert function.events == [{"date": day, "source": "default"}]
    assert [call["FunctionName"] for call in function.calls] == ["env-function"]
    assert out.splitlines() == [
        f"exported      subusers {day}: 3 records (1 ineligible) from 1 page",
        f"S3 object     s3://env-bucket/seq/subuser_scores/source=default/dt={day}/scores.jsonl (120 bytes)",
        "DynamoDB      2 latest scores written, 0 kept a newer day",
    ]


def test_run_of_every_kind_invokes_once_per_kind_subusers_first(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(3)
    fake_aws.clients["lambda"] = function = FakeLambda(exported_answer(day))

    code, _, _ = cli(capsys, "run", "--date", day, "--kind", "all")

    assert code == 0
    assert function.events == [
        {"date": day, "source": "default"},
        {"date": day, "source": "default", "kind": "account"},
    ]


def test_run_of_every_kind_skips_the_account_day_of_a_source_whose_function_config_has_it_off(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(3)
    fake_aws.environ["SEQ_SOURCES"] = ""  # a deployed stack: only the function knows its sources' settings
    fake_aws.clients["lambda"] = function = FakeLambda(exported_answer(day), environment={"SEQ_SOURCES": TWO_SOURCES})
    fake_aws.clients["cloudformation"] = FakeCloudFormation([*FULL_OUTPUTS, SOURCE_NAMES_OUTPUT])

    code, _, _ = cli(capsys, "--stack", "prod", "run", "--date", day, "--kind", "all")

    assert code == 0
    assert function.events == [
        {"date": day, "source": "global"},
        {"date": day, "source": "global", "kind": "account"},
        {"date": day, "source": "eu"},
    ]
    assert function.configurations_read == 1


def test_run_of_every_kind_takes_the_account_setting_from_seq_sources_without_asking_the_function(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(3)
    fake_aws.environ["SEQ_SOURCES"] = TWO_SOURCES
    fake_aws.clients["lambda"] = function = FakeLambda(exported_answer(day))

    code, _, _ = cli(capsys, "run", "--date", day, "--kind", "all")

    assert code == 0
    assert [(event["source"], event.get("kind", "subusers")) for event in function.events] == [
        ("global", "subusers"),
        ("global", "account"),
        ("eu", "subusers"),
    ]
    assert function.configurations_read == 0


def test_run_without_a_date_exports_yesterday(fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    fake_aws.clients["lambda"] = function = FakeLambda(exported_answer(days_ago(1)))

    code, _, _ = cli(capsys, "run")

    assert code == 0
    assert function.events == [{"date": default_day(), "source": "default"}]


def test_a_function_failure_exits_4_with_one_line_on_stderr(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = {"errorType": "RuntimeError", "errorMessage": "boom\nat line 2"}
    fake_aws.clients["lambda"] = FakeLambda(json.dumps(payload).encode(), function_error="Unhandled")

    code, out, err = cli(capsys, "run")

    assert (code, out) == (4, "")
    assert err == "seq-export: function env-function failed: RuntimeError: boom at line 2\n"


def not_ready(day: str) -> bytes:
    """The function's answer to a day SendGrid is still computing (re-scheduled under ``RUN``)."""
    summary = {"status": "not_ready", "source": "default", "date": day, "kind": "subusers", "run": RUN}
    return json.dumps(summary | {"attempt": 1, "next_attempt": 2, "next_attempt_delay_seconds": 300}).encode()


def test_run_wait_against_a_deployed_stack_polls_until_the_day_is_exported(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(1)
    fake_aws.clients["lambda"] = FakeLambda(not_ready(day))
    fake_aws.clients["s3"].put(day_object(day), records=7, at=START + 8)

    code, out, err = cli(capsys, "run", "--date", day, "--wait")

    assert code == 0
    assert fake_aws.clock.sleeps == [5, 5]
    assert f"{day} (subusers): SendGrid answered 202; following it until it is exported" in err
    assert out.splitlines()[0] == (
        f"exported      subusers {day}: 7 records, by a retry delivered from the queue once SendGrid was ready"
    )


def test_run_wait_stops_when_the_day_reaches_the_dead_letter_queue(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(1)
    fake_aws.clients["lambda"] = FakeLambda(not_ready(day))
    gave_up = {"source": "default", "kind": "subusers", "date": day, "attempt": 1, "reason": "gave_up_not_ready"}
    fake_aws.clients["sqs"].add(gave_up | {"run": "redrive", "gave_up_run": RUN}, at=START + 3)

    code, out, err = cli(capsys, "run", "--date", day, "--wait")

    assert code == 1
    assert out.splitlines() == [
        f"dead letter   subusers {day}: in the dead-letter queue (gave_up_not_ready); --wait stopped there"
    ]
    assert err.splitlines()[-1] == f"seq-export: default subusers {day} is in the dead-letter queue: gave_up_not_ready"


def test_a_given_up_day_names_the_attempt_that_gave_up_and_the_dead_letters_fresh_attempt_1(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(1)
    summary = {"status": "gave_up", "source": "default", "date": day, "kind": "subusers", "attempt": 16, "run": RUN}
    fake_aws.clients["lambda"] = FakeLambda(json.dumps(summary).encode())

    code, out, _ = cli(capsys, "run", "--date", day)

    assert code == 1
    assert out.splitlines() == [
        f"gave up       subusers {day}: SendGrid still answered 202 at attempt 16, the last; "
        "the dead-letter message is the job anew, at attempt 1"
    ]


def test_run_without_source_invokes_once_per_source_and_answers_in_one_section_each(
    two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    two_sources.clients["lambda"] = function = PerSourceLambda()

    code, out, _ = cli(capsys, "run", "--date", day)
    _, document, _ = cli(capsys, "run", "--date", day, "--json")

    assert code == 0
    assert function.events[:2] == [{"date": day, "source": "global"}, {"date": day, "source": "eu"}]
    assert out.splitlines() == [
        "source        global",
        f"exported      subusers {day}: 3 records (1 ineligible) from 1 page",
        f"S3 object     s3://env-bucket/seq/subuser_scores/source=global/dt={day}/scores.jsonl (120 bytes)",
        "DynamoDB      2 latest scores written, 0 kept a newer day",
        "",
        "source        eu",
        f"exported      subusers {day}: 3 records (1 ineligible) from 1 page",
        f"S3 object     s3://env-bucket/seq/subuser_scores/source=eu/dt={day}/scores.jsonl (120 bytes)",
        "DynamoDB      2 latest scores written, 0 kept a newer day",
    ]
    answer = json.loads(document)
    assert answer["date"] == day
    assert [(s["source"], [k["status"] for k in s["kinds"]]) for s in answer["sources"]] == [
        ("global", ["exported"]),
        ("eu", ["exported"]),
    ]


def test_run_with_source_invokes_that_source_only_and_answers_in_the_same_shape(
    two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    two_sources.clients["lambda"] = function = PerSourceLambda()

    code, out, _ = cli(capsys, "--json", "run", "--date", day, "--source", "global", "--kind", "all")

    assert code == 0
    assert function.events == [
        {"date": day, "source": "global"},
        {"date": day, "source": "global", "kind": "account"},
    ]
    answer = json.loads(out)
    (only,) = answer["sources"]
    assert (answer["date"], only["source"], len(only["kinds"])) == (day, "global", 2)


def test_run_goes_on_to_the_next_source_when_the_function_fails_for_one_and_exits_4(
    two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    two_sources.clients["lambda"] = function = FailingForLambda("global")

    code, out, _ = cli(capsys, "run", "--date", day)

    assert code == 4
    assert [event["source"] for event in function.events] == ["global", "eu"]
    sections = out.split("\n\n")
    assert sections[0].splitlines()[:2] == [
        "source        global",
        f"failed        subusers {day}: function env-function failed: Unhandled: SendGrid answered 401 Unauthorized",
    ]
    assert f"exported      subusers {day}: 3 records (1 ineligible) from 1 page" in sections[1]
