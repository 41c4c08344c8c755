"""``seq_export.progress``: the events a caller in the function's process follows, and how `make
run` words a queued job's end from them (``local.report.job_line``), with no log line involved."""

from __future__ import annotations

from local.report import job_line
from seq_export.errors import InvalidEventError, SeqApiError
from seq_export.progress import JobEnded, PageFetched, Progress
from seq_export.results import ExportResult
from tests.support import job

DAY = "2026-11-22"
QUEUED = job(DAY, attempt=2).to_dict()


def test_a_job_that_ran_tells_its_results_summary() -> None:
    result = ExportResult(status="not_ready", job=job(DAY).id, attempt=2, next_attempt=3, next_attempt_delay_seconds=60)

    ended = JobEnded("m-1", result=result)

    assert ended.summary() == result.summary()
    assert job_line(QUEUED, ended.summary()) == f"subusers {DAY} attempt 2: not ready (202), re-scheduled in 60 s"


def test_a_failed_job_tells_its_error_and_stays_on_the_queue() -> None:
    ended = JobEnded("m-1", error=SeqApiError("SendGrid answered 502 for page 1", status=502))

    assert ended.summary() == {"status": "failed", "error": "SeqApiError", "reason": "SendGrid answered 502 for page 1"}
    assert job_line(QUEUED, ended.summary()) == (
        f"subusers {DAY} attempt 2: failed: SeqApiError: SendGrid answered 502 for page 1; it stays on the queue"
    )


def test_a_refused_job_says_why_and_stays_on_the_queue() -> None:
    ended = JobEnded("m-1", error=InvalidEventError("queued job 'date' is not a finished UTC day"), refused=True)

    assert ended.summary()["status"] == "invalid"
    assert job_line(QUEUED, ended.summary()) == (
        f"subusers {DAY} attempt 2: refused: queued job 'date' is not a finished UTC day; it stays on the queue"
    )


def test_a_job_that_told_nothing_was_a_duplicate_delivery() -> None:
    assert job_line(QUEUED, None, named=True) == (
        f"default subusers {DAY} attempt 2: done before: a duplicate delivery, answered from the idempotency record"
    )


def test_nobody_follows_by_default_and_a_follower_hears_each_event() -> None:
    page = PageFetched(job(DAY).id, page=1, records=1_000)
    pages: list[PageFetched] = []
    jobs: list[JobEnded] = []

    Progress().page_fetched(page)  # as in Lambda: told to no one, and no error
    Progress().job_ended(JobEnded("m-0"))
    Progress(on_page=pages.append, on_job=jobs.append).page_fetched(page)

    assert pages == [page]
    assert jobs == []
