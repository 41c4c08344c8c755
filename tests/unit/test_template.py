"""template.yaml wired to the code's contract: deploys nothing, reads the template and the code.

What the code reads (environment, event shapes, object layout, metric names, AWS calls) is
taken from the code itself, so a change on either side that breaks the other fails here.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from local.stack import MAX_RECEIVE_COUNT
from seq_export import config, handler, job_queue, latest_store, layout, observability, queued_days, s3_sink, wiring
from seq_export.config import Env, Settings, Source
from seq_export.dates import RETENTION_DAYS, parse_day
from seq_export.errors import ConfigError
from seq_export.events import DailyRun, parse_event
from seq_export.layout import DEFAULT_SOURCE, PARTITION_KEY, PARTITION_KEYS, SOURCE_KEY, glue_columns
from seq_export.models import METRIC_NAMES, RECORD_KEYS, ScoreRecord
from seq_export.observability import MetricName
from seq_export.record_codec import encode_line
from seq_export.s3_sink import S3Sink
from seq_export_cli.app import OUTPUT_NAMES
from seq_export_cli.local_lambda import FUNCTION_TIMEOUT_SECONDS, QUEUE_VISIBILITY_TIMEOUT_SECONDS, FakeLambdaContext

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = "ExportFunction"
ROLE = "ExportFunctionRole"
SAMPLE_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:seq-export/sendgrid-AbCdEf"
#: Read by the code, deliberately left to its default by the template (tuning knobs).
LEFT_TO_DEFAULT = {"SEQ_PAGE_SIZE", "SEQ_READ_TIMEOUT_SECONDS"}
#: Boto3 clients the handler builds, each with its adapter module(s) below.
SERVICES = {"dynamodb", "events", "s3", "secretsmanager", "sqs"}
#: S3 operations that s3:PutObject authorises (IAM has no action of their own).
PUT_OBJECT_OPERATIONS = {"CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}
#: The only IAM actions that may have Resource "*": AWS defines no resource type for them.
ACTIONS_WITHOUT_RESOURCE_TYPES = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


# -- loading ---------------------------------------------------------------------------------
class CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short tags (!Ref, !Sub, !GetAtt...) as long forms."""


def _construct_short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(cast(yaml.MappingNode, node), deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_short_tag)


def load_template() -> dict[str, Any]:
    with (ROOT / "template.yaml").open(encoding="utf-8") as stream:
        return cast(dict[str, Any], yaml.load(stream, Loader=CfnLoader))  # noqa: S506 - SafeLoader subclass


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], template["Resources"])


@pytest.fixture(scope="module")
def function(resources: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], resources[FUNCTION]["Properties"])


@pytest.fixture(scope="module")
def env(function: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], function["Environment"]["Variables"])


# -- helpers ---------------------------------------------------------------------------------
def ref(value: Any) -> str:
    assert isinstance(value, dict), f"expected a !Ref, got {value!r}"
    assert set(value) == {"Ref"}, f"expected a !Ref, got {value!r}"
    return cast(str, value["Ref"])


def get_att(value: Any) -> tuple[str, str]:
    assert isinstance(value, dict), f"expected a !GetAtt, got {value!r}"
    assert set(value) == {"Fn::GetAtt"}, f"expected a !GetAtt, got {value!r}"
    resource, attribute = value["Fn::GetAtt"]
    return resource, attribute


def resource_type(resources: Mapping[str, Any], name: str) -> str:
    return cast(str, resources[name]["Type"])


def render_sub(value: Any, names: Mapping[str, str]) -> str:
    """Render an Fn::Sub string as CloudFormation would, with the given values of its names."""
    assert isinstance(value, dict), f"expected a !Sub, got {value!r}"
    assert set(value) == {"Fn::Sub"}, f"expected a !Sub, got {value!r}"
    text = value["Fn::Sub"]
    assert isinstance(text, str)

    def one(match: re.Match[str]) -> str:
        inner = match.group(1)
        return "${" + inner[1:] + "}" if inner.startswith("!") else names[inner]

    return re.sub(r"\$\{([^}]+)\}", one, text)


def parameter_default(template: Mapping[str, Any], name: str) -> str:
    if name == "ApiKeySecretArn":
        return SAMPLE_SECRET_ARN
    return str(template["Parameters"][name]["Default"])


class _NoValue:
    """``AWS::NoValue``: the property or list item it stands for is left out."""


NO_VALUE = _NoValue()
PSEUDO_PARAMETERS = {
    "AWS::StackName": "seq-export",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}


class Deployment:
    """The template's intrinsic functions evaluated as CloudFormation would for one set of
    parameter values (defaults for those not given; ``ApiKeySecretArn`` a sample ARN): Ref,
    Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Split, Fn::Select, Fn::If, the condition functions and the
    rule functions this template uses. A resource's Ref is a plausible physical id, its GetAtt a
    placeholder ``<Resource.Attribute>``."""

    def __init__(self, template: Mapping[str, Any], **parameters: str) -> None:
        unknown = set(parameters) - set(template["Parameters"])
        assert not unknown, f"not parameters of the template: {unknown}"
        self.template = template
        self.parameters = {
            name: parameters.get(name, parameter_default(template, name)) for name in template["Parameters"]
        }

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in self.parameters:
            value = self.parameters[name]
            if self.template["Parameters"][name]["Type"] == "CommaDelimitedList":
                return value.split(",")  # an empty value is [""]
            return value
        kind = resource_type(self.template["Resources"], name)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.us-east-1.amazonaws.com/123456789012/seq-export-{name}-Ab12Cd"
        return f"seq-export-{name}-Ab12Cd"

    def condition(self, name: str) -> bool:
        return bool(self.evaluate(self.template["Conditions"][name]))

    def evaluate(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.evaluate(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: v for k, v in ((k, self.evaluate(v)) for k, v in value.items()) if v is not NO_VALUE}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self.ref(argument)
        if function == "Condition":
            return self.condition(argument)
        if function == "Fn::GetAtt":
            return f"<{'.'.join(argument)}>"
        if function == "Fn::If":
            name, if_true, if_false = argument
            return self.evaluate(if_true if self.condition(name) else if_false)
        if function == "Fn::Sub":
            return self._sub(argument)
        if function == "Fn::Join":
            separator, items = argument
            return separator.join(self._strings(self.evaluate(items)))
        if function == "Fn::Split":
            separator, text = argument
            return str(self.evaluate(text)).split(separator)
        if function == "Fn::Select":
            index, items = argument
            return self.evaluate(items)[int(self.evaluate(index))]
        if function in ("Fn::Equals", "Fn::EachMemberEquals"):
            left, right = (self.evaluate(side) for side in argument)
            if function == "Fn::EachMemberEquals":
                return all(item == right for item in left)
            return bool(left == right)
        if function == "Fn::Not":
            (inner,) = argument
            return not self.evaluate(inner)
        if function == "Fn::And":
            return all(self.evaluate(inner) for inner in argument)
        if function == "Fn::Or":
            return any(self.evaluate(inner) for inner in argument)
        return {function: self.evaluate(argument)}

    def _strings(self, items: Any) -> list[str]:
        assert isinstance(items, list), items
        assert all(isinstance(item, str) for item in items), items
        return cast(list[str], items)

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {name: self.evaluate(v) for name, v in variables.items()}

        def one(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in values:
                return str(values[inner])
            if "." in inner and inner.split(".")[0] in self.template["Resources"]:
                return f"<{inner}>"
            return str(self.ref(inner))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def rules_broken(self) -> list[str]:
        """The AssertDescription of every rule assertion that fails (CloudFormation's Rules)."""
        broken = []
        for rule in self.template.get("Rules", {}).values():
            if "RuleCondition" in rule and not self.evaluate(rule["RuleCondition"]):
                continue
            broken += [a["AssertDescription"] for a in rule["Assertions"] if not self.evaluate(a["Assert"])]
        return broken


def deployed_env(template: Mapping[str, Any], env: Mapping[str, Any], **parameters: str) -> dict[str, str]:
    """The function's environment in a deployment with these parameters (defaults otherwise,
    which leave the optional features off)."""
    evaluated = Deployment(template, **parameters).evaluate(dict(env))
    assert all(isinstance(value, str) for value in evaluated.values()), evaluated
    return cast(dict[str, str], evaluated)


def names_read_by_settings() -> set[str]:
    """Every variable the function's settings read: ``seq_export.config.Env``."""
    return {value for name, value in vars(config.Env).items() if name.isupper() and isinstance(value, str)}


class LookedUp(Mapping[str, str]):
    """An environment that remembers each variable looked up in it."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.names: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.names.add(name)
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def names_looked_up(values: Mapping[str, str]) -> set[str]:
    """The variables ``Settings.from_env`` looks up when loading ``values``."""
    environ = LookedUp(values)
    Settings.from_env(environ)
    return environ.names


def statements(role: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every statement, including those present only when a feature is switched on (Fn::If)."""
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:
                yield from (s for s in statement["Fn::If"][1:] if s != {"Ref": "AWS::NoValue"})
            else:
                yield statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allowed(role: Mapping[str, Any], action: str) -> list[Any]:
    """Resources of the role's Allow statements that grant ``action``."""
    found: list[Any] = []
    for statement in statements(role):
        if statement["Effect"] == "Allow" and action in as_list(statement["Action"]):
            found.extend(as_list(statement["Resource"]))
    return found


def iam_action(service: str, method: str) -> str:
    return f"{service}:" + "".join(part.capitalize() for part in method.split("_"))


def client_calls(module: Any) -> set[str]:
    return set(re.findall(r"self\._client\.([a-z_]+)\(", inspect.getsource(module)))


# -- environment -----------------------------------------------------------------------------
#: Read only when SEQ_SOURCES is unset (a single-source configuration from before sources
#: existed): the template sets SEQ_SOURCES, so it leaves these out.
SUPERSEDED_BY_SEQ_SOURCES = {Env.SEQ_API_BASE_URL, Env.SEQ_API_KEY_SECRET_ID, Env.EXPORT_ACCOUNT_SCORES}
EXTRA_SECRETS = [
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:seq-export/sendgrid-eu-GhIjKl",
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:seq-export/brand-b-MnOpQr",
]
#: Two extra sources as an operator would pass them (the second without "account_scores").
TWO_EXTRAS = {
    "SourceName": "global",
    "ExportAccountScores": "false",
    "ExtraSources": json.dumps(
        [
            {
                "name": "eu",
                "base_url": "https://api.eu.sendgrid.com",
                "secret_id": EXTRA_SECRETS[0],
                "account_scores": False,
            },
            {"name": "brand-b", "base_url": "https://api.sendgrid.com", "secret_id": EXTRA_SECRETS[1]},
        ]
    ),
    "ExtraSourceNames": "eu,brand-b",
    "ExtraSourceSecretArns": ",".join(EXTRA_SECRETS),
}
TWO_EXTRAS_SOURCES = (
    Source("global", config.DEFAULT_API_BASE_URL, SAMPLE_SECRET_ARN, account_scores=False),
    Source("eu", "https://api.eu.sendgrid.com", EXTRA_SECRETS[0], account_scores=False),
    Source("brand-b", "https://api.sendgrid.com", EXTRA_SECRETS[1], account_scores=True),
)
#: Parameter sets of the tests below, with the sources the function must then export.
DEPLOYMENTS = {
    "defaults": ({}, (Source(DEFAULT_SOURCE, config.DEFAULT_API_BASE_URL, SAMPLE_SECRET_ARN, True),)),
    "renamed, EU host, no account scores": (
        {"SourceName": "eu-only", "SendGridApiBaseUrl": "https://api.eu.sendgrid.com", "ExportAccountScores": "false"},
        (Source("eu-only", "https://api.eu.sendgrid.com", SAMPLE_SECRET_ARN, False),),
    ),
    "two extra sources": (TWO_EXTRAS, TWO_EXTRAS_SOURCES),
    "two extra sources, pretty-printed": (
        TWO_EXTRAS | {"ExtraSources": json.dumps(json.loads(TWO_EXTRAS["ExtraSources"]), indent=2)},
        TWO_EXTRAS_SOURCES,
    ),
}


def required_variables(values: Mapping[str, str]) -> dict[str, str]:
    """Each variable of ``values`` without which the settings fail to load, with the error."""
    required = {}
    for name in values:
        try:
            Settings.from_env({other: value for other, value in values.items() if other != name})
        except ConfigError as exc:
            required[name] = str(exc)
    return required


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


# -- function --------------------------------------------------------------------------------
def test_function_runtime_and_code(function: dict[str, Any]) -> None:
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    assert function["Handler"] == "seq_export.handler.lambda_handler"
    assert callable(handler.lambda_handler)
    assert (ROOT / function["CodeUri"] / "seq_export" / "handler.py").is_file()
    assert (ROOT / function["CodeUri"] / "requirements.txt").is_file()
    assert function["Tracing"] == "Active"


def test_the_function_logs_to_its_own_log_group_with_retention(
    resources: dict[str, Any], function: dict[str, Any]
) -> None:
    group_name = ref(function["LoggingConfig"]["LogGroup"])
    group = resources[group_name]
    names = {"AWS::StackName": "seq-export"}

    assert group["Type"] == "AWS::Logs::LogGroup"
    assert render_sub(group["Properties"]["LogGroupName"], names) == (
        "/aws/lambda/" + render_sub(function["FunctionName"], names)
    )
    assert ref(group["Properties"]["RetentionInDays"]) == "LogRetentionDays"


# -- events ----------------------------------------------------------------------------------
def test_the_sqs_event_reads_the_retry_queue_with_partial_batch_failures(
    resources: dict[str, Any], function: dict[str, Any], env: dict[str, Any]
) -> None:
    sqs = [event["Properties"] for event in function["Events"].values() if event["Type"] == "SQS"]

    assert len(sqs) == 1
    queue, attribute = get_att(sqs[0]["Queue"])
    assert (queue, attribute) == (ref(env["RETRY_QUEUE_URL"]), "Arn")
    assert sqs[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 2 <= sqs[0]["ScalingConfig"]["MaximumConcurrency"] <= 10


def test_the_schedule_input_is_the_scheduled_event_the_handler_routes(
    resources: dict[str, Any], function: dict[str, Any]
) -> None:
    schedules = [event["Properties"] for event in function["Events"].values() if event["Type"] == "ScheduleV2"]
    assert len(schedules) == 1
    schedule = schedules[0]

    assert json.loads(schedule["Input"]) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}
    assert schedule["OmitName"] is True
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert ref(schedule["ScheduleExpression"]) == "ScheduleExpression"
    assert schedule["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    dlq, _ = get_att(schedule["DeadLetterConfig"]["Arn"])
    assert resource_type(resources, dlq) == "AWS::SQS::Queue"

    # what the scheduler sends once it fills in the placeholder, through the real event parser
    delivered = json.loads(schedule["Input"].replace("<aws.scheduler.scheduled-time>", "2026-11-23T06:00:00Z"))
    assert parse_event(delivered) == DailyRun("2026-11-22")


def test_failed_asynchronous_invocations_are_kept(resources: dict[str, Any], function: dict[str, Any]) -> None:
    queue, _ = get_att(function["DeadLetterQueue"]["TargetArn"])

    assert function["DeadLetterQueue"]["Type"] == "SQS"
    assert resource_type(resources, queue) == "AWS::SQS::Queue"


# -- queues ----------------------------------------------------------------------------------
def test_retry_queue_visibility_timeout_is_at_least_six_function_timeouts(
    resources: dict[str, Any], function: dict[str, Any], env: dict[str, Any]
) -> None:
    queue = resources[ref(env["RETRY_QUEUE_URL"])]["Properties"]

    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]


def test_the_local_function_timeout_and_retry_queue_visibility_are_the_deployed_ones(
    resources: dict[str, Any], function: dict[str, Any], env: dict[str, Any]
) -> None:
    queue = resources[ref(env["RETRY_QUEUE_URL"])]["Properties"]

    # an invocation cut short leaves an in-progress record for at most its remaining time, and
    # its message returns only after the queue's visibility timeout: as deployed, so locally
    assert FakeLambdaContext().timeout_seconds == FUNCTION_TIMEOUT_SECONDS == function["Timeout"]
    assert queue["VisibilityTimeout"] == QUEUE_VISIBILITY_TIMEOUT_SECONDS
    assert QUEUE_VISIBILITY_TIMEOUT_SECONDS >= FUNCTION_TIMEOUT_SECONDS


def test_retry_queue_redrives_to_the_dead_letter_queue_after_the_local_stacks_count(
    resources: dict[str, Any], env: dict[str, Any]
) -> None:
    redrive = resources[ref(env["RETRY_QUEUE_URL"])]["Properties"]["RedrivePolicy"]

    assert get_att(redrive["deadLetterTargetArn"]) == (ref(env["DEAD_LETTER_QUEUE_URL"]), "Arn")
    assert redrive["maxReceiveCount"] == MAX_RECEIVE_COUNT


def test_every_queue_is_encrypted_and_dead_letter_queues_keep_14_days(resources: dict[str, Any]) -> None:
    queues = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}

    assert set(queues) == {"RetryQueue", "DeadLetterQueue", "ScheduleDeadLetterQueue"}
    for name, queue in queues.items():
        assert queue["SqsManagedSseEnabled"] is True, name
    for name in ("DeadLetterQueue", "ScheduleDeadLetterQueue"):
        assert queues[name]["MessageRetentionPeriod"] == 14 * 24 * 3600


# -- storage ---------------------------------------------------------------------------------
def test_the_bucket_is_private_encrypted_versioned_tls_only_and_kept(resources: dict[str, Any]) -> None:
    bucket = resources["ScoresBucket"]
    properties = bucket["Properties"]
    policy = resources["ScoresBucketPolicy"]["Properties"]

    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert all(properties["PublicAccessBlockConfiguration"].values())
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert properties["VersioningConfiguration"]["Status"] == "Enabled"
    assert any("NoncurrentVersionExpiration" in rule for rule in properties["LifecycleConfiguration"]["Rules"])
    assert ref(policy["Bucket"]) == "ScoresBucket"
    assert {
        "Effect": "Deny",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }.items() <= next(iter(policy["PolicyDocument"]["Statement"])).items()


def test_the_latest_table_matches_the_store_and_is_kept(resources: dict[str, Any], env: dict[str, Any]) -> None:
    table = resources[ref(env["LATEST_SCORES_TABLE"])]
    properties = table["Properties"]

    assert table["DeletionPolicy"] == "Retain"
    assert properties["DeletionProtectionEnabled"] is True
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["KeySchema"] == [{"AttributeName": "user_id", "KeyType": "HASH"}]
    (index,) = properties["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "username-index"
    assert index["KeySchema"] == [{"AttributeName": "username", "KeyType": "HASH"}]
    # keys only: a day's score updates leave the index untouched (no extra write units)
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert {"AttributeName": "username", "AttributeType": "S"} in properties["AttributeDefinitions"]
    # the store writes username as a string attribute, and leaves it out when unknown (sparse index)
    assert "username" in layout.ITEM_ATTRIBUTES


def test_the_idempotency_table_matches_powertools_defaults(resources: dict[str, Any], env: dict[str, Any]) -> None:
    properties = resources[ref(env["IDEMPOTENCY_TABLE"])]["Properties"]
    defaults = inspect.signature(DynamoDBPersistenceLayer.__init__).parameters

    assert properties["KeySchema"] == [{"AttributeName": defaults["key_attr"].default, "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": defaults["key_attr"].default, "AttributeType": "S"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": defaults["expiry_attr"].default, "Enabled": True}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["SSESpecification"] == {"SSEEnabled": True}


# -- data catalog ----------------------------------------------------------------------------
GLUE_TABLES = {"ScoresTable": "ScoresPrefix", "AccountScoresTable": "AccountScoresPrefix"}


def glue_table(resources: Mapping[str, Any], name: str = "ScoresTable") -> dict[str, Any]:
    tables = {key: r["Properties"]["TableInput"] for key, r in resources.items() if r["Type"] == "AWS::Glue::Table"}
    assert set(tables) == set(GLUE_TABLES)
    return cast(dict[str, Any], tables[name])


@pytest.mark.parametrize("table", GLUE_TABLES)
def test_glue_columns_are_the_layouts_columns_and_the_partitions_its_keys(
    resources: dict[str, Any], table: str
) -> None:
    columns = glue_table(resources, table)["StorageDescriptor"]["Columns"]
    partitions = glue_table(resources, table)["PartitionKeys"]

    assert columns == glue_columns()
    assert partitions == [{"Name": key, "Type": "string"} for key in PARTITION_KEYS]
    # Glue allows no column that is also a partition key
    assert not {c["Name"] for c in columns} & {p["Name"] for p in partitions}


@pytest.mark.parametrize(
    "record",
    [
        ScoreRecord("eu", "2026-11-22", "180", "jdoe123", 3, dict.fromkeys(METRIC_NAMES, 4)),
        ScoreRecord("default", "2026-11-22", "181", None, None, None),
    ],
)
def test_every_line_the_exporter_writes_fits_the_glue_columns(resources: dict[str, Any], record: ScoreRecord) -> None:
    table = glue_table(resources)
    columns = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    line = json.loads(encode_line(record, "2026-11-23T06:00:03.120Z"))

    assert list(line) == list(RECORD_KEYS)
    # "source" is in each line and is the partition column (read from the path, see the next test)
    assert list(line) == [SOURCE_KEY, *columns]
    assert line[SOURCE_KEY] == record.source
    for name, value in line.items():
        kind = columns.get(name, "string")
        if value is None:
            continue
        if kind == "string":
            assert isinstance(value, str), name
        elif kind == "double":
            assert isinstance(value, int | float), name
        else:
            fields = re.fullmatch(r"struct<(.+)>", kind)
            assert fields, kind
            assert [f.split(":") for f in fields.group(1).split(",")] == [[k, "double"] for k in value]


@pytest.mark.parametrize("table", GLUE_TABLES)
def test_glue_location_and_partitions_follow_the_s3_sink_layout(resources: dict[str, Any], table: str) -> None:
    properties = glue_table(resources, table)
    parameters = properties["Parameters"]
    bucket, prefix, source, day = "lake", "seq/some_scores", "eu", "2026-11-22"
    names = {"ScoresBucket": bucket, GLUE_TABLES[table]: prefix}
    key = S3Sink(cast(Any, None), bucket, prefix, source).key_for(day)

    location = render_sub(properties["StorageDescriptor"]["Location"], names)
    template = render_sub(parameters["storage.location.template"], names)
    assert template == location + "".join(f"{k}=${{{k}}}/" for k in PARTITION_KEYS)
    partition = template.replace(f"${{{SOURCE_KEY}}}", source).replace(f"${{{PARTITION_KEY}}}", day)
    assert partition == f"s3://{bucket}/{layout.partition(prefix, source, day)}/"
    assert f"s3://{bucket}/{key}" == partition + layout.OBJECT_NAME
    assert properties["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"


@pytest.mark.parametrize("table", GLUE_TABLES)
def test_partition_projection_covers_the_days_the_exporter_writes(resources: dict[str, Any], table: str) -> None:
    parameters = glue_table(resources, table)["Parameters"]
    key = PARTITION_KEY

    assert parameters["projection.enabled"] == "true"
    assert parameters[f"projection.{key}.type"] == "date"
    # Java's yyyy-MM-dd is the code's YYYY-MM-DD
    assert parameters[f"projection.{key}.format"] == "yyyy-MM-dd"
    assert (parameters[f"projection.{key}.interval"], parameters[f"projection.{key}.interval.unit"]) == ("1", "DAYS")
    start, end = parameters[f"projection.{key}.range"].split(",")
    assert end == "NOW"
    # starts before any day SendGrid could still serve when this product shipped
    assert parse_day(start) <= date(2026, 11, 23) - timedelta(days=RETENTION_DAYS)


@pytest.mark.parametrize("table", GLUE_TABLES)
@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_partition_projection_covers_every_source_the_function_exports(
    template: dict[str, Any], env: dict[str, Any], table: str, deployment: str
) -> None:
    parameters, expected = DEPLOYMENTS[deployment]
    deployed = Deployment(template, **parameters)
    projection = deployed.evaluate(glue_table(template["Resources"], table)["Parameters"])
    settings = Settings.from_env(deployed_env(template, env, **parameters))

    assert projection[f"projection.{SOURCE_KEY}.type"] == "enum"
    assert projection[f"projection.{SOURCE_KEY}.values"].split(",") == list(settings.source_names)
    assert settings.source_names == tuple(source.name for source in expected)


# -- alarms ----------------------------------------------------------------------------------
def alarms(resources: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: r["Properties"] for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def freshness_alarms(resources: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The alarms on a source's ``DayExported`` series: one per source, fired by missing data."""
    return {n: a for n, a in alarms(resources).items() if a.get("MetricName") == MetricName.DAY_EXPORTED}


def event_alarms(resources: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The other alarms: each fires on something that happened, whatever the source."""
    fresh = freshness_alarms(resources)
    return {n: a for n, a in alarms(resources).items() if n not in fresh}


def test_the_gave_up_alarm_has_one_contributor_per_source_of_the_metric_the_code_emits(
    resources: dict[str, Any], env: dict[str, Any]
) -> None:
    alarm = alarms(resources)["GaveUpAlarm"]
    (query,) = alarm["Metrics"]
    text = query["Expression"]["Fn::Sub"]

    service = env["POWERTOOLS_SERVICE_NAME"]
    expected = " ".join(
        [
            f"SELECT SUM({MetricName.GAVE_UP})",
            f'FROM SCHEMA("${{MetricsNamespace}}", service, {SOURCE_KEY})',
            f"WHERE service = '{service}' GROUP BY {SOURCE_KEY}",
        ]
    )
    assert " ".join(text.split()) == expected
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    assert (query["Period"], query["ReturnData"]) == (300, True)


def test_both_dead_letter_queues_and_function_errors_are_alarmed(
    resources: dict[str, Any], function: dict[str, Any], env: dict[str, Any]
) -> None:
    watched = set()
    for alarm in event_alarms(resources).values():
        if "Dimensions" not in alarm:
            continue  # a Metrics Insights alarm (per source), checked on its own
        (dimension,) = alarm["Dimensions"]
        if alarm["Namespace"] == "AWS/SQS":
            assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
            queue, attribute = get_att(dimension["Value"])
            assert attribute == "QueueName"
            watched.add(queue)
        elif alarm["Namespace"] == "AWS/Lambda":
            assert (alarm["MetricName"], dimension["Name"]) == ("Errors", "FunctionName")
            watched.add(ref(dimension["Value"]))

    schedule_dlq, _ = get_att(function["DeadLetterQueue"]["TargetArn"])
    assert watched == {ref(env["DEAD_LETTER_QUEUE_URL"]), schedule_dlq, FUNCTION}


def test_every_event_alarm_fires_above_zero_and_every_alarm_notifies_the_optional_targets(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    targets = [
        {"Fn::If": ["HasAlarmEmail", {"Ref": "AlarmTopic"}, {"Ref": "AWS::NoValue"}]},
        {"Fn::If": ["HasAlarmTopicArn", {"Ref": "AlarmTopicArn"}, {"Ref": "AWS::NoValue"}]},
    ]
    assert len(event_alarms(resources)) == 4
    for name, alarm in event_alarms(resources).items():
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0), name
        assert alarm["TreatMissingData"] == "notBreaching", name
    for name, alarm in alarms(resources).items():
        assert alarm["AlarmActions"] == targets, name
        assert alarm["AlarmDescription"], name
        description = Deployment(template, **TWO_EXTRAS).evaluate(alarm["AlarmDescription"])
        assert len(description) <= 1024, name  # as rendered, with a source's name in it
    assert resources["AlarmTopic"]["Condition"] == "HasAlarmEmail"


def test_alarms_are_stack_wide_but_the_gave_up_alarm_and_every_description_name_the_source(
    resources: dict[str, Any],
) -> None:
    for name, alarm in event_alarms(resources).items():
        dimensions = {d["Name"] for d in alarm.get("Dimensions", [])}
        description = alarm["AlarmDescription"]

        assert SOURCE_KEY not in dimensions, name  # a new source needs no new alarm
        assert '"source"' in description, name  # the log lines' or dead-letter messages' key
    gave_up = alarms(resources)["GaveUpAlarm"]["AlarmDescription"]
    assert "One contributor per source" in gave_up
    assert "log lines" in gave_up
    assert "dead-letter message" in gave_up


def created(deployment: Deployment, resources: Mapping[str, Any], names: Mapping[str, Any]) -> dict[str, Any]:
    """Of ``names``, the resources this deployment creates (their Condition holds), evaluated."""
    return {
        name: deployment.evaluate(resources[name]["Properties"])
        for name in names
        if "Condition" not in resources[name] or deployment.condition(resources[name]["Condition"])
    }


def extra_sources(count: int) -> dict[str, str]:
    """Parameters of a deployment with ``count`` extra sources named x1, x2, ..."""
    names = [f"x{n}" for n in range(1, count + 1)]
    secrets = [f"arn:aws:secretsmanager:us-east-1:123456789012:secret:seq-export/{name}-AbCdEf" for name in names]
    return {
        "ExtraSources": json.dumps(
            [
                {"name": name, "base_url": "https://api.sendgrid.com", "secret_id": secret}
                for name, secret in zip(names, secrets, strict=True)
            ]
        ),
        "ExtraSourceNames": ",".join(names),
        "ExtraSourceSecretArns": ",".join(secrets),
    }


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_every_source_the_function_exports_has_a_freshness_alarm_on_its_own_day_exported_series(
    template: dict[str, Any], resources: dict[str, Any], env: dict[str, Any], deployment: str
) -> None:
    parameters, _ = DEPLOYMENTS[deployment]
    settings = Settings.from_env(deployed_env(template, env, **parameters))

    fresh = created(Deployment(template, **parameters), resources, freshness_alarms(resources))

    watched = [{d["Name"]: d["Value"] for d in alarm["Dimensions"]} for alarm in fresh.values()]
    assert [dimensions[SOURCE_KEY] for dimensions in watched] == list(settings.source_names)
    assert all(dimensions["service"] == env["POWERTOOLS_SERVICE_NAME"] for dimensions in watched)
    assert next(iter(fresh)) == "FreshnessAlarm"  # the first source's, whatever the parameters


@pytest.mark.parametrize("count", [0, 1, 2, 5, 6])
def test_the_extra_sources_freshness_alarms_follow_extra_source_names_up_to_the_fifth(
    template: dict[str, Any], resources: dict[str, Any], count: int
) -> None:
    parameters = extra_sources(count)

    fresh = created(Deployment(template, **parameters), resources, freshness_alarms(resources))

    sources = [{d["Name"]: d["Value"] for d in alarm["Dimensions"]}[SOURCE_KEY] for alarm in fresh.values()]
    assert sources == [DEFAULT_SOURCE, *parameters["ExtraSourceNames"].split(",")][: min(count, 5) + 1]
    assert Deployment(template, **parameters).rules_broken() == []


def test_a_source_is_stale_after_28_hours_without_a_day_exported_and_missing_data_fires_it(
    template: dict[str, Any], resources: dict[str, Any], env: dict[str, Any]
) -> None:
    fresh = freshness_alarms(resources)

    assert len(fresh) == 6  # the first source's and five slots for the extra sources
    for name, alarm in fresh.items():
        assert (alarm["Namespace"], alarm["MetricName"]) == ({"Ref": "MetricsNamespace"}, MetricName.DAY_EXPORTED)
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}  # where the code emits it
        assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 3600), name
        assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 28, name  # every hour of 28 empty
        assert alarm["Period"] * alarm["EvaluationPeriods"] <= 7 * 86400, name  # CloudWatch's bound for hourly periods
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1), name
        assert alarm["TreatMissingData"] == "breaching", name  # a pipeline that stopped sends no data at all
        assert alarm["OKActions"] == alarm["AlarmActions"], name
    first = fresh.pop("FreshnessAlarm")
    for slot, (name, alarm) in enumerate(fresh.items(), start=1):
        assert (name, resources[name]["Condition"]) == (f"ExtraSourceFreshnessAlarm{slot}", f"HasExtraSource{slot}")
        # the slots differ in the name they pick only
        assert json.dumps(alarm).replace(f"[{slot - 1}, ", "[0, ") == json.dumps(fresh["ExtraSourceFreshnessAlarm1"])
        assert {k: v for k, v in alarm.items() if k not in ("AlarmDescription", "Dimensions")} == {
            k: v for k, v in first.items() if k not in ("AlarmDescription", "Dimensions")
        }


def test_a_freshness_alarm_names_its_source_and_what_to_check(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    deployment = Deployment(template, **TWO_EXTRAS)

    fresh = created(deployment, resources, freshness_alarms(resources))

    for alarm, source in zip(fresh.values(), ["global", "eu", "brand-b"], strict=True):
        description = alarm["AlarmDescription"]
        assert f'source "{source}"' in description
        for step in ("schedule is enabled", "role", "function's errors", "ScheduleDeadLetterQueue"):
            assert step in description, (source, step)
        assert f"seq-export backfill --source {source}" in description


# -- permissions -----------------------------------------------------------------------------
def test_the_function_uses_its_own_role_and_no_managed_policy(
    resources: dict[str, Any], function: dict[str, Any]
) -> None:
    assert get_att(function["Role"]) == (ROLE, "Arn")
    assert "Policies" not in function
    assert "ManagedPolicyArns" not in resources[ROLE]["Properties"]


def test_no_allow_statement_has_a_wildcard_action_or_an_unscoped_resource(resources: dict[str, Any]) -> None:
    roles = [r for r in resources.values() if r["Type"] == "AWS::IAM::Role"]
    assert roles
    for role in roles:
        for statement in statements(role):
            assert statement["Effect"] == "Allow"
            actions = as_list(statement["Action"])
            assert all("*" not in action for action in actions), statement
            if "*" in as_list(statement["Resource"]):
                assert set(actions) <= ACTIONS_WITHOUT_RESOURCE_TYPES, statement


@pytest.mark.parametrize(
    ("module", "service", "variables"),
    [
        (latest_store, "dynamodb", ["LATEST_SCORES_TABLE"]),
        (queued_days, "dynamodb", ["IDEMPOTENCY_TABLE"]),
        (job_queue, "sqs", ["RETRY_QUEUE_URL", "DEAD_LETTER_QUEUE_URL"]),
    ],
)
def test_every_aws_call_of_the_code_is_allowed_on_its_resource(
    resources: dict[str, Any], env: dict[str, Any], module: Any, service: str, variables: list[str]
) -> None:
    calls = client_calls(module)
    assert calls
    for call in calls:
        action = iam_action(service, call).replace("sqs:SendMessageBatch", "sqs:SendMessage")
        granted = allowed(resources[ROLE], action)
        for variable in variables:
            assert {"Fn::GetAtt": [ref(env[variable]), "Arn"]} in granted, (action, variable)


def s3_operations() -> set[str]:
    """S3 operations s3_sink calls, through its ``_call("Operation", ...)`` or on the client."""
    named = set(re.findall(r'_call\(\s*"([A-Za-z]+)"', inspect.getsource(s3_sink)))
    direct = {iam_action("s3", call).removeprefix("s3:") for call in client_calls(s3_sink)}
    return named | direct


def test_every_s3_call_of_the_code_is_allowed_under_the_prefix_only(
    resources: dict[str, Any], env: dict[str, Any]
) -> None:
    role = resources[ROLE]
    lakes = (f"arn:aws:s3:::lake/{layout.DEFAULT_PREFIX}/", f"arn:aws:s3:::lake/{layout.DEFAULT_ACCOUNT_PREFIX}/")
    names = {
        f"{ref(env['SCORES_BUCKET'])}.Arn": "arn:aws:s3:::lake",
        ref(env["SCORES_PREFIX"]): layout.DEFAULT_PREFIX,
        ref(env["ACCOUNT_SCORES_PREFIX"]): layout.DEFAULT_ACCOUNT_PREFIX,
    }
    day_object = "arn:aws:s3:::lake/" + S3Sink(cast(Any, None), "lake", layout.DEFAULT_PREFIX, "eu").key_for(
        "2026-11-22"
    )

    def granted(action: str) -> list[str]:
        return [render_sub(resource, names) for resource in allowed(role, action)]

    operations = s3_operations()
    assert "PutObject" in operations
    for operation in operations - {"ListObjectsV2"}:  # ListBucket: checked below
        action = "s3:PutObject" if operation in PUT_OBJECT_OPERATIONS else f"s3:{operation}"
        assert granted(action), action
        assert all(resource.startswith(lakes) for resource in granted(action)), (action, granted(action))
    # listing (to skip exported days) is allowed on the bucket, for the partition prefixes only
    (listing,) = [s for s in statements(role) if "s3:ListBucket" in as_list(s["Action"])]
    assert get_att(listing["Resource"]) == (ref(env["SCORES_BUCKET"]), "Arn")
    prefixes = [render_sub(p, names) for p in listing["Condition"]["StringLike"]["s3:prefix"]]
    assert prefixes == [f"{layout.DEFAULT_PREFIX}/source=*/dt=*", f"{layout.DEFAULT_ACCOUNT_PREFIX}/source=*/dt=*"]
    for prefix in (layout.DEFAULT_PREFIX, layout.DEFAULT_ACCOUNT_PREFIX):
        # what published_at lists (the day's key itself), for any source
        listed = S3Sink(cast(Any, None), "lake", prefix, "brand-b").key_for("2026-11-22")
        assert any(fnmatch(listed, allowed_prefix) for allowed_prefix in prefixes), listed
        assert not fnmatch(layout.legacy_day_key(prefix, "2026-11-22"), prefixes[0])
    assert any(fnmatch(day_object, resource) for resource in granted("s3:PutObject"))
    # the function reads and deletes only what it staged itself, never a day's object
    for action in ("s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectVersion"):
        assert not any(fnmatch(day_object, resource) for resource in granted(action)), action


def test_the_function_makes_clients_only_for_services_its_role_is_written_for(resources: dict[str, Any]) -> None:
    clients = set(re.findall(r'\.client\(\s*"([a-z0-9-]+)"', inspect.getsource(wiring)))
    services = {
        action.split(":")[0] for statement in statements(resources[ROLE]) for action in as_list(statement["Action"])
    }

    assert clients == SERVICES
    assert services == SERVICES | {"logs", "xray"}


def test_the_idempotency_queue_and_logs_permissions(resources: dict[str, Any], env: dict[str, Any]) -> None:
    role = resources[ROLE]
    idempotency = {"Fn::GetAtt": [ref(env["IDEMPOTENCY_TABLE"]), "Arn"]}
    retry_queue = {"Fn::GetAtt": [ref(env["RETRY_QUEUE_URL"]), "Arn"]}

    for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem"):
        assert idempotency in allowed(role, f"dynamodb:{action}")
    for action in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes"):
        assert allowed(role, f"sqs:{action}") == [retry_queue]
    assert allowed(role, "logs:PutLogEvents") == [{"Fn::GetAtt": ["ExportFunctionLogGroup", "Arn"]}]


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_the_function_may_read_exactly_the_configured_sources_secrets(
    template: dict[str, Any], env: dict[str, Any], deployment: str
) -> None:
    parameters, expected = DEPLOYMENTS[deployment]
    deployed = Deployment(template, **parameters)
    role = deployed.evaluate(template["Resources"][ROLE])
    granted = allowed(role, "secretsmanager:GetSecretValue")
    secrets = {source.secret_id for source in Settings.from_env(deployed_env(template, env, **parameters)).sources}

    assert sorted(granted) == sorted(secrets) == sorted({source.secret_id for source in expected})
    assert all("*" not in resource for resource in granted)


# -- deliberate exceptions and outputs ---------------------------------------------------------
def test_every_skipped_check_has_a_written_reason(resources: dict[str, Any]) -> None:
    skips = [
        (name, skip)
        for name, r in resources.items()
        for skip in r.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), name
        assert len(skip.get("comment", "").split()) >= 12, (name, skip["id"])


def test_outputs_name_everything_an_operator_needs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]

    assert {
        "ScoresBucketName",
        "ScoresPrefix",
        "LatestScoresTableName",
        "RetryQueueUrl",
        "DeadLetterQueueUrl",
        "ScheduleDeadLetterQueueUrl",
        "ExportFunctionName",
        "GlueDatabaseName",
        "GlueTableName",
        "AthenaExampleQuery",
        "SourceNames",
    } <= set(outputs)
    query = render_sub(outputs["AthenaExampleQuery"]["Value"], {"ScoresDatabase": "db", "ScoresTable": "t"})
    assert 'FROM "db"."t"' in query
    assert f"WHERE {PARTITION_KEY} >=" in query
    assert query.startswith(f"SELECT {SOURCE_KEY}, {PARTITION_KEY},")
    assert f"GROUP BY {SOURCE_KEY}, {PARTITION_KEY}" in query


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_the_source_names_output_lists_every_source_the_function_exports_first_first(
    template: dict[str, Any], env: dict[str, Any], deployment: str
) -> None:
    parameters, _ = DEPLOYMENTS[deployment]
    output = Deployment(template, **parameters).evaluate(template["Outputs"]["SourceNames"]["Value"])
    settings = Settings.from_env(deployed_env(template, env, **parameters))

    assert output == ",".join(settings.source_names)


def test_every_stack_output_the_cli_reads_is_one_the_template_declares(template: dict[str, Any]) -> None:
    assert set(OUTPUT_NAMES.values()) <= set(template["Outputs"])
