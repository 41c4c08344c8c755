"""The seq-export command line, in process, against moto server and the SEQ simulator."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from local.seq_simulator import Scenario
from seq_export import wiring
from tests.support import Stack, days_ago
from tests.support.cli import cli, cli_json, day_lines, object_key

pytestmark = pytest.mark.integration


def scored(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["score"] is not None]


# -- run --------------------------------------------------------------------------------------
def test_run_local_exports_the_day_and_prints_the_functions_summary_as_json(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=30))
    day = days_ago(2)

    code, summary, _ = cli_json(capsys, "run", "--local", "--date", day)

    assert code == 0
    assert (summary["status"], summary["date"], summary["records"]) == ("exported", day, 30)
    assert len(day_lines(stack, day)) == 30


def test_run_local_prints_a_human_summary_and_keeps_the_functions_logs_off_stdout(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=12))
    day = days_ago(1)

    code, out, _ = cli(capsys, "run", "--date", day, "--local")

    assert code == 0
    assert f"exported      subusers {day}: 12 records" in out
    assert f"s3://{stack.resources.bucket}/{object_key(stack, day)}" in out
    assert '"level"' not in out  # no JSON log line of the function
    assert "CloudWatchMetrics" not in out  # no EMF blob


def test_run_local_that_sendgrid_answers_202_exits_1_saying_not_exported(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=5, not_ready=1))
    day = days_ago(1)

    code, summary, err = cli_json(capsys, "run", "--local", "--date", day)

    assert code == 1
    assert summary["status"] == "not_ready"
    assert "nothing delivers the retry queue locally: `seq-export run --local --wait`" in err
    assert stack.queue_counts()["delayed"] + stack.queue_counts()["visible"] == 1


def test_run_local_without_the_functions_environment_is_a_configuration_error_naming_the_variable(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEQ_API_KEY_SECRET_ID")
    wiring.use_dependencies(None)  # a fresh process: the function reads its environment

    code, out, err = cli(capsys, "run", "--local", "--date", days_ago(1))

    assert code == 3
    assert out == ""
    assert "SEQ_API_KEY_SECRET_ID" in err
    assert "Traceback" not in err


def test_run_without_a_function_name_is_a_configuration_error_naming_the_variable(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEQ_EXPORT_FUNCTION", raising=False)

    code, _, err = cli(capsys, "run", "--date", days_ago(1))

    assert code == 3
    assert "SEQ_EXPORT_FUNCTION is not set; set it, or point at a deployed stack with --stack NAME" in err
    assert "--local" in err


def test_run_against_a_function_that_does_not_exist_exits_4_with_one_line_naming_it(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEQ_EXPORT_FUNCTION", "no-such-export-function")

    code, out, err = cli(capsys, "run", "--date", days_ago(1))

    assert code == 4
    assert out == ""
    assert err.count("\n") == 1
    assert "Lambda Invoke of function no-such-export-function failed: ResourceNotFoundException" in err


def test_a_backfill_outside_sendgrids_window_is_a_usage_error_before_the_function_runs(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "backfill", "--local", "--from", days_ago(200), "--to", days_ago(199))

    assert code == 2
    assert out == ""
    assert "--from" in err
    assert "90-day window" in err
    assert stack.queue_counts() == {"visible": 0, "delayed": 0}


# -- backfill ---------------------------------------------------------------------------------
def test_backfill_local_wait_delivers_the_queue_until_every_day_is_exported_with_progress(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=20))
    days = [days_ago(n) for n in (4, 3, 2)]

    code, document, err = cli_json(
        capsys, "backfill", "--local", "--wait", "--timeout", "60", "--from", days[0], "--to", days[-1]
    )

    assert code == 0
    assert document["status"] == "enqueued"
    assert document["wait"] == {  # 3 days x 2 kinds
        "outcome": "exported",
        "queued": 6,
        "exported": 6,
        "missing": [],
        "dead_lettered": [],
    }
    assert [key for key in stack.data_keys() if "subuser_scores" in key] == [object_key(stack, day) for day in days]
    assert all(len(day_lines(stack, day)) == 20 for day in days)
    assert [line for line in err.splitlines() if "queued days exported" in line] == [
        f"seq-export: queued days exported: {n}/6" for n in range(7)
    ]  # one day at a time
    assert stack.queue_counts() == {"visible": 0, "delayed": 0}


def test_backfill_local_wait_waits_for_a_day_sendgrid_is_still_computing(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.configure(NOT_READY_DELAY_SECONDS="1")
    stack.simulator.reset(Scenario(subusers=8, not_ready=1))
    day = days_ago(3)

    code, out, err = cli(
        capsys, "backfill", "--local", "--wait", "--kind", "subusers", "--timeout", "60", "--from", day, "--to", day
    )

    assert code == 0
    assert "exported          1/1 queued days" in out
    assert "queued days exported: 0/1" in err
    assert "queued days exported: 1/1" in err
    assert len(day_lines(stack, day)) == 8


def test_backfill_without_wait_only_enqueues_one_message_per_day(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "backfill", "--local", "--from", days_ago(5), "--to", days_ago(2))

    assert code == 0
    assert (
        f"4 days x 2 kinds (account, subusers), {days_ago(5)} .. {days_ago(2)}: 8 enqueued, 0 already exported" in out
    )
    assert stack.queue_counts()["visible"] == 8
    assert stack.data_keys() == []


# -- lookup -----------------------------------------------------------------------------------
@pytest.fixture
def exported(stack: Stack) -> list[dict[str, Any]]:
    """One exported day of 40 subusers with fractional scores; its lines."""
    stack.simulator.reset(Scenario(subusers=40, fractional=True))
    day = days_ago(1)
    assert stack.invoke({"date": day})["status"] == "exported"
    return day_lines(stack, day)


def test_lookup_by_user_id_prints_the_latest_score(
    stack: Stack, exported: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    line = scored(exported)[3]

    code, document, _ = cli_json(capsys, "lookup", line["user_id"])

    assert code == 0
    assert document["query"] == {"user_id": line["user_id"]}
    [found] = document["subusers"]
    assert list(found) == ["user_id", "source", "username", "date", "score", "metrics", "updated_at"]
    assert found["source"] == "default"
    assert (found["user_id"], found["username"], found["date"]) == (line["user_id"], line["username"], line["date"])
    assert Decimal(str(found["score"])) == line["score"]
    assert {k: Decimal(str(v)) for k, v in found["metrics"].items()} == line["metrics"]
    assert found["updated_at"] == line["exported_at"]


def test_lookup_by_username_uses_the_username_index(
    stack: Stack, exported: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    line = scored(exported)[5]

    code, out, _ = cli(capsys, "lookup", "--username", line["username"])

    assert code == 0
    assert f"user_id     {line['user_id']}\n" in out
    assert "source      default\n" in out
    assert f"username    {line['username']}\n" in out
    assert f"score       {line['score']}\n" in out


def test_lookup_of_an_unknown_user_id_exits_1(
    stack: Stack, exported: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, document, err = cli_json(capsys, "lookup", "999999")

    assert code == 1
    assert document["subusers"] == []
    assert (document["reason"], document["newest_day"]) == ("unknown", days_ago(1))
    assert err == ""


def test_lookup_of_an_unknown_username_exits_1(
    stack: Stack, exported: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "lookup", "--username", "nobody-here")

    assert code == 1
    assert out == (
        f"no latest score for username 'nobody-here': SendGrid did not return it on {days_ago(1)}, "
        "the newest exported day\n"
    )
    assert err == ""


def test_lookup_of_an_ineligible_subuser_exits_1_since_it_has_no_latest_score(
    stack: Stack, exported: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    ineligible = next(line for line in exported if line["score"] is None)

    code, out, _ = cli(capsys, "lookup", ineligible["user_id"])

    assert code == 1
    assert f"SendGrid returned it on {days_ago(1)}, the newest exported day, without a score (not eligible)" in out


def test_lookup_never_shows_the_exporters_control_item(
    stack: Stack, exported: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack.item("#seq-export#control") is not None  # it is there...

    code, document, _ = cli_json(capsys, "lookup", "#seq-export#control")

    assert code == 1  # ...but it is not a subuser
    assert document["subusers"] == []


# -- low-scores -------------------------------------------------------------------------------
def test_low_scores_lists_every_subuser_at_or_below_the_score_lowest_first(
    stack: Stack, exported: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    expected = sorted(
        ((line["score"], int(line["user_id"])) for line in scored(exported) if line["score"] <= Decimal("2.5")),
    )
    assert 3 <= len(expected) < len(scored(exported))  # the threshold splits the day

    code, document, _ = cli_json(capsys, "low-scores", "--max", "2.5")

    assert code == 0
    assert [(Decimal(str(s["score"])), int(s["user_id"])) for s in document["subusers"]] == expected
    assert document["matched"] == len(expected)
    assert document["scanned"] == len(scored(exported)) + 1  # every item, the control item too
    assert all(s["username"] and s["date"] == exported[0]["date"] for s in document["subusers"])


def test_low_scores_limit_prints_only_the_lowest(
    stack: Stack, exported: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    lowest = sorted((line["score"], int(line["user_id"])) for line in scored(exported))[:3]

    code, document, _ = cli_json(capsys, "low-scores", "--max", "5", "--limit", "3")

    assert code == 0
    assert [(Decimal(str(s["score"])), int(s["user_id"])) for s in document["subusers"]] == lowest
    assert document["matched"] == len(scored(exported))


def test_low_scores_human_output_is_a_table_and_a_count(
    stack: Stack, exported: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    matching = [line for line in scored(exported) if line["score"] <= 2]

    code, out, _ = cli(capsys, "low-scores", "--max", "2")

    assert code == 0
    rows = out.splitlines()
    assert rows[0].split() == ["score", "user_id", "source", "username", "date"]
    assert all(row.split()[2] == "default" for row in rows[1:-1])
    assert len(rows) == len(matching) + 2
    assert rows[-1].startswith(f"{len(matching)} subusers with a latest score <= 2;")


def test_low_scores_with_nothing_at_or_below_exits_1(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, document, err = cli_json(capsys, "low-scores", "--max", "5")  # nothing exported yet

    assert code == 1
    assert (document["subusers"], document["matched"]) == ([], 0)
    assert err == ""


# -- status -----------------------------------------------------------------------------------
def test_status_of_an_exported_day_gives_size_time_and_line_count(
    stack: Stack, exported: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(1)
    head = stack.session.client("s3").head_object(Bucket=stack.resources.bucket, Key=object_key(stack, day))

    code, document, _ = cli_json(capsys, "status", "--date", day)

    assert code == 0
    assert document["exported"] is True
    assert document["key"] == object_key(stack, day)
    assert document["bytes"] == head["ContentLength"]
    assert document["last_modified"] == head["LastModified"].isoformat()
    assert (document["records"], document["records_from"]) == (40, "metadata")


def test_status_counts_the_lines_when_the_object_has_no_records_metadata(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(9)
    body = b"".join(b'{"user_id": "%d"}\n' % n for n in range(7)) + b'{"user_id": "last"}'
    stack.session.client("s3").put_object(Bucket=stack.resources.bucket, Key=object_key(stack, day), Body=body)

    code, out, _ = cli(capsys, "status", "--date", day)

    assert code == 0
    assert f"{len(body)} bytes, 8 lines (counted)" in out


def test_status_of_a_day_not_exported_exits_1(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    day = days_ago(7)

    code, document, err = cli_json(capsys, "status", "--date", day)

    assert code == 1
    assert document == {
        "date": day,
        "source": "default",
        "kind": "subusers",
        "exported": False,
        "bucket": stack.resources.bucket,
        "key": object_key(stack, day),
    }
    assert err == ""  # the answer is on stdout, once


def test_status_against_a_bucket_that_does_not_exist_is_an_aws_error_not_a_missing_day(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCORES_BUCKET", "no-such-bucket-for-seq-export")

    code, _, err = cli(capsys, "status", "--date", days_ago(1))

    assert code == 4
    assert "S3 bucket no-such-bucket-for-seq-export does not exist" in err


# -- configuration and AWS errors -----------------------------------------------------------------
def test_missing_table_variable_is_a_configuration_error_naming_it(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LATEST_SCORES_TABLE")

    code, out, err = cli(capsys, "--json", "lookup", "100001")

    assert code == 3
    assert out == ""
    assert "LATEST_SCORES_TABLE is not set" in err


def test_a_table_that_does_not_exist_exits_4_with_one_line_naming_the_call_and_table(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LATEST_SCORES_TABLE", "no-such-table")

    code, out, err = cli(capsys, "low-scores", "--max", "3")

    assert code == 4
    assert out == ""
    assert err.count("\n") == 1
    assert "DynamoDB Scan of table no-such-table" in err
    assert "ResourceNotFoundException" in err
    assert "Traceback" not in err


# -- --stack ----------------------------------------------------------------------------------
def deploy_outputs(stack: Stack, name: str, outputs: dict[str, str]) -> None:
    """A CloudFormation stack on moto whose outputs name the local resources, as the template's do."""
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-marker"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    stack.session.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


def test_stack_option_reads_the_targets_from_the_stacks_outputs(
    stack: Stack, exported: list[dict[str, Any]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy_outputs(
        stack,
        "seq-export-test",
        {
            "ScoresBucketName": stack.resources.bucket,
            "ScoresPrefix": "seq/subuser_scores",
            "LatestScoresTableName": stack.resources.table,
        },
    )
    for name in ("SCORES_BUCKET", "SCORES_PREFIX", "LATEST_SCORES_TABLE"):
        monkeypatch.delenv(name)
    user = scored(exported)[0]["user_id"]

    status_code, status, _ = cli_json(capsys, "--stack", "seq-export-test", "status", "--date", days_ago(1))
    lookup_code, lookup, _ = cli_json(capsys, "lookup", user, "--stack", "seq-export-test")

    assert (status_code, status["bucket"], status["records"]) == (0, stack.resources.bucket, 40)
    assert (lookup_code, lookup["subusers"][0]["user_id"]) == (0, user)


def test_stack_without_the_needed_output_is_a_configuration_error_naming_it(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy_outputs(stack, "seq-export-partial", {"ScoresBucketName": stack.resources.bucket})

    code, _, err = cli(capsys, "--stack", "seq-export-partial", "lookup", "100001")

    assert code == 3
    assert "stack seq-export-partial has no output LatestScoresTableName" in err


def test_a_stack_that_does_not_exist_is_a_configuration_error(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "--stack", "no-such-stack", "status", "--date", days_ago(1))

    assert code == 3
    assert err == "seq-export: stack no-such-stack does not exist in region us-east-1; check --stack and --region\n"
