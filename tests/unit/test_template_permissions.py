"""template.yaml against the code: the function's role, the skipped checks and the outputs."""

from __future__ import annotations

import inspect
import re
from fnmatch import fnmatch
from typing import Any, cast

import pytest

from seq_export import job_queue, latest_store, layout, queued_days, s3_sink, wiring
from seq_export.config import Settings
from seq_export.layout import PARTITION_KEY, SOURCE_KEY
from seq_export.s3_sink import S3Sink
from seq_export_cli.app import OUTPUT_NAMES
from tests.support.template import (
    ACTIONS_WITHOUT_RESOURCE_TYPES,
    DEPLOYMENTS,
    PUT_OBJECT_OPERATIONS,
    ROLE,
    SERVICES,
    Deployment,
    allowed,
    as_list,
    client_calls,
    deployed_env,
    get_att,
    iam_action,
    ref,
    render_sub,
    statements,
)


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
