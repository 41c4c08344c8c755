"""Powertools Logger, Metrics and Tracer shared by the package.

One instance each, so every module logs with the same service and keys. They work outside
Lambda too (the local runner, tests): set ``POWERTOOLS_TRACE_DISABLED=true`` there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "seq-export"
DEFAULT_NAMESPACE = "SeqExport"

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE))


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
    PAGES_FETCHED = "PagesFetched"
    INELIGIBLE_SUBUSERS = "IneligibleSubusers"
    LATEST_SCORES_WRITTEN = "LatestScoresWritten"
    NOT_READY_RESCHEDULED = "NotReadyRescheduled"
    CONTINUED = "ContinuedAfterTimeLimit"
    DUPLICATE_CONTINUATIONS = "DuplicateContinuations"
    ACCOUNT_SCORES_EXPORTED = "AccountScoresExported"
    SCORE_CHANGE_EVENTS = "ScoreChangeEvents"
    SCORE_CHANGE_EVENTS_FAILED = "ScoreChangeEventsFailed"
    GAVE_UP = "GaveUp"
    EXPORT_FAILED = "ExportFailed"
    INVALID_EVENTS = "InvalidEvents"
    BACKFILL_DAYS_ENQUEUED = "BackfillDaysEnqueued"


def emit(counts: Mapping[str, int]) -> None:
    """Add each count to this invocation's EMF metrics (flushed by the handler's decorator)."""
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
