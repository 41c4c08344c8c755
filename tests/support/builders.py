"""Builders of test data: score records, records as the API sends them, score changes, jobs.

Each builds a valid value by default; a test names only what it changes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from seq_export.job_message import Job, JobId
from seq_export.layout import DEFAULT_SOURCE
from seq_export.models import METRIC_NAMES, SUBUSERS, Number, ScoreChange, ScoreRecord

#: The day ``record`` and ``records`` build for.
RECORD_DAY = "2024-05-10"
#: The day ``api_record`` builds for, and its metrics (the spec's example record).
API_DAY = "2026-11-22"
API_METRICS: dict[str, int | Decimal] = {
    "engagement_recency": 4,
    "open_rate": 1,
    "bounce_classification": 2,
    "bounce_rate": 4,
    "spam_rate": 4,
}


def record(
    n: int,
    *,
    score: int | Decimal | None = 4,
    username: str | None = "user",
    day: str = RECORD_DAY,
    source: str = DEFAULT_SOURCE,
) -> ScoreRecord:
    """Subuser ``1000 + n``, named ``user{n}``; ``score=None`` builds an ineligible record."""
    metrics: dict[str, Number] | None = None if score is None else dict.fromkeys(METRIC_NAMES, Decimal("2.5"))
    return ScoreRecord(
        source=source,
        date=day,
        user_id=str(1000 + n),
        username=None if username is None else f"{username}{n}",
        score=score,
        metrics=metrics,
    )


def records(count: int, **kwargs: Any) -> list[ScoreRecord]:
    """``record(0)`` to ``record(count - 1)``, each with the same ``kwargs``."""
    return [record(n, **kwargs) for n in range(count)]


def api_record(**changes: Any) -> dict[str, Any]:
    """A subuser record as the API sends it (the spec's example), with ``changes`` applied."""
    example = {"user_id": "180", "username": "jdoe123", "date": API_DAY, "score": 3, "metrics": dict(API_METRICS)}
    return example | changes


def score_change(n: int, old: int | Decimal = 4, new: int | Decimal = 2) -> ScoreChange:
    """Subuser ``n``'s score moving from ``old`` to ``new`` between two days."""
    return ScoreChange(
        source=DEFAULT_SOURCE,
        user_id=str(n),
        username=f"u{n}",
        date="2026-11-22",
        previous_date="2026-11-21",
        old_score=Decimal(old),
        new_score=new,
        old_metrics={"open_rate": Decimal("3.5")},
        new_metrics={"open_rate": 2},
    )


def job(date: str, *, kind: str = SUBUSERS, source: str = DEFAULT_SOURCE, attempt: int = 1, **fields: Any) -> Job:
    """A job of ``source``'s ``kind`` of ``date`` (the default source's subusers' day)."""
    return Job(JobId(source, kind, date), attempt=attempt, **fields)


def jobs(count: int) -> list[Job]:
    """Backfill jobs of the first ``count`` days of March 2024, in order."""
    return [job(f"2024-03-{n + 1:02d}", reason="backfill") for n in range(count)]


def day_metrics(
    *, records: int, pages: int, ineligible: int, written: int | None = None, **more: int
) -> dict[str, int]:
    """The stack-wide metrics of one exported subusers' day (``observability.MetricName``'s
    names): its heartbeat, what was read and what was written (every scored subuser unless
    ``written`` says otherwise), plus ``more`` (what else that run counted)."""
    return {
        "DayExported": 1,
        "RecordsExported": records,
        "PagesFetched": pages,
        "IneligibleSubusers": ineligible,
        "LatestScoresWritten": records - ineligible if written is None else written,
        **more,
    }
