"""Fleet health at a glance: the stack's CloudWatch dashboard, read from template.yaml.

The dashboard body is JSON inside a ``!Sub``. It is rendered with a visible placeholder for every
``${...}`` (``<MetricsNamespace>``, ``<RetryQueue.QueueName>``, ...) and parsed, so a metric the
code does not emit (a typo, a renamed metric) fails here instead of drawing an empty graph, and
each widget can be traced back to the resource it watches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from seq_export.observability import MetricName
from tests.unit.test_template import load_template, render_sub

DASHBOARD = "ExportDashboard"
FUNCTION = "ExportFunction"
#: Every metric name the code emits (``MetricName`` holds them all).
EMITTED = {value for name, value in vars(MetricName).items() if name.isupper()}
SCORE_BANDS = [f"SubusersWithScore{band}" for band in range(1, 6)]
OUR_NAMESPACE = "<MetricsNamespace>"


@dataclass(frozen=True)
class Plotted:
    """One metric line of a metric widget, its shorthand ("." = as the row above) resolved."""

    widget: str
    namespace: str
    name: str
    dimensions: dict[str, str] = field(hash=False)
    stat: str


def placeholders(sub: Mapping[str, Any]) -> dict[str, str]:
    """A visible stand-in for each name a ``!Sub`` refers to: ``${X.Y}`` becomes ``<X.Y>``."""
    return {name: f"<{name}>" for name in re.findall(r"\$\{([^!}][^}]*)\}", sub["Fn::Sub"])}


def plotted(body: Mapping[str, Any]) -> Iterator[Plotted]:
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        properties = widget["properties"]
        above: list[str] = []
        for row in properties["metrics"]:
            options = row[-1] if isinstance(row[-1], dict) else {}
            if "expression" in options:  # metric math: no metric of its own
                continue
            fields = [above[i] if value == "." else value for i, value in enumerate(r for r in row if r is not options)]
            above = fields
            namespace, name, *pairs = fields
            yield Plotted(
                widget=properties["title"],
                namespace=namespace,
                name=name,
                dimensions=dict(zip(pairs[::2], pairs[1::2], strict=True)),
                # CloudWatch's default statistic is Average
                stat=options.get("stat", properties.get("stat", "Average")),
            )


def alarm_metrics(resources: Mapping[str, Any]) -> Iterator[Plotted]:
    """The metrics the template's alarms watch, single-metric or metric-math."""
    for name, resource in resources.items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        alarm = resource["Properties"]
        stats = [(alarm, alarm.get("Statistic", ""))] if "MetricName" in alarm else []
        stats += [(query["MetricStat"]["Metric"], query["MetricStat"]["Stat"]) for query in alarm.get("Metrics", [])]
        for metric, stat in stats:
            namespace = metric["Namespace"]
            yield Plotted(
                widget=name,
                namespace=OUR_NAMESPACE if namespace == {"Ref": "MetricsNamespace"} else namespace,
                name=metric["MetricName"],
                dimensions={d["Name"]: d["Value"] for d in metric.get("Dimensions", [])},
                stat=stat,
            )


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = template["Resources"]
    return resources


@pytest.fixture(scope="module")
def dashboard(resources: dict[str, Any]) -> dict[str, Any]:
    (name,) = [n for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    assert name == DASHBOARD
    properties: dict[str, Any] = resources[name]["Properties"]
    return properties


@pytest.fixture(scope="module")
def body(dashboard: dict[str, Any]) -> dict[str, Any]:
    sub = dashboard["DashboardBody"]
    parsed: dict[str, Any] = json.loads(render_sub(sub, placeholders(sub)))
    return parsed


@pytest.fixture(scope="module")
def lines(body: dict[str, Any]) -> list[Plotted]:
    return list(plotted(body))


@pytest.fixture(scope="module")
def service(resources: dict[str, Any]) -> str:
    value: str = resources[FUNCTION]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    return value


def test_the_placeholders_name_only_resources_parameters_and_pseudo_parameters(
    template: dict[str, Any], dashboard: dict[str, Any]
) -> None:
    for name in placeholders(dashboard["DashboardBody"]):
        known = (
            name.startswith("AWS::") or name in template["Parameters"] or name.split(".")[0] in template["Resources"]
        )
        assert known, name


def test_every_metric_widget_names_its_region_title_and_metrics(body: dict[str, Any]) -> None:
    widgets = [w for w in body["widgets"] if w["type"] == "metric"]

    assert widgets
    for widget in widgets:
        properties = widget["properties"]
        assert properties["region"] == "<AWS::Region>", properties["title"]
        assert properties["metrics"], properties["title"]
        assert {"x", "y", "width", "height"} <= set(widget), properties["title"]


def test_every_metric_of_ours_on_the_dashboard_or_an_alarm_is_one_the_code_emits(
    resources: dict[str, Any], lines: list[Plotted], service: str
) -> None:
    ours = [line for line in [*lines, *alarm_metrics(resources)] if line.namespace == OUR_NAMESPACE]

    assert {line.widget for line in ours} >= {"GaveUpAlarm"}  # both sources were read
    unknown = sorted({(line.widget, line.name) for line in ours if line.name not in EMITTED})
    assert unknown == [], f"not emitted by the code (seq_export.observability.MetricName): {unknown}"
    for line in ours:  # Powertools adds the service dimension to every metric
        assert line.dimensions == {"service": service}, line


DAY_VALUES = {f"SubusersWithScore{band}" for band in range(1, 6)} | {
    MetricName.SCORE_DROPS,
    MetricName.SCORE_RISES,
    MetricName.INELIGIBLE_SUBUSERS,
}


def test_counts_are_summed_a_days_values_taken_once_and_the_mean_score_averaged(lines: list[Plotted]) -> None:
    """A day's fleet values are one point at the score day: Maximum, so a re-run does not double them."""
    for line in lines:
        if line.namespace == OUR_NAMESPACE:
            expected = (
                "Average" if line.name == MetricName.MEAN_SCORE else "Maximum" if line.name in DAY_VALUES else "Sum"
            )
            assert line.stat == expected, line


def test_fleet_health_stacks_the_score_bands_beside_the_mean_drops_rises_and_ineligible(
    body: dict[str, Any], lines: list[Plotted]
) -> None:
    ours = {line.name: line for line in lines if line.namespace == OUR_NAMESPACE}
    (bands,) = {ours[band].widget for band in SCORE_BANDS}
    (widget,) = [w["properties"] for w in body["widgets"] if w["properties"].get("title") == bands]

    assert [line.name for line in lines if line.widget == bands] == SCORE_BANDS  # only the bands, 1 to 5
    assert (widget["view"], widget["stacked"]) == ("timeSeries", True)  # a stacked area over time
    assert {
        MetricName.MEAN_SCORE,
        MetricName.INELIGIBLE_SUBUSERS,
        MetricName.SCORE_DROPS,
        MetricName.SCORE_RISES,
    } <= set(ours)


def test_export_health_shows_the_counts_the_function_and_its_queues(lines: list[Plotted], service: str) -> None:
    shown = {(line.namespace, line.name, tuple(line.dimensions.items())) for line in lines}
    ours = (("service", service),)
    function = (("FunctionName", f"<{FUNCTION}>"),)

    for name in (
        MetricName.RECORDS_EXPORTED,
        MetricName.PAGES_FETCHED,
        MetricName.NOT_READY_RESCHEDULED,
        MetricName.CONTINUED,
        MetricName.GAVE_UP,
        MetricName.EXPORT_FAILED,
    ):
        assert (OUR_NAMESPACE, name, ours) in shown, name
    for name in ("Duration", "Errors", "Throttles"):
        assert ("AWS/Lambda", name, function) in shown, name
    retry_queue = (("QueueName", "<RetryQueue.QueueName>"),)
    for name in ("ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"):
        assert ("AWS/SQS", name, retry_queue) in shown, name
    for queue in ("DeadLetterQueue", "ScheduleDeadLetterQueue"):
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", (("QueueName", f"<{queue}.QueueName>"),)) in shown


def test_the_alarm_widget_shows_every_alarm_of_the_stack(resources: dict[str, Any], body: dict[str, Any]) -> None:
    alarms = {name for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    (widget,) = [w["properties"] for w in body["widgets"] if w["type"] == "alarm"]

    assert sorted(widget["alarms"]) == sorted(f"<{name}.Arn>" for name in alarms)


def test_the_dashboard_is_named_per_stack_and_region_and_its_url_is_an_output(
    template: dict[str, Any], dashboard: dict[str, Any]
) -> None:
    names = {"AWS::StackName": "seq-export", "AWS::Region": "eu-west-1"}
    name = render_sub(dashboard["DashboardName"], names)
    url = render_sub(template["Outputs"]["DashboardUrl"]["Value"], names | {DASHBOARD: name})

    assert name == "seq-export-eu-west-1"  # dashboards are global to the account
    assert url == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        "#dashboards/dashboard/seq-export-eu-west-1"
    )
