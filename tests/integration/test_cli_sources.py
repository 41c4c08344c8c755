"""``seq-export sources``, in process against moto server and the SEQ simulator: each
configured source with its newest day of each kind, a source found in the lake but no longer
configured, the function's sources against the Athena tables' projection, and a terminal's
table. Both sources are served by the one simulator and API key.
"""

from __future__ import annotations

import re

import pytest

from local.seq_simulator import Scenario
from seq_export.models import ACCOUNT, SUBUSERS
from tests.support import Stack, days_ago
from tests.support.cli import cli, cli_json, configure_sources, deploy_function, deploy_outputs

pytestmark = pytest.mark.integration


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
    deploy_function(two_sources, ["global", "eu", "apac"])
    outputs = {
        "ScoresBucketName": two_sources.resources.bucket,
        "ExportFunctionName": "seq-export-fn",
        "SourceNames": "global,eu",
    }
    deploy_outputs(two_sources, "seq-export-drift", outputs)
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
    deploy_outputs(two_sources, "seq-export-gone", outputs)
    monkeypatch.delenv("SEQ_SOURCES")

    code, out, _ = cli(capsys, "--stack", "seq-export-gone", "sources")

    assert code == 0
    assert (
        "not compared  the function seq-export-gone's sources could not be read (lambda:GetFunctionConfiguration): "
        "the stack's SourceNames were not held against them" in out.splitlines()
    )
