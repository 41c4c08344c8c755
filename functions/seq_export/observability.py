"""Powertools Logger, Metrics and Tracer shared by the package.

One instance each, so every module logs with the same service and keys. They work outside
Lambda too (the local runner, tests): set ``POWERTOOLS_TRACE_DISABLED=true`` there.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "seq-export"
DEFAULT_NAMESPACE = "SeqExport"

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE))
tracer = Tracer(service=SERVICE)


class MetricName:
    """EMF metric names: the template's alarms and dashboards refer to these."""

    RECORDS_EXPORTED = "RecordsExported"
    PAGES_FETCHED = "PagesFetched"
    INELIGIBLE_SUBUSERS = "IneligibleSubusers"
    LATEST_SCORES_WRITTEN = "LatestScoresWritten"
    NOT_READY_RESCHEDULED = "NotReadyRescheduled"
    CONTINUED = "ContinuedAfterTimeLimit"
    GAVE_UP = "GaveUp"
    EXPORT_FAILED = "ExportFailed"
    INVALID_EVENTS = "InvalidEvents"
    BACKFILL_DAYS_ENQUEUED = "BackfillDaysEnqueued"
