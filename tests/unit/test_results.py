"""What each outcome reports: the summary a caller gets and the metrics it emits."""

from __future__ import annotations

import pytest

from seq_export.job_message import Counters, JobId
from seq_export.layout import DEFAULT_SOURCE
from seq_export.models import ACCOUNT
from seq_export.results import BackfillResult, DigestOutcome, ExportResult, Status
from tests.support import jobs

DAY = "2026-11-22"
DAY_JOB = JobId(DEFAULT_SOURCE, "subusers", DAY)
ACCOUNT_JOB = JobId(DEFAULT_SOURCE, ACCOUNT, DAY)
COUNTS = Counters(pages=3, records=2_500, ineligible=357, latest_written=2_100, latest_kept_newer=43)
SUMMARY_KEYS = {
    "source",
    "status",
    "date",
    "attempt",
    "pages",
    "records",
    "ineligible",
    "latest_written",
    "latest_kept_newer",
    "s3_key",
    "bytes",
    "next_attempt",
    "next_attempt_delay_seconds",
    "kind",
    "score_change_events",
    "score_change_events_failed",
    "daily_digest",
    "key_ranges",
    "key_ranges_abandoned",
    "run",
}
STATUSES: tuple[Status, ...] = ("exported", "continued", "not_ready", "gave_up")


# -- ExportResult.metrics --------------------------------------------------------------------


def test_an_exported_subusers_day_emits_one_day_exported_and_its_records_pages_ineligible_and_latest_writes() -> None:
    result = ExportResult("exported", DAY_JOB, attempt=1, counts=COUNTS, s3_key="k", bytes=10)

    emitted = result.metrics()

    assert emitted == {
        "DayExported": 1,
        "RecordsExported": 2_500,
        "PagesFetched": 3,
        "IneligibleSubusers": 357,
        "LatestScoresWritten": 2_100,
    }


def test_an_exported_day_emits_its_counts_even_when_they_are_zero() -> None:
    result = ExportResult("exported", DAY_JOB, attempt=1)

    emitted = result.metrics()

    assert emitted == {
        "DayExported": 1,  # an empty day is a day exported: the source is not stale
        "RecordsExported": 0,
        "PagesFetched": 0,
        "IneligibleSubusers": 0,
        "LatestScoresWritten": 0,
    }


def test_an_exported_account_day_emits_only_its_account_scores() -> None:
    result = ExportResult("exported", ACCOUNT_JOB, attempt=1, counts=Counters(pages=1, records=1))

    emitted = result.metrics()

    assert emitted == {"AccountScoresExported": 1}


@pytest.mark.parametrize("kind", ["subusers", ACCOUNT])
@pytest.mark.parametrize(
    ("status", "metric"),
    [("continued", "ContinuedAfterTimeLimit"), ("not_ready", "NotReadyRescheduled"), ("gave_up", "GaveUp")],
)
def test_an_unfinished_day_emits_one_count_of_its_outcome_and_none_of_its_records(
    status: Status, metric: str, kind: str
) -> None:
    result = ExportResult(status, JobId(DEFAULT_SOURCE, kind, DAY), attempt=2, counts=COUNTS)

    emitted = result.metrics()

    assert emitted == {metric: 1}


@pytest.mark.parametrize("status", STATUSES)
def test_score_change_events_sent_and_failed_are_emitted_with_any_outcome(status: Status) -> None:
    result = ExportResult(status, DAY_JOB, attempt=1, score_change_events=12, score_change_events_failed=3)

    emitted = result.metrics()

    assert emitted["ScoreChangeEvents"] == 12
    assert emitted["ScoreChangeEventsFailed"] == 3


def test_score_change_counts_are_left_out_when_there_were_none() -> None:
    result = ExportResult("exported", DAY_JOB, attempt=1, counts=COUNTS)

    emitted = result.metrics()

    assert "ScoreChangeEvents" not in emitted
    assert "ScoreChangeEventsFailed" not in emitted


@pytest.mark.parametrize(("digest", "failed"), [("failed", 1), ("sent", None), (None, None)])
def test_a_daily_digest_that_could_not_be_sent_is_counted(digest: DigestOutcome | None, failed: int | None) -> None:
    result = ExportResult("exported", DAY_JOB, attempt=1, counts=COUNTS, daily_digest=digest)

    emitted = result.metrics()

    assert emitted.get("DailyDigestsFailed") == failed
    assert emitted["DayExported"] == 1  # the day itself is exported either way


def test_no_failed_score_change_count_is_emitted_when_every_event_was_sent() -> None:
    result = ExportResult("exported", DAY_JOB, attempt=1, counts=COUNTS, score_change_events=5)

    emitted = result.metrics()

    assert emitted["ScoreChangeEvents"] == 5
    assert "ScoreChangeEventsFailed" not in emitted


# -- ExportResult.summary --------------------------------------------------------------------


@pytest.mark.parametrize("status", STATUSES)
def test_every_outcome_summarises_with_the_same_keys(status: Status) -> None:
    result = ExportResult(status, DAY_JOB, attempt=1)

    summary = result.summary()

    assert set(summary) == SUMMARY_KEYS
    assert (summary["status"], summary["date"], summary["kind"]) == (status, DAY, "subusers")


def test_the_summary_carries_the_counts_flat_beside_the_outcome() -> None:
    result = ExportResult(
        "not_ready",
        ACCOUNT_JOB,
        attempt=2,
        counts=COUNTS,
        next_attempt=3,
        next_attempt_delay_seconds=120,
        score_change_events=4,
        score_change_events_failed=1,
        run="0123456789abcdef",
    )

    summary = result.summary()

    assert summary == {
        "status": "not_ready",
        "source": DEFAULT_SOURCE,
        "date": DAY,
        "attempt": 2,
        "pages": 3,
        "records": 2_500,
        "ineligible": 357,
        "latest_written": 2_100,
        "latest_kept_newer": 43,
        "s3_key": None,
        "bytes": 0,
        "next_attempt": 3,
        "next_attempt_delay_seconds": 120,
        "kind": ACCOUNT,
        "score_change_events": 4,
        "score_change_events_failed": 1,
        "daily_digest": None,
        "key_ranges": 0,
        "key_ranges_abandoned": None,
        "run": "0123456789abcdef",
    }


# -- BackfillResult --------------------------------------------------------------------------


def test_a_backfill_emits_the_number_of_jobs_it_enqueued() -> None:
    result = BackfillResult(first="2024-03-01", last="2024-03-03", days=3, enqueued=jobs(3))

    emitted = result.metrics()

    assert emitted == {"BackfillDaysEnqueued": 3}


def test_a_backfill_of_days_all_exported_already_emits_zero_enqueued() -> None:
    skipped = [JobId(DEFAULT_SOURCE, "subusers", "2024-03-01"), JobId(DEFAULT_SOURCE, ACCOUNT, "2024-03-01")]
    result = BackfillResult(first="2024-03-01", last="2024-03-01", days=1, skipped=skipped)

    emitted = result.metrics()

    assert emitted == {"BackfillDaysEnqueued": 0}


def test_a_backfill_summary_names_each_job_enqueued_and_skipped_by_kind_and_day() -> None:
    result = BackfillResult(
        first="2024-03-01",
        last="2024-03-03",
        days=3,
        enqueued=jobs(2)[1:],
        skipped=[JobId(DEFAULT_SOURCE, "subusers", "2024-03-01")],
        already_queued={JobId(DEFAULT_SOURCE, "subusers", "2024-03-03"): "daily-2024-03-03"},
        run="0123456789abcdef",
    )

    summary = result.summary()

    assert summary == {
        "status": "enqueued",
        "from": "2024-03-01",
        "to": "2024-03-03",
        "days": 3,
        "run": "0123456789abcdef",
        "enqueued": [{"source": "default", "kind": "subusers", "date": "2024-03-02"}],
        "skipped_already_exported": [{"source": "default", "kind": "subusers", "date": "2024-03-01"}],
        "skipped_already_queued": [
            {"source": "default", "kind": "subusers", "date": "2024-03-03", "run": "daily-2024-03-03"}
        ],
    }
