"""template.yaml read as the tests read it: the loader for its short tags, a `Deployment` that
renders conditions, `!Sub`, `!If` and the parameters, and the helpers the template tests share."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import yaml

from seq_export import config
from seq_export.config import Env, Settings, Source
from seq_export.errors import ConfigError
from seq_export.layout import DEFAULT_SOURCE

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
