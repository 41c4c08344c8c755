"""template.yaml against the code: the function, its events, queues, storage and data catalog."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, cast

import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from local.stack import MAX_RECEIVE_COUNT
from seq_export import handler, layout
from seq_export.config import Settings
from seq_export.dates import RETENTION_DAYS, parse_day
from seq_export.invocations import DailyRun, parse_event
from seq_export.layout import PARTITION_KEY, PARTITION_KEYS, SOURCE_KEY, glue_columns
from seq_export.models import METRIC_NAMES, RECORD_KEYS, ScoreRecord
from seq_export.record_codec import encode_line
from seq_export.s3_sink import S3Sink
from seq_export_cli.local_lambda import FUNCTION_TIMEOUT_SECONDS, QUEUE_VISIBILITY_TIMEOUT_SECONDS, FakeLambdaContext
from tests.support.template import (
    DEPLOYMENTS,
    ROOT,
    Deployment,
    deployed_env,
    get_att,
    ref,
    render_sub,
    resource_type,
)


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
