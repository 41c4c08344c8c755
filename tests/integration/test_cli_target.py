"""Where every command points, in process against moto server and the SEQ simulator: a
deployed stack's outputs (``--stack``), its sources, the region from ``AWS_REGION`` alone, and a
source the stack does not have, refused before anything changes.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Stack, days_ago
from tests.support.cli import cli, cli_json, day_lines, deploy_outputs, only_entry, scored

pytestmark = pytest.mark.integration


def test_stack_option_reads_the_targets_from_the_stacks_outputs(
    stack: Stack,
    exported_day: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
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
    user = scored(exported_day)[0]["user_id"]

    status_code, status, _ = cli_json(capsys, "--stack", "seq-export-test", "status", "--date", days_ago(1))
    lookup_code, lookup, _ = cli_json(capsys, "lookup", user, "--stack", "seq-export-test")

    assert (status_code, only_entry(status)["bucket"], only_entry(status)["records"]) == (0, stack.resources.bucket, 40)
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


def test_stack_option_takes_the_sources_from_the_source_names_output(
    two_sources: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = {
        "ScoresBucketName": two_sources.resources.bucket,
        "LatestScoresTableName": two_sources.resources.table,
        "SourceNames": "global,eu",
    }
    deploy_outputs(two_sources, "seq-export-sources", outputs)
    for name in ("SEQ_SOURCES", "SCORES_BUCKET", "LATEST_SCORES_TABLE"):
        monkeypatch.delenv(name)
    assert two_sources.invoke({"date": days_ago(2), "source": "eu"})["status"] == "exported"

    code, document, _ = cli_json(capsys, "--stack", "seq-export-sources", "status", "--date", days_ago(2))
    unknown, _, err = cli(capsys, "--stack", "seq-export-sources", "status", "--source", "us")

    assert code == 1
    assert [(s["source"], [k["exported"] for k in s["kinds"]]) for s in document["sources"]] == [
        ("global", [False]),
        ("eu", [True]),
    ]
    assert unknown == 2
    assert "the configured sources are global, eu (from output SourceNames of stack seq-export-sources)" in err


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
    assert err.startswith(f"Usage: seq-export {argv[0]} ")
    assert err.endswith(
        "\nError: --source: unknown source 'us'; the configured sources are global, eu (from SEQ_SOURCES)\n"
    )
    assert two_sources.simulator.requests == []
    assert two_sources.queue_counts() == {"visible": 0, "delayed": 0}
    assert two_sources.data_keys() == []


def test_aws_region_alone_is_enough(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.invoke({"date": days_ago(1)})["status"] == "exported"
    user_id = next(line["user_id"] for line in day_lines(stack, days_ago(1)) if line["score"] is not None)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")

    code, document, err = cli_json(capsys, "lookup", user_id)

    assert (code, err) == (0, "")
    assert document["subusers"][0]["user_id"] == user_id
