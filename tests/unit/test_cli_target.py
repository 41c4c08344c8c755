"""Where a command points (``app.Target``): a stack's outputs or the environment, the sources it
has, the region; a missing or malformed setting is a configuration error naming it.
"""

from __future__ import annotations

import pytest

from seq_export_cli.app import Target, region_of
from seq_export_cli.errors import TargetConfigError, UsageError
from tests.support.cli_fakes import (
    FULL_OUTPUTS,
    TWO_SOURCES,
)


def test_target_from_stack_outputs_takes_every_value_by_output_name() -> None:
    target = Target.from_outputs("prod", FULL_OUTPUTS)

    assert target == Target(
        origin="stack prod",
        stack="prod",
        bucket="lake-bucket",
        prefix="custom/prefix",
        table="latest-table",
        queue_url="https://sqs.eu-west-1.amazonaws.com/1/retry",
        function_name="seq-export-export",
        sources=("default",),
        sources_from="stack prod has no output SourceNames",
    )
    assert target.key_for("2026-11-22", "subusers", "default") == (
        "custom/prefix/source=default/dt=2026-11-22/scores.jsonl"
    )
    assert target.key_for("2026-11-22", "account", "eu") == ("seq/account_scores/source=eu/dt=2026-11-22/scores.jsonl")


def test_the_sources_are_the_stacks_source_names_output_in_its_order() -> None:
    target = Target.from_outputs("prod", [*FULL_OUTPUTS, {"OutputKey": "SourceNames", "OutputValue": "global, eu"}])

    assert target.sources == ("global", "eu")
    assert target.sources_from == "from output SourceNames of stack prod"
    assert target.several_sources
    assert target.chosen_sources(None) == ("global", "eu")
    assert target.chosen_sources("eu") == ("eu",)


@pytest.mark.parametrize("listed", ["global,,eu", "Global", "eu,eu", "a b"])
def test_a_malformed_source_names_output_is_a_configuration_error_naming_it(listed: str) -> None:
    with pytest.raises(TargetConfigError, match="output SourceNames of stack prod") as caught:
        Target.from_outputs("prod", [{"OutputKey": "SourceNames", "OutputValue": listed}])
    assert caught.value.exit_code == 3


def test_the_sources_are_the_names_in_seq_sources_of_the_environment() -> None:
    target = Target.from_env({"SEQ_SOURCES": TWO_SOURCES})

    assert (target.sources, target.sources_from) == (("global", "eu"), "from SEQ_SOURCES")
    assert not Target.from_env({}).several_sources


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("not json", "SEQ_SOURCES is not JSON"),
        ("[]", "SEQ_SOURCES must be a non-empty JSON list"),
        ('[{"name": "EU", "base_url": "https://x", "secret_id": "s"}]', "SEQ_SOURCES item 1: 'name'"),
    ],
)
def test_a_malformed_seq_sources_is_a_configuration_error_as_the_function_reports_it(raw: str, fragment: str) -> None:
    with pytest.raises(TargetConfigError, match=fragment) as caught:
        Target.from_env({"SEQ_SOURCES": raw})
    assert caught.value.exit_code == 3


def test_an_unknown_source_is_a_usage_error_naming_where_the_sources_came_from() -> None:
    with pytest.raises(
        UsageError, match=r"unknown source 'eu'; the configured sources are default \(SEQ_SOURCES is not set\)"
    ):
        Target.from_env({}).chosen_sources("eu")


def test_a_missing_stack_output_is_a_configuration_error_naming_the_output() -> None:
    outputs = [o for o in FULL_OUTPUTS if o["OutputKey"] != "ExportFunctionName"]
    target = Target.from_outputs("prod", outputs)

    assert target.need("table") == "latest-table"
    with pytest.raises(TargetConfigError, match="stack prod has no output ExportFunctionName") as caught:
        target.need("function_name")
    assert caught.value.exit_code == 3


def test_target_from_the_environment_uses_the_functions_variable_names_and_default_prefix() -> None:
    target = Target.from_env({"SCORES_BUCKET": "b", "LATEST_SCORES_TABLE": "t", "SEQ_EXPORT_FUNCTION": "f"})

    assert (target.need("bucket"), target.need("table"), target.need("function_name")) == ("b", "t", "f")
    assert target.key_for("2026-11-22", "subusers", "default") == (
        "seq/subuser_scores/source=default/dt=2026-11-22/scores.jsonl"
    )
    assert target.sources == ("default",)
    with pytest.raises(TargetConfigError, match="RETRY_QUEUE_URL is not set"):
        target.need("queue_url")


def test_a_missing_function_name_suggests_running_the_handler_locally() -> None:
    with pytest.raises(TargetConfigError, match=r"SEQ_EXPORT_FUNCTION is not set; .* with --local"):
        Target.from_env({}).need("function_name")


def test_blank_variables_count_as_missing_and_prefix_slashes_are_trimmed() -> None:
    target = Target.from_env({"SCORES_BUCKET": "  ", "SCORES_PREFIX": "/lake/seq/"})

    assert target.prefix == "lake/seq"
    with pytest.raises(TargetConfigError, match="SCORES_BUCKET is not set"):
        target.need("bucket")


@pytest.mark.parametrize("prefix", ["a//b", "/", "//"])
def test_a_malformed_prefix_is_a_configuration_error(prefix: str) -> None:
    with pytest.raises(TargetConfigError, match="SCORES_PREFIX"):
        Target.from_env({"SCORES_PREFIX": prefix})


def test_a_malformed_prefix_output_is_a_configuration_error_naming_the_output() -> None:
    outputs = [{"OutputKey": "ScoresPrefix", "OutputValue": "a//b"}]

    with pytest.raises(TargetConfigError, match="output ScoresPrefix of stack prod"):
        Target.from_outputs("prod", outputs)


@pytest.mark.parametrize(
    ("option", "environ", "region"),
    [
        ("eu-central-1", {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}, "eu-central-1"),
        (None, {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}, "eu-west-1"),
        (None, {"AWS_DEFAULT_REGION": "us-east-1"}, "us-east-1"),
        (None, {}, None),
        ("  ", {"AWS_REGION": "", "AWS_DEFAULT_REGION": " us-east-1 "}, "us-east-1"),
        ("", {"AWS_REGION": " ", "AWS_DEFAULT_REGION": ""}, None),
    ],
    ids=["option-wins", "aws-region", "aws-default-region", "none", "blanks-skipped", "all-blank"],
)
def test_the_region_is_the_option_then_aws_region_then_aws_default_region(
    option: str | None, environ: dict[str, str], region: str | None
) -> None:
    assert region_of(option, environ) == region
