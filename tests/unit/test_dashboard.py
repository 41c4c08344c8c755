"""Fleet health at a glance: the stack's CloudWatch dashboard, read from template.yaml.

The dashboard body is JSON inside a ``!Sub``. It is rendered with a visible placeholder for every
``${...}`` (``<MetricsNamespace>``, ``<RetryQueue.QueueName>``, ...) and parsed, so a metric the
code does not emit (a typo, a renamed metric), or does not emit with the dimensions drawn, fails
here instead of drawing an empty graph, and each widget can be traced back to what it watches.
The ``!Sub``'s own variables (the extra sources' freshness alarms, which exist in some
deployments only) are evaluated for a deployment (the defaults unless a test names one).

Our metrics are drawn per source with SEARCH expressions over the schema
``{namespace,service,source}``; what the code emits, and with which dimensions, is read from the
EMF documents it prints (``emitted`` below), not from a list kept here.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, get_args

import pytest

from seq_export.errors import SeqExportError
from seq_export.job_message import Counters, Job, JobId
from seq_export.jobs import Exports, SourceExports, run_job
from seq_export.models import KINDS, SUBUSERS
from seq_export.observability import SOURCE_DIMENSION, MetricName, emit, emit_day_metrics, metrics
from seq_export.results import BAND_METRICS, BackfillResult, ExportResult, Status
from tests.support.template import TWO_EXTRAS, Deployment, deployed_env, load_template, render_sub

DASHBOARD = "ExportDashboard"
FUNCTION = "ExportFunction"
#: Every metric name the code emits (``MetricName`` holds them all).
EMITTED = {value for name, value in vars(MetricName).items() if name.isupper()}
SCORE_BANDS = [f"SubusersWithScore{band}" for band in range(1, 6)]
OUR_NAMESPACE = "<MetricsNamespace>"
#: The value of a dimension a SEARCH schema names without fixing it: every value, one line each.
ANY = "*"
#: Each source's series: the schema our SEARCH expressions use, after the namespace.
PER_SOURCE = ("service", SOURCE_DIMENSION)
#: A SEARCH for one metric of a schema: SEARCH('{ns,dim,...} MetricName="X"', 'Stat', period).
SEARCH = re.compile(
    r"SEARCH\(\s*'\s*\{(?P<schema>[^}]*)\}\s*MetricName=\"(?P<name>[A-Za-z0-9]+)\"\s*'"
    r"\s*,\s*'(?P<stat>[A-Za-z0-9.%]+)'\s*,\s*(?P<period>\d+)\s*\)"
)
SOURCE_LABEL = "${PROP('Dim.source')}"


@dataclass(frozen=True)
class Plotted:
    """One metric line of a metric widget, its shorthand ("." = as the row above) resolved; a
    SEARCH expression is one such line per source (its schema's dimensions valued ``ANY``)."""

    widget: str
    namespace: str
    name: str
    dimensions: dict[str, str] = field(hash=False)
    stat: str
    period: int | None = None
    label: str = ""
    search: bool = False


def sub_parts(sub: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A ``!Sub``'s text and its own variables (none in the short form)."""
    value = sub["Fn::Sub"]
    return (value, {}) if isinstance(value, str) else (value[0], value[1])


def placeholders(sub: Mapping[str, Any]) -> dict[str, str]:
    """A visible stand-in for each name a ``!Sub`` refers to outside its own variables: ``${X.Y}``
    becomes ``<X.Y>``."""
    text, variables = sub_parts(sub)
    return {name: f"<{name}>" for name in re.findall(r"\$\{([^!}][^}]*)\}", text) if name not in variables}


def rendered_body(template: Mapping[str, Any], sub: Mapping[str, Any], **parameters: str) -> dict[str, Any]:
    """The dashboard body with placeholders, its own variables as this deployment evaluates them."""
    text, variables = sub_parts(sub)
    values = {name: Deployment(template, **parameters).evaluate(value) for name, value in variables.items()}
    parsed: dict[str, Any] = json.loads(render_sub({"Fn::Sub": text}, placeholders(sub) | values))
    return parsed


def searched(widget: str, options: Mapping[str, Any]) -> Plotted:
    """The metric a SEARCH expression draws (one line per value of its schema's dimensions)."""
    match = SEARCH.fullmatch(options["expression"].strip())
    assert match, f"{widget}: not a SEARCH of one metric by its exact name: {options['expression']}"
    namespace, *dimensions = [part.strip().strip('"') for part in match["schema"].split(",")]
    return Plotted(
        widget=widget,
        namespace=namespace,
        name=match["name"],
        dimensions=dict.fromkeys(dimensions, ANY),
        stat=match["stat"],
        period=int(match["period"]),
        label=options.get("label", ""),
        search=True,
    )


def plotted(body: Mapping[str, Any]) -> Iterator[Plotted]:
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        properties = widget["properties"]
        above: list[str] = []
        for row in properties["metrics"]:
            options = row[-1] if isinstance(row[-1], dict) else {}
            if "expression" in options:
                assert len(row) == 1, row
                if "SEARCH(" in options["expression"]:
                    yield searched(properties["title"], options)
                continue  # other metric math: no metric of its own
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
                period=options.get("period", properties.get("period")),
                label=options.get("label", ""),
            )


INSIGHTS_QUERY = re.compile(
    r'SELECT (?P<stat>\w+)\((?P<name>\w+)\) FROM SCHEMA\("\$\{MetricsNamespace\}", (?P<dimensions>[\w, ]+)\)'
    r" WHERE service = '(?P<service>[\w-]+)' GROUP BY (?P<group>\w+)$"
)


def insights_query(alarm: str, expression: Any) -> Plotted:
    """The metric a Metrics Insights alarm query reads: its schema's dimensions, the service it
    filters on and the dimension it groups by (each value a contributor of its own)."""
    text = " ".join(str(expression["Fn::Sub"]).split())
    match = INSIGHTS_QUERY.match(text)
    assert match is not None, f"{alarm}: not a Metrics Insights query of ours: {text}"
    dimensions = {name.strip(): ANY for name in match["dimensions"].split(",")}
    assert match["group"] in dimensions, f"{alarm}: grouped by {match['group']}, not a dimension of its schema"
    return Plotted(
        widget=alarm,
        namespace=OUR_NAMESPACE,
        name=match["name"],
        dimensions=dimensions | {"service": match["service"]},
        stat=match["stat"].capitalize(),
    )


def alarm_metrics(resources: Mapping[str, Any]) -> Iterator[Plotted]:
    """The metrics the template's alarms watch, single-metric or metric-math."""
    for name, resource in resources.items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        alarm = resource["Properties"]
        stats = [(alarm, alarm.get("Statistic", ""))] if "MetricName" in alarm else []
        stats += [
            (query["MetricStat"]["Metric"], query["MetricStat"]["Stat"])
            for query in alarm.get("Metrics", [])
            if "MetricStat" in query
        ]
        for query in alarm.get("Metrics", []):
            if "Expression" in query and "SELECT" in str(query["Expression"]):
                yield insights_query(name, query["Expression"])
        for metric, stat in stats:
            namespace = metric["Namespace"]
            yield Plotted(
                widget=name,
                namespace=OUR_NAMESPACE if namespace == {"Ref": "MetricsNamespace"} else namespace,
                name=metric["MetricName"],
                dimensions={d["Name"]: d["Value"] for d in metric.get("Dimensions", [])},
                stat=stat,
            )


# -- what the code emits ----------------------------------------------------------------------
def _never_built(source: str) -> SourceExports:
    raise AssertionError(f"no source is configured, yet {source} was built")


def emf_series(output: str) -> dict[str, set[frozenset[str]]]:
    """Each metric name in the EMF documents of ``output``, with every dimension set it has there."""
    series: dict[str, set[frozenset[str]]] = {}
    for line in output.splitlines():
        if '"_aws"' not in line:
            continue
        for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
            for dimensions in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    series.setdefault(metric["Name"], set()).add(frozenset(dimensions))
    return series


@pytest.fixture(scope="module")
def emitted() -> dict[str, set[frozenset[str]]]:
    """Every metric the code emits with the dimension sets it emits it under, from the EMF it
    prints: every outcome of a job through ``emit``/``emit_day_metrics`` as ``run_job`` calls
    them, a failed job through ``run_job`` itself, and the counts emitted without a source."""
    day = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    counts = Counters(
        pages=1, records=3, ineligible=1, latest_written=2, band_2=1, band_4=1, score_sum=Decimal(6), score_drops=1
    )
    results = [
        ExportResult(
            status,
            JobId("eu", kind, day),
            attempt=1,
            counts=counts,
            score_change_events=1,
            score_change_events_failed=1,
            score_moves_counted=True,
            daily_digest="failed",
        )
        for status in get_args(Status)
        for kind in KINDS
    ]
    output = io.StringIO()
    metrics.clear_metrics()
    try:
        with redirect_stdout(output):
            for result in results:
                emit(result.metrics(), source=result.source)
                emit_day_metrics(result.source, result.date, result.fleet_metrics())
            with pytest.raises(SeqExportError):
                run_job(Exports(sources=(), build=_never_built), Job(JobId("eu", SUBUSERS, day), attempt=1))
            emit(BackfillResult(day, day, 1).metrics())
            emit({MetricName.INVALID_EVENTS: 1})  # as the handler does for an event it cannot parse
            metrics.flush_metrics()
    finally:
        metrics.clear_metrics()
    return emf_series(output.getvalue())


# -- the dashboard ----------------------------------------------------------------------------
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
def body(template: dict[str, Any], dashboard: dict[str, Any]) -> dict[str, Any]:
    return rendered_body(template, dashboard["DashboardBody"])


@pytest.fixture(scope="module")
def lines(body: dict[str, Any]) -> list[Plotted]:
    return list(plotted(body))


@pytest.fixture(scope="module")
def service(resources: dict[str, Any]) -> str:
    value: str = resources[FUNCTION]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    return value


def test_the_code_emits_export_metrics_stack_wide_and_per_source_and_fleet_metrics_per_source_only(
    emitted: dict[str, set[frozenset[str]]],
) -> None:
    """What the dashboard relies on, as the code prints it (the contract of observability.emit)."""
    stack_wide, per_source = frozenset({"service"}), frozenset(PER_SOURCE)
    fleet = {*BAND_METRICS, MetricName.MEAN_SCORE, MetricName.SCORE_DROPS, MetricName.SCORE_RISES}

    assert set(emitted) == EMITTED
    for name in fleet:
        assert emitted[name] == {per_source}, name
    for name in EMITTED - fleet - {MetricName.INVALID_EVENTS, MetricName.BACKFILL_DAYS_ENQUEUED}:
        assert emitted[name] == {stack_wide, per_source}, name
    assert emitted[MetricName.INVALID_EVENTS] == emitted[MetricName.BACKFILL_DAYS_ENQUEUED] == {stack_wide}


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
        ids = [row[-1]["id"] for row in properties["metrics"] if isinstance(row[-1], dict) and "id" in row[-1]]
        assert len(ids) == len(set(ids)), properties["title"]
        assert all(re.fullmatch(r"[a-z][A-Za-z0-9_]*", i) for i in ids), ids


def test_every_metric_of_ours_on_the_dashboard_or_an_alarm_is_one_the_code_emits_so(
    resources: dict[str, Any], lines: list[Plotted], service: str, emitted: dict[str, set[frozenset[str]]]
) -> None:
    ours = [line for line in [*lines, *alarm_metrics(resources)] if line.namespace == OUR_NAMESPACE]

    assert {line.widget for line in ours} >= {"GaveUpAlarm"}  # both sources were read
    unknown = sorted({(line.widget, line.name) for line in ours if line.name not in EMITTED})
    assert unknown == [], f"not emitted by the code (seq_export.observability.MetricName): {unknown}"
    for line in ours:
        # Powertools adds the service dimension to every metric; per source, also "source"
        assert frozenset(line.dimensions) in emitted[line.name], line
        assert line.dimensions.get("service", service) in (service, ANY), line


def test_the_dashboard_draws_each_of_our_metrics_per_source_with_a_search(lines: list[Plotted]) -> None:
    """A source added to the stack shows up without editing the dashboard, one labelled line each."""
    ours = [line for line in lines if line.namespace == OUR_NAMESPACE]

    assert ours
    for line in ours:
        assert line.search, line
        assert tuple(line.dimensions) == PER_SOURCE, line  # exactly the per-source series
        assert line.label.startswith(SOURCE_LABEL), line  # each line named by its source
    assert not [line for line in lines if line.search and line.namespace != OUR_NAMESPACE]


def test_the_searched_namespace_is_the_parameter_quoted(body: dict[str, Any]) -> None:
    """MetricsNamespace may hold / . # : -, which a SEARCH schema takes only in double quotes."""
    expressions = [
        row[-1]["expression"]
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for row in widget["properties"]["metrics"]
        if isinstance(row[-1], dict) and "expression" in row[-1]
    ]

    assert expressions
    for expression in expressions:
        assert f'{{"{OUR_NAMESPACE}",{",".join(PER_SOURCE)}}}' in expression, expression


def test_each_search_aggregates_over_its_widgets_period(body: dict[str, Any], lines: list[Plotted]) -> None:
    periods = {w["properties"]["title"]: w["properties"]["period"] for w in body["widgets"] if w["type"] == "metric"}

    for line in lines:
        if line.search:
            assert line.period == periods[line.widget], line


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
            assert line.period == (86400 if line.name in DAY_VALUES | {MetricName.MEAN_SCORE} else 3600), line


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


def test_export_health_shows_the_counts_per_source_the_function_and_its_queues(lines: list[Plotted]) -> None:
    shown = {(line.namespace, line.name, tuple(line.dimensions.items())) for line in lines}
    per_source = tuple((name, ANY) for name in PER_SOURCE)
    function = (("FunctionName", f"<{FUNCTION}>"),)

    for name in (
        MetricName.RECORDS_EXPORTED,
        MetricName.PAGES_FETCHED,
        MetricName.NOT_READY_RESCHEDULED,
        MetricName.CONTINUED,
        MetricName.GAVE_UP,
        MetricName.EXPORT_FAILED,
    ):
        assert (OUR_NAMESPACE, name, per_source) in shown, name
    for name in ("Duration", "Errors", "Throttles"):
        assert ("AWS/Lambda", name, function) in shown, name
    retry_queue = (("QueueName", "<RetryQueue.QueueName>"),)
    for name in ("ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"):
        assert ("AWS/SQS", name, retry_queue) in shown, name
    for queue in ("DeadLetterQueue", "ScheduleDeadLetterQueue"):
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", (("QueueName", f"<{queue}.QueueName>"),)) in shown


@pytest.mark.parametrize(("parameters", "sources"), [({}, 1), (TWO_EXTRAS, 3)], ids=["one source", "three sources"])
def test_the_alarm_widget_shows_every_alarm_the_deployment_creates(
    template: dict[str, Any],
    resources: dict[str, Any],
    dashboard: dict[str, Any],
    parameters: dict[str, str],
    sources: int,
) -> None:
    deployment = Deployment(template, **parameters)
    alarms = {
        name
        for name, r in resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and ("Condition" not in r or deployment.condition(r["Condition"]))
    }

    body = rendered_body(template, dashboard["DashboardBody"], **parameters)

    (widget,) = [w["properties"] for w in body["widgets"] if w["type"] == "alarm"]
    assert sorted(widget["alarms"]) == sorted(f"<{name}.Arn>" for name in alarms)
    assert len(alarms) == 4 + sources  # the stack-wide ones and a freshness alarm per source


def test_each_sources_freshness_alarm_watches_the_day_exported_series_the_code_emits_for_it(
    template: dict[str, Any], resources: dict[str, Any], emitted: dict[str, set[frozenset[str]]], service: str
) -> None:
    """The alarm's namespace, metric and dimensions are the code's, and its source each source's name."""
    deployment = Deployment(template, **TWO_EXTRAS)
    env = resources[FUNCTION]["Properties"]["Environment"]["Variables"]
    sources = deployed_env(template, env, **TWO_EXTRAS)["LAKE_SOURCE_NAMES"].split(",")
    fresh = [
        line
        for line in alarm_metrics(resources)
        if line.name == MetricName.DAY_EXPORTED
        and ("Condition" not in resources[line.widget] or deployment.condition(resources[line.widget]["Condition"]))
    ]

    assert [deployment.evaluate(line.dimensions[SOURCE_DIMENSION]) for line in fresh] == sources
    for line in fresh:
        assert line.namespace == OUR_NAMESPACE == f"<{env['POWERTOOLS_METRICS_NAMESPACE']['Ref']}>", line
        assert line.dimensions["service"] == service, line
        assert (
            frozenset(line.dimensions)
            in emitted[MetricName.DAY_EXPORTED]
            == {
                frozenset({"service"}),
                frozenset(PER_SOURCE),
            }
        ), line
        assert line.stat == "Sum", line


def test_the_dashboard_draws_the_days_each_source_exported_beside_its_other_export_counts(
    lines: list[Plotted],
) -> None:
    (days,) = [line for line in lines if line.name == MetricName.DAY_EXPORTED]

    assert (days.stat, days.period, days.search) == ("Sum", 3600, True)
    assert {line.name for line in lines if line.widget == days.widget} >= {
        MetricName.NOT_READY_RESCHEDULED,
        MetricName.GAVE_UP,
        MetricName.EXPORT_FAILED,
    }


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
