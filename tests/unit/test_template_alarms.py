"""template.yaml against the code: the alarms, each on a metric the code emits."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from seq_export.config import Settings
from seq_export.layout import DEFAULT_SOURCE, SOURCE_KEY
from seq_export.observability import MetricName
from tests.support.template import (
    DEPLOYMENTS,
    FUNCTION,
    TWO_EXTRAS,
    Deployment,
    deployed_env,
    get_att,
    ref,
)


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
