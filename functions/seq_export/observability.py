"""Powertools Logger, Metrics and Tracer shared by the package.

One instance each, so every module logs with the same service and keys. They work outside
Lambda too (the local runner, tests): set ``POWERTOOLS_TRACE_DISABLED=true`` there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any, Protocol, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

SERVICE = "seq-export"
DEFAULT_NAMESPACE = "SeqExport"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE)
#: CloudWatch accepts EMF timestamps up to 14 days old. A day's fleet metrics are stamped at its
#: noon (UTC), so a day at most 13 days before today stays clear of that; older ones are not
#: emitted (Athena has them).
DAY_METRICS_MAX_AGE_DAYS = 13

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)


def tracing_enabled(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Powertools' own rule: traced in Lambda unless POWERTOOLS_TRACE_DISABLED is true."""
    disabled = environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "true", "yes", "on")
    return "AWS_LAMBDA_FUNCTION_NAME" in environ and not disabled


F = TypeVar("F", bound=Callable[..., Any])


class TracerLike(Protocol):
    """What the handler uses of Powertools Tracer."""

    def capture_lambda_handler(self, *, capture_response: bool = ...) -> Callable[[F], F]: ...


class _NoTracer:
    """Stands in for Powertools Tracer where tracing is off: importing the X-Ray SDK builds an
    X-Ray client at import time (about 150 ms), which a run without tracing should not pay."""

    def capture_lambda_handler(self, *, capture_response: bool = True) -> Callable[[F], F]:  # noqa: ARG002
        return lambda handler: handler


def _tracer() -> TracerLike:
    if not tracing_enabled():
        return _NoTracer()
    from aws_lambda_powertools import Tracer  # noqa: PLC0415 - only where traces are recorded

    return cast(TracerLike, Tracer(service=SERVICE))


tracer = _tracer()


class MetricName:
    """EMF metric names: the template's alarms and dashboards refer to these."""

    RECORDS_EXPORTED = "RecordsExported"
    #: 1 per exported subusers' day: each source's freshness alarm watches its own series.
    DAY_EXPORTED = "DayExported"
    PAGES_FETCHED = "PagesFetched"
    INELIGIBLE_SUBUSERS = "IneligibleSubusers"
    LATEST_SCORES_WRITTEN = "LatestScoresWritten"
    NOT_READY_RESCHEDULED = "NotReadyRescheduled"
    CONTINUED = "ContinuedAfterTimeLimit"
    DUPLICATE_CONTINUATIONS = "DuplicateContinuations"
    ACCOUNT_SCORES_EXPORTED = "AccountScoresExported"
    SCORE_CHANGE_EVENTS = "ScoreChangeEvents"
    SCORE_CHANGE_EVENTS_FAILED = "ScoreChangeEventsFailed"
    DAILY_DIGESTS_FAILED = "DailyDigestsFailed"
    GAVE_UP = "GaveUp"
    EXPORT_FAILED = "ExportFailed"
    INVALID_EVENTS = "InvalidEvents"
    BACKFILL_DAYS_ENQUEUED = "BackfillDaysEnqueued"
    # fleet health, one point per exported score day
    SUBUSERS_WITH_SCORE_1 = "SubusersWithScore1"
    SUBUSERS_WITH_SCORE_2 = "SubusersWithScore2"
    SUBUSERS_WITH_SCORE_3 = "SubusersWithScore3"
    SUBUSERS_WITH_SCORE_4 = "SubusersWithScore4"
    SUBUSERS_WITH_SCORE_5 = "SubusersWithScore5"
    MEAN_SCORE = "MeanScore"
    SCORE_DROPS = "ScoreDrops"
    SCORE_RISES = "ScoreRises"


#: Metrics that are not counts.
_UNITS: Mapping[str, MetricUnit] = {MetricName.MEAN_SCORE: MetricUnit.NoUnit}


#: The dimension that splits every export and fleet metric by source (beside ``service``).
SOURCE_DIMENSION = "source"


def emit(counts: Mapping[str, int], *, source: str | None = None) -> None:
    """Add each count to this invocation's EMF metrics (flushed by the handler's decorator), the
    stack's total that the alarms watch; with ``source``, also as that source's own series
    (dimensions ``service`` and ``source``, in a document of its own, since one invocation may
    run jobs of several sources)."""
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if source is not None and counts:
        _flush_source_document(source, counts)


def _flush_source_document(source: str, values: Mapping[str, float], *, timestamp: datetime | None = None) -> None:
    document = AmazonCloudWatchEMFProvider(namespace=NAMESPACE, service=SERVICE)
    document.add_dimension(name=SOURCE_DIMENSION, value=source)
    for name, value in values.items():
        document.add_metric(name=name, unit=_UNITS.get(name, MetricUnit.Count), value=value)
    if timestamp is not None:
        document.set_timestamp(timestamp)
    document.flush_metrics()


def day_metrics_time(day: str, now: datetime | None = None) -> datetime | None:
    """The time a score day's fleet metrics are stamped with: the day's noon (UTC), so each
    day is one point whenever it is exported; None for a day more than 13 days before today."""
    score_day = date.fromisoformat(day)
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    if (today - score_day).days > DAY_METRICS_MAX_AGE_DAYS:
        return None
    return datetime.combine(score_day, time(12), tzinfo=UTC)


def emit_day_metrics(source: str, day: str, values: Mapping[str, float], *, now: datetime | None = None) -> bool:
    """Print ``values`` now as an EMF document of their own, in the same namespace with the
    ``service`` and ``source`` dimensions, stamped with the score day (``day_metrics_time``): a
    backfill of an old day does not pile onto today's point, while the invocation's other metrics
    keep its time. A fleet is one source's subusers, so there is no stack-wide series. Returns
    whether they were emitted (not for a day older than 13 days, nor no values)."""
    if not values:
        return False
    stamp = day_metrics_time(day, now)
    if stamp is None:
        logger.info("Fleet metrics left to Athena: the day is older than CloudWatch takes", source=source, date=day)
        return False
    _flush_source_document(source, values, timestamp=stamp)
    return True
