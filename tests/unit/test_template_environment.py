"""template.yaml against the code: the function's environment, sources and parameters."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import pytest

from seq_export import config, layout, observability
from seq_export.config import Env, Settings, Source
from seq_export.errors import ConfigError
from seq_export.layout import DEFAULT_SOURCE
from tests.support.template import (
    DEPLOYMENTS,
    EXTRA_SECRETS,
    LEFT_TO_DEFAULT,
    SAMPLE_SECRET_ARN,
    SUPERSEDED_BY_SEQ_SOURCES,
    TWO_EXTRAS,
    Deployment,
    deployed_env,
    names_looked_up,
    names_read_by_settings,
    parameter_default,
    ref,
    required_variables,
    resource_type,
)


def test_the_settings_read_their_variables_by_the_names_of_config_env(
    template: dict[str, Any], env: dict[str, Any]
) -> None:
    source = inspect.getsource(config)
    read = names_read_by_settings()
    deployed = deployed_env(template, env)
    single_source = {
        name: value for name, value in deployed.items() if name not in {Env.SEQ_SOURCES, Env.LAKE_SOURCE_NAMES}
    } | {Env.SEQ_API_KEY_SECRET_ID: SAMPLE_SECRET_ARN}

    assert len(read) >= 15
    # the settings look up exactly the names of Env, configured with SEQ_SOURCES (as deployed)
    # or as a single-source stack, and no variable is spelled out beside them
    assert names_looked_up(deployed) | names_looked_up(single_source) == read
    assert re.findall(r'\benv(?:iron)?\s*(?:,|\.get\(|\[)\s*"([A-Z0-9_]+)"', source) == []
    assert set(env) - read == {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}


def test_every_required_variable_is_set_and_its_absence_named(template: dict[str, Any], env: dict[str, Any]) -> None:
    values = deployed_env(template, env)
    required = required_variables(values)

    assert set(required) == {
        Env.SEQ_SOURCES,
        Env.SCORES_BUCKET,
        Env.LATEST_SCORES_TABLE,
        Env.RETRY_QUEUE_URL,
        Env.DEAD_LETTER_QUEUE_URL,
        Env.IDEMPOTENCY_TABLE,
    }
    for name, error in required.items():
        # without SEQ_SOURCES the settings fall back to the single-source variables, which the
        # template does not set: the error names the first of them
        expected = Env.SEQ_API_KEY_SECRET_ID if name == Env.SEQ_SOURCES else name
        assert error.startswith(f"{expected} is required"), (name, error)


def test_the_function_gets_exactly_the_documented_environment(env: dict[str, Any]) -> None:
    assert set(env) == {
        "SEQ_SOURCES",
        "LAKE_SOURCE_NAMES",
        "SCORES_BUCKET",
        "SCORES_PREFIX",
        "ACCOUNT_SCORES_PREFIX",
        "SCORE_CHANGE_EVENT_BUS",
        "SCORE_CHANGE_MIN_STEP",
        "LATEST_SCORES_TABLE",
        "RETRY_QUEUE_URL",
        "DEAD_LETTER_QUEUE_URL",
        "IDEMPOTENCY_TABLE",
        "MAX_NOT_READY_ATTEMPTS",
        "NOT_READY_DELAY_SECONDS",
        "SEQ_RANGED_FETCH",
        "SEQ_MAX_IN_FLIGHT",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
    }


def test_every_variable_the_code_reads_is_set_or_deliberately_left_out(env: dict[str, Any]) -> None:
    assert names_read_by_settings() - set(env) == LEFT_TO_DEFAULT | SUPERSEDED_BY_SEQ_SOURCES


def test_the_deployed_environment_loads_with_the_code_defaults(template: dict[str, Any], env: dict[str, Any]) -> None:
    settings = Settings.from_env(deployed_env(template, env))

    assert settings.sources == (Source(DEFAULT_SOURCE, config.DEFAULT_API_BASE_URL, SAMPLE_SECRET_ARN, True),)
    assert settings.scores_prefix == layout.DEFAULT_PREFIX
    assert settings.account_scores_prefix == layout.DEFAULT_ACCOUNT_PREFIX
    assert settings.max_not_ready_attempts == config.DEFAULT_MAX_NOT_READY_ATTEMPTS
    assert settings.not_ready_delay_seconds == config.DEFAULT_NOT_READY_DELAY_SECONDS


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_seq_sources_as_the_template_renders_it_loads_every_source(
    template: dict[str, Any], env: dict[str, Any], deployment: str
) -> None:
    parameters, expected = DEPLOYMENTS[deployment]
    values = deployed_env(template, env, **parameters)

    assert Settings.from_env(values).sources == expected
    assert json.loads(values[Env.SEQ_SOURCES])[0] == {
        "name": expected[0].name,
        "base_url": expected[0].base_url,
        "secret_id": expected[0].secret_id,
        "account_scores": expected[0].account_scores,
    }
    assert Deployment(template, **parameters).rules_broken() == []


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ("brand-b,eu", r"^SEQ_SOURCES item 2: 'name' 'eu' is not name 2 of LAKE_SOURCE_NAMES \(global,brand-b,eu\)"),
        ("eu", r"^SEQ_SOURCES item 3: 'name' 'brand-b' is not name 3 of LAKE_SOURCE_NAMES \(global,eu\)"),
        ("eu,brand-b,apac", r"^LAKE_SOURCE_NAMES \(global,eu,brand-b,apac\) lists apac beyond SEQ_SOURCES"),
    ],
    ids=["other-order", "one-missing", "one-too-many"],
)
def test_extra_source_names_that_do_not_match_extra_sources_stop_the_function_at_start(
    template: dict[str, Any], env: dict[str, Any], names: str, message: str
) -> None:
    values = deployed_env(template, env, **(TWO_EXTRAS | {"ExtraSourceNames": names}))

    with pytest.raises(ConfigError, match=message):
        Settings.from_env(values)


def test_seq_sources_is_rendered_from_the_first_sources_parameters_and_extra_sources(env: dict[str, Any]) -> None:
    text, variables = env[Env.SEQ_SOURCES]["Fn::Sub"]
    named = set(re.findall(r"\$\{([^!}][^}]*)\}", text))

    assert named == {"SourceName", "SendGridApiBaseUrl", "ApiKeySecretArn", "ExportAccountScores", *variables}
    assert json.dumps(variables).count('"ExtraSources"') == 1


@pytest.mark.parametrize(
    ("parameters", "broken"),
    [
        ({"ExtraSources": TWO_EXTRAS["ExtraSources"]}, 2),  # neither names nor secrets
        ({k: v for k, v in TWO_EXTRAS.items() if k != "ExtraSourceSecretArns"}, 1),
        ({"ExtraSourceNames": "eu"}, 1),  # a name without its source
        ({"ExtraSourceSecretArns": EXTRA_SECRETS[0]}, 1),
    ],
)
def test_the_rules_refuse_extra_sources_without_their_names_and_secrets_and_the_reverse(
    template: dict[str, Any], parameters: dict[str, str], broken: int
) -> None:
    assert len(Deployment(template, **parameters).rules_broken()) == broken


def test_the_extra_source_parameters_accept_what_the_function_parses_and_the_template_can_splice(
    template: dict[str, Any],
) -> None:
    parameters = template["Parameters"]
    extras = parameters["ExtraSources"]["AllowedPattern"]
    names = parameters["ExtraSourceNames"]["AllowedPattern"]
    secrets = parameters["ExtraSourceSecretArns"]["AllowedPattern"]

    for good in ("[]", TWO_EXTRAS["ExtraSources"], DEPLOYMENTS["two extra sources, pretty-printed"][0]["ExtraSources"]):
        assert re.fullmatch(extras, good), good
    # an empty list other than "[]" would render "[{first}, ]"; a "[" inside would cut the list short
    for bad in ("", "[ ]", "{}", '[{"name": "eu"}', '[{"name": "eu", "x": []}]', '[{"name": "eu"}] x'):
        assert not re.fullmatch(extras, bad), bad
    assert parameters["ExtraSources"]["Default"] == "[]"
    for name in ("eu", "brand-b", "a" * 32, ""):
        assert re.fullmatch(names, name), name
    for name in ("EU", "a" * 33, "eu_west", " eu"):
        assert not re.fullmatch(names, name), name
    assert re.fullmatch(parameters["SourceName"]["AllowedPattern"], parameters["SourceName"]["Default"])
    assert parameters["SourceName"]["Default"] == DEFAULT_SOURCE
    assert not re.fullmatch(parameters["SourceName"]["AllowedPattern"], "")
    # each extra secret, like the first, must be a full ARN (IAM matches no partial one)
    assert secrets == "^$|" + parameters["ApiKeySecretArn"]["AllowedPattern"]
    assert all(re.fullmatch(secrets, arn) for arn in [*EXTRA_SECRETS, ""])
    assert (parameters["ExtraSourceNames"]["Type"], parameters["ExtraSourceSecretArns"]["Type"]) == (
        "CommaDelimitedList",
        "CommaDelimitedList",
    )


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        ("SCORES_BUCKET", "AWS::S3::Bucket"),
        ("LATEST_SCORES_TABLE", "AWS::DynamoDB::Table"),
        ("IDEMPOTENCY_TABLE", "AWS::DynamoDB::Table"),
        ("RETRY_QUEUE_URL", "AWS::SQS::Queue"),
        ("DEAD_LETTER_QUEUE_URL", "AWS::SQS::Queue"),
    ],
)
def test_resource_variables_point_at_the_right_resource_type(
    resources: dict[str, Any], env: dict[str, Any], variable: str, expected: str
) -> None:
    # Ref of a bucket or table is its name, of a queue its URL: what the code expects
    assert resource_type(resources, ref(env[variable])) == expected


def test_each_resource_variable_names_a_different_resource(env: dict[str, Any]) -> None:
    targets = [ref(env[name]) for name in ("LATEST_SCORES_TABLE", "IDEMPOTENCY_TABLE")]
    queues = [ref(env[name]) for name in ("RETRY_QUEUE_URL", "DEAD_LETTER_QUEUE_URL")]

    assert len(set(targets)) == 2
    assert len(set(queues)) == 2


@pytest.mark.parametrize(
    ("variable", "parameter"),
    [
        ("SCORES_PREFIX", "ScoresPrefix"),
        ("ACCOUNT_SCORES_PREFIX", "AccountScoresPrefix"),
        ("MAX_NOT_READY_ATTEMPTS", "MaxNotReadyAttempts"),
        ("NOT_READY_DELAY_SECONDS", "NotReadyDelaySeconds"),
        ("POWERTOOLS_METRICS_NAMESPACE", "MetricsNamespace"),
    ],
)
def test_configurable_variables_come_from_parameters(
    template: dict[str, Any], env: dict[str, Any], variable: str, parameter: str
) -> None:
    assert ref(env[variable]) == parameter
    assert parameter in template["Parameters"]


def test_the_api_key_is_never_a_parameter_or_variable(template: dict[str, Any], env: dict[str, Any]) -> None:
    secret = template["Parameters"]["ApiKeySecretArn"]
    sources = json.loads(deployed_env(template, env, **TWO_EXTRAS)[Env.SEQ_SOURCES])

    assert "Default" not in secret
    assert re.fullmatch(secret["AllowedPattern"], SAMPLE_SECRET_ARN)
    assert not re.fullmatch(secret["AllowedPattern"], "SG.abcdef")
    assert not any("KEY" in name for name in env)
    assert [source["secret_id"] for source in sources] == [SAMPLE_SECRET_ARN, *EXTRA_SECRETS]


def test_parameter_bounds_match_what_the_code_accepts(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]

    assert (parameters["MaxNotReadyAttempts"]["MinValue"], parameters["MaxNotReadyAttempts"]["MaxValue"]) == (1, 1000)
    assert (parameters["NotReadyDelaySeconds"]["MinValue"], parameters["NotReadyDelaySeconds"]["MaxValue"]) == (
        0,
        config.SQS_MAX_DELAY_SECONDS,
    )
    assert set(parameters["SendGridApiBaseUrl"]["AllowedValues"]) == {
        "https://api.sendgrid.com",
        "https://api.eu.sendgrid.com",
    }
    prefix = parameters["ScoresPrefix"]["AllowedPattern"]
    assert re.fullmatch(prefix, layout.DEFAULT_PREFIX)
    for bad in ("", "/seq", "seq/", "seq//scores"):
        assert not re.fullmatch(prefix, bad)


def test_powertools_settings_match_the_code(template: dict[str, Any], env: dict[str, Any]) -> None:
    assert env["POWERTOOLS_SERVICE_NAME"] == observability.SERVICE
    assert parameter_default(template, ref(env["POWERTOOLS_METRICS_NAMESPACE"])) == observability.DEFAULT_NAMESPACE
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
