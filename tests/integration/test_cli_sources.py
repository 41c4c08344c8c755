"""The command line on a stack of several sources, in process, against moto server and the SEQ
simulator: ``--source`` on run, backfill, status and report (every source by default, one
section each), a source the stack does not have, ``sources``, and lookup and low-scores naming
the source of each latest score. Both sources are served by the one simulator and API key."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from local.seq_simulator import Scenario
from seq_export.models import ACCOUNT, SUBUSERS
from tests.support import Stack, days_ago
from tests.support.cli import cli, cli_json, configure_sources, day_lines, object_key

pytestmark = pytest.mark.integration

SOURCES = ("global", "eu")


@pytest.fixture
def two_sources(stack: Stack) -> Stack:
    """The stack configured with the sources ``global`` and ``eu``, SEQ_SOURCES in the CLI's
    environment too; 12 subusers with fractional scores."""
    configure_sources(stack, *SOURCES)
    stack.simulator.reset(Scenario(subusers=12, fractional=True))
    return stack


def queued_jobs(stack: Stack) -> list[tuple[str, str, str]]:
    """(source, kind, date) of every message in the retry queue (taken off it)."""
    jobs: list[tuple[str, str, str]] = []
    while True:
        answer = stack.sqs.receive_message(QueueUrl=stack.resources.queue_url, MaxNumberOfMessages=10)
        messages = answer.get("Messages", [])
        if not messages:
            return sorted(jobs)
        for message in messages:
            body = json.loads(message["Body"])
            jobs.append((body["source"], body["kind"], body["date"]))
            stack.sqs.delete_message(QueueUrl=stack.resources.queue_url, ReceiptHandle=message["ReceiptHandle"])


# -- run --------------------------------------------------------------------------------------------
def test_run_without_source_exports_every_source_one_section_each(
    two_sources: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)

    code, out, _ = cli(capsys, "run", "--local", "--date", day)

    assert code == 0
    sections = out.split("\n\n")
    assert [section.splitlines()[0] for section in sections] == ["source        global", "source        eu"]
    for name, section in zip(SOURCES, sections, strict=True):
        assert f"exported      subusers {day}: 12 records" in section
        assert f"s3://{two_sources.resources.bucket}/{object_key(two_sources, day, source=name)}" in section
        lines = day_lines(two_sources, day, source=name)
        assert len(lines) == 12
        assert {line["source"] for line in lines} == {name}


def test_run_with_source_exports_that_source_only_in_the_functions_summary_shape(
    two_sources: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)

    code, summary, _ = cli_json(capsys, "run", "--local", "--date", day, "--source", "eu")
    _, both, _ = cli_json(capsys, "run", "--local", "--date", days_ago(3))

    assert code == 0
    assert (summary["status"], summary["source"], summary["date"], summary["records"]) == ("exported", "eu", day, 12)
    assert summary["s3_key"] == object_key(two_sources, day, source="eu")
    assert [key for key in two_sources.data_keys() if day in key] == [object_key(two_sources, day, source="eu")]
    assert both["date"] == days_ago(3)
    assert [(s["source"], s["status"]) for s in both["sources"]] == [("global", "exported"), ("eu", "exported")]


# -- backfill ---------------------------------------------------------------------------------------
def test_backfill_with_source_queues_that_sources_days_only(
    two_sources: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = days_ago(3), days_ago(2)

    code, document, _ = cli_json(capsys, "backfill", "--local", "--from", first, "--to", last, "--source", "eu")

    assert code == 0
    expected = sorted(("eu", kind, day) for kind in (SUBUSERS, ACCOUNT) for day in (first, last))
    assert sorted((j["source"], j["kind"], j["date"]) for j in document["enqueued"]) == expected
    assert {row["source"] for row in document["by_day"]} == {"eu"}
    assert queued_jobs(two_sources) == expected


def test_backfill_without_source_queues_every_source_and_says_so_per_source(
    two_sources: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    assert two_sources.invoke({"date": day, "source": "eu"})["status"] == "exported"

    code, out, _ = cli(capsys, "backfill", "--local", "--kind", "subusers", "--from", day, "--to", day)

    assert code == 0
    assert out.splitlines() == [
        f"enqueued          global  subusers  {day}",
        f"already exported  eu      subusers  {day}",
        f"1 days x 1 kinds (subusers) x 2 sources (global, eu), {day} .. {day}: 1 enqueued, 1 already exported "
        "(--force exports them again)",
    ]
    assert queued_jobs(two_sources) == [("global", SUBUSERS, day)]


def test_backfill_local_wait_exports_every_sources_days(two_sources: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    first, last = days_ago(3), days_ago(2)

    code, document, _ = cli_json(
        capsys, "backfill", "--local", "--wait", "--timeout", "60", "--kind", "subusers", "--from", first, "--to", last
    )

    assert code == 0
    assert document["wait"] == {"outcome": "exported", "queued": 4, "exported": 4, "missing": [], "dead_lettered": []}
    for name in SOURCES:
        for day in (first, last):
            assert {line["source"] for line in day_lines(two_sources, day, source=name)} == {name}


# -- status and report ------------------------------------------------------------------------------
def test_status_answers_per_source_and_source_picks_one(two_sources: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    day = days_ago(2)
    assert two_sources.invoke({"date": day, "source": "eu"})["status"] == "exported"

    every, both, _ = cli_json(capsys, "status", "--date", day)
    one, eu, _ = cli_json(capsys, "status", "--date", day, "--source", "eu")
    _, text, _ = cli(capsys, "status", "--date", day)

    assert every == 1  # global's day is not exported
    assert both["date"] == day
    assert [(s["source"], s["exported"]) for s in both["sources"]] == [("global", False), ("eu", True)]
    assert one == 0
    assert (eu["source"], eu["exported"], eu["records"], eu["key"]) == (
        "eu",
        True,
        12,
        object_key(two_sources, day, source="eu"),
    )
    assert text.splitlines() == [
        "source        global",
        f"not exported  subusers {day}: no object s3://{two_sources.resources.bucket}/"
        + object_key(two_sources, day, source="global"),
        "",
        "source        eu",
        f"exported      subusers {day}: s3://{two_sources.resources.bucket}/"
        + object_key(two_sources, day, source="eu"),
        *text.splitlines()[-2:],
    ]


def test_report_reports_each_source_against_its_own_previous_day(
    two_sources: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    for event in (
        {"date": days_ago(4), "source": "global"},
        {"date": days_ago(3), "source": "eu"},
        {"date": days_ago(2), "source": "global"},
        {"date": days_ago(2), "source": "eu"},
    ):
        assert two_sources.invoke(event)["status"] == "exported"

    code, document, _ = cli_json(capsys, "report", "--date", days_ago(2))
    one, eu, _ = cli_json(capsys, "report", "--date", days_ago(2), "--source", "eu", "--limit", "2")
    _, text, _ = cli(capsys, "report", "--date", days_ago(2))

    assert code == 0
    assert [(r["source"], r["previous_date"], r["subusers"]) for r in document["sources"]] == [
        ("global", days_ago(4), 12),
        ("eu", days_ago(3), 12),
    ]
    assert (one, eu["source"], eu["previous_date"], len(eu["lowest"])) == (0, "eu", days_ago(3), 2)
    assert [line for line in text.splitlines() if line.startswith("source ")] == [
        "source        global",
        "source        eu",
    ]


def test_report_of_a_day_one_source_lacks_exits_1_and_still_reports_the_other(
    two_sources: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    assert two_sources.invoke({"date": day, "source": "global"})["status"] == "exported"

    code, document, _ = cli_json(capsys, "report", "--date", day)

    assert code == 1
    assert document["sources"][0]["source"] == "global"
    assert document["sources"][0]["subusers"] == 12
    assert document["sources"][1] == {"date": day, "source": "eu", "exported": False}


# -- a source the stack does not have ---------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--local", "--date", days_ago(2)],
        ["backfill", "--local", "--from", days_ago(3), "--to", days_ago(2)],
        ["status", "--date", days_ago(2)],
        ["report", "--date", days_ago(2)],
        ["migrate-lake"],
    ],
    ids=lambda argv: argv[0],
)
def test_an_unknown_source_exits_2_listing_the_configured_ones_and_changes_nothing(
    argv: list[str], two_sources: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, *argv, "--source", "us")

    assert (code, out) == (2, "")
    assert (
        err == "seq-export: --source: unknown source 'us'; the configured sources are global, eu (from SEQ_SOURCES)\n"
    )
    assert two_sources.simulator.requests == []
    assert two_sources.queue_counts() == {"visible": 0, "delayed": 0}
    assert two_sources.data_keys() == []


# -- sources ----------------------------------------------------------------------------------------
def test_sources_lists_each_configured_source_with_its_newest_day_of_each_kind(
    two_sources: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    for event in (
        {"date": days_ago(4), "source": "global"},
        {"date": days_ago(2), "source": "global"},
        {"date": days_ago(3), "source": "eu", "kind": ACCOUNT},
    ):
        assert two_sources.invoke(event)["status"] == "exported"

    code, document, _ = cli_json(capsys, "sources")
    _, out, _ = cli(capsys, "sources")

    assert code == 0
    assert document["configured_from"] == "from SEQ_SOURCES"
    assert document["sources"] == [
        {
            "source": "global",
            "configured": True,
            SUBUSERS: {"newest": days_ago(2), "days": 2},
            ACCOUNT: {"newest": None, "days": 0},
        },
        {
            "source": "eu",
            "configured": True,
            SUBUSERS: {"newest": None, "days": 0},
            ACCOUNT: {"newest": days_ago(3), "days": 1},
        },
    ]
    assert document["legacy_days"] == {SUBUSERS: 0, ACCOUNT: 0}
    assert out.splitlines() == [
        "sources       global, eu (from SEQ_SOURCES)",
        f"global        subusers newest {days_ago(2)} (2 days)  account none exported",
        f"eu            subusers none exported  account newest {days_ago(3)} (1 day)",
    ]


def test_sources_marks_a_source_found_in_the_lake_that_is_no_longer_configured(
    two_sources: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert two_sources.invoke({"date": days_ago(2), "source": "eu"})["status"] == "exported"
    configure_sources(two_sources, "global")  # eu removed from the stack

    code, document, _ = cli_json(capsys, "sources")

    assert code == 0
    assert [(s["source"], s["configured"], s[SUBUSERS]["newest"]) for s in document["sources"]] == [
        ("global", True, None),
        ("eu", False, days_ago(2)),
    ]


def test_sources_of_a_single_source_stack_is_the_default_source(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.reset(Scenario(subusers=5))
    assert stack.invoke({"date": days_ago(1)})["status"] == "exported"

    code, out, _ = cli(capsys, "sources")

    assert code == 0
    assert out.splitlines() == [
        "sources       default (SEQ_SOURCES is not set)",
        f"default       subusers newest {days_ago(1)} (1 day)  account none exported",
    ]


# -- lookup and low-scores --------------------------------------------------------------------------
@pytest.fixture
def eu_day(two_sources: Stack) -> list[dict[str, Any]]:
    """eu's exported day: its latest scores carry eu."""
    day = days_ago(1)
    assert two_sources.invoke({"date": day, "source": "eu"})["status"] == "exported"
    return day_lines(two_sources, day, source="eu")


def test_lookup_shows_the_source_of_the_latest_score(
    two_sources: Stack, eu_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    line = next(line for line in eu_day if line["score"] is not None)

    code, document, _ = cli_json(capsys, "lookup", line["user_id"])
    _, out, _ = cli(capsys, "lookup", "--username", line["username"])

    assert code == 0
    assert document["subusers"][0]["source"] == "eu"
    assert out.splitlines()[:2] == [f"user_id     {line['user_id']}", "source      eu"]


def test_lookup_of_an_ineligible_subuser_names_the_source_that_returned_it(
    two_sources: Stack, eu_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    ineligible = next(line for line in eu_day if line["score"] is None)

    code, document, _ = cli_json(capsys, "lookup", ineligible["user_id"])
    _, out, _ = cli(capsys, "lookup", "999999")

    assert code == 1
    assert (document["reason"], document["source"], document["newest_day"]) == ("not_eligible", "eu", days_ago(1))
    assert document["newest_days"] == {"eu": days_ago(1)}
    assert out == (
        f"no latest score for user_id '999999': no source returned it on its newest exported day (eu {days_ago(1)})\n"
    )


def test_low_scores_shows_the_source_of_each_latest_score(
    two_sources: Stack, eu_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, document, _ = cli_json(capsys, "low-scores", "--max", "5")
    _, out, _ = cli(capsys, "low-scores", "--max", "5")

    assert code == 0
    assert document["matched"] == sum(1 for line in eu_day if line["score"] is not None)
    assert {s["source"] for s in document["subusers"]} == {"eu"}
    rows = out.splitlines()
    assert rows[0].split() == ["score", "user_id", "source", "username", "date"]
    assert {row.split()[2] for row in rows[1:-1]} == {"eu"}


# -- the sources of a deployed stack, and a terminal ---------------------------------------------------
def test_stack_option_takes_the_sources_from_the_source_names_output(
    two_sources: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = {
        "ScoresBucketName": two_sources.resources.bucket,
        "LatestScoresTableName": two_sources.resources.table,
        "SourceNames": "global,eu",
    }
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "seq-export-sources-marker"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    two_sources.session.client("cloudformation").create_stack(
        StackName="seq-export-sources", TemplateBody=json.dumps(template)
    )
    for name in ("SEQ_SOURCES", "SCORES_BUCKET", "LATEST_SCORES_TABLE"):
        monkeypatch.delenv(name)
    assert two_sources.invoke({"date": days_ago(2), "source": "eu"})["status"] == "exported"

    code, document, _ = cli_json(capsys, "--stack", "seq-export-sources", "status", "--date", days_ago(2))
    unknown, _, err = cli(capsys, "--stack", "seq-export-sources", "status", "--source", "us")

    assert code == 1
    assert [(s["source"], s["exported"]) for s in document["sources"]] == [("global", False), ("eu", True)]
    assert unknown == 2
    assert "the configured sources are global, eu (from output SourceNames of stack seq-export-sources)" in err


def test_sources_on_a_terminal_is_a_table(
    two_sources: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert two_sources.invoke({"date": days_ago(2), "source": "eu"})["status"] == "exported"
    monkeypatch.setenv("TTY_COMPATIBLE", "1")

    code, out, _ = cli(capsys, "sources")
    shown = re.sub(r"\x1b\[[0-9;]*m", "", out)

    assert code == 0
    assert f"sources in s3://{two_sources.resources.bucket}: global, eu (from SEQ_SOURCES)" in shown
    assert "┃ source" in shown
    assert re.search(rf"│ eu\s+│ yes\s+│ {days_ago(2)}\s+│\s+1 │", shown)


def test_sources_exits_1_when_the_function_exports_a_source_the_athena_tables_do_not_project(
    two_sources: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployed function configured with three sources, and a stack whose SourceNames
    # (the Glue projection's sources, from ExtraSourceNames) forgot one of them
    session = two_sources.session
    role = session.client("iam").create_role(RoleName="seq-export-fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    configured = [
        {"name": name, "base_url": "https://api.sendgrid.com", "secret_id": f"{name}-key"}
        for name in ("global", "eu", "apac")
    ]
    session.client("lambda").create_function(
        FunctionName="seq-export-fn",
        Runtime="python3.13",
        Role=role,
        Handler="seq_export.handler.lambda_handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        Environment={"Variables": {"SEQ_SOURCES": json.dumps(configured)}},
    )
    outputs = {
        "ScoresBucketName": two_sources.resources.bucket,
        "ExportFunctionName": "seq-export-fn",
        "SourceNames": "global,eu",
    }
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "seq-export-drift-marker"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    session.client("cloudformation").create_stack(StackName="seq-export-drift", TemplateBody=json.dumps(template))
    for name in ("SEQ_SOURCES", "SCORES_BUCKET"):
        monkeypatch.delenv(name)

    # When the operator lists the sources
    code, out, _ = cli(capsys, "--stack", "seq-export-drift", "sources")
    json_code, document, _ = cli_json(capsys, "--stack", "seq-export-drift", "sources")

    # Then the forgotten source is named, with what to change, and the command fails
    assert (code, json_code) == (1, 1)
    assert "the function exports apac but the stack's SourceNames (ExtraSourceNames) lacks it" in out
    assert (document["not_in_source_names"], document["not_in_function"]) == (["apac"], [])


def test_sources_says_when_the_functions_sources_could_not_be_compared(
    two_sources: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = {
        "ScoresBucketName": two_sources.resources.bucket,
        "ExportFunctionName": "seq-export-gone",  # no such function: its configuration cannot be read
        "SourceNames": "global,eu",
    }
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "seq-export-gone-marker"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    two_sources.session.client("cloudformation").create_stack(
        StackName="seq-export-gone", TemplateBody=json.dumps(template)
    )
    monkeypatch.delenv("SEQ_SOURCES")

    code, out, _ = cli(capsys, "--stack", "seq-export-gone", "sources")

    assert code == 0
    assert (
        "not compared  the function seq-export-gone's sources could not be read (lambda:GetFunctionConfiguration): "
        "the stack's SourceNames were not held against them" in out.splitlines()
    )
