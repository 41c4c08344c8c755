"""What the use cases return: a summary for the caller and the metrics the result stands for.

Each result knows its own metrics (names in ``observability.MetricName``), so the daily run, a
direct export and a queued job emit the same numbers for the same outcome, and tests assert them
from the result alone: the invocation's counts (``metrics``) and an exported subusers' day's fleet
health (``fleet_metrics``, emitted as one point at the score day by ``emit_day_metrics``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from seq_export.job_message import Counters, Job, JobId
from seq_export.models import ACCOUNT
from seq_export.observability import MetricName

#: ``superseded``: a duplicate of a continuation found its day already completed by its twin.
Status = Literal["exported", "continued", "not_ready", "gave_up", "superseded"]
#: What became of an exported subusers' day's digest event (score-change events on).
DigestOutcome = Literal["sent", "failed"]
BAND_METRICS = (
    MetricName.SUBUSERS_WITH_SCORE_1,
    MetricName.SUBUSERS_WITH_SCORE_2,
    MetricName.SUBUSERS_WITH_SCORE_3,
    MetricName.SUBUSERS_WITH_SCORE_4,
    MetricName.SUBUSERS_WITH_SCORE_5,
)


@dataclass(frozen=True, slots=True)
class ExportResult:
    status: Status
    job: JobId
    attempt: int
    counts: Counters = field(default_factory=Counters)
    s3_key: str | None = None
    bytes: int = 0
    next_attempt: int | None = None
    next_attempt_delay_seconds: int | None = None
    score_change_events: int = 0
    score_change_events_failed: int = 0
    #: Whether the write path saw the replaced scores (score-change events on): drops and rises counted.
    score_moves_counted: bool = False
    #: The day's ``SEQ Daily Digest`` event, where one was due (None: none was).
    daily_digest: DigestOutcome | None = None
    #: How many key ranges the day was fetched in (0: in order), and why ranges were given up for
    #: the in-order fetch, when they were.
    key_ranges: int = 0
    key_ranges_abandoned: str | None = None
    #: The request the job belongs to (``Job.run``), set by ``jobs.run_job``: a caller follows
    #: the day's re-schedules and dead letter by it.
    run: str | None = None

    @property
    def date(self) -> str:
        return self.job.date

    @property
    def kind(self) -> str:
        return self.job.kind

    @property
    def source(self) -> str:
        return self.job.source

    def summary(self) -> dict[str, Any]:
        """The answer of a direct invocation and the stored result of a queued job."""
        return {
            "status": self.status,
            "source": self.source,
            "date": self.date,
            "attempt": self.attempt,
            **self.counts.reported(),
            "s3_key": self.s3_key,
            "bytes": self.bytes,
            "next_attempt": self.next_attempt,
            "next_attempt_delay_seconds": self.next_attempt_delay_seconds,
            "kind": self.kind,
            "score_change_events": self.score_change_events,
            "score_change_events_failed": self.score_change_events_failed,
            "daily_digest": self.daily_digest,
            "key_ranges": self.key_ranges,
            "key_ranges_abandoned": self.key_ranges_abandoned,
            "run": self.run,
        }

    def metrics(self) -> dict[str, int]:
        """Counts to emit for this outcome (score-change counts only when there were any)."""
        emitted: dict[str, int] = {}
        if self.score_change_events:
            emitted[MetricName.SCORE_CHANGE_EVENTS] = self.score_change_events
        if self.score_change_events_failed:
            emitted[MetricName.SCORE_CHANGE_EVENTS_FAILED] = self.score_change_events_failed
        if self.daily_digest == "failed":
            emitted[MetricName.DAILY_DIGESTS_FAILED] = 1
        if self.status == "exported" and self.kind == ACCOUNT:
            emitted[MetricName.ACCOUNT_SCORES_EXPORTED] = self.counts.records
        elif self.status == "exported":
            emitted[MetricName.DAY_EXPORTED] = 1
            emitted[MetricName.RECORDS_EXPORTED] = self.counts.records
            emitted[MetricName.PAGES_FETCHED] = self.counts.pages
            emitted[MetricName.INELIGIBLE_SUBUSERS] = self.counts.ineligible
            emitted[MetricName.LATEST_SCORES_WRITTEN] = self.counts.latest_written
        elif self.status == "continued":
            emitted[MetricName.CONTINUED] = 1
        elif self.status == "not_ready":
            emitted[MetricName.NOT_READY_RESCHEDULED] = 1
        elif self.status == "superseded":
            emitted[MetricName.DUPLICATE_CONTINUATIONS] = 1
        else:
            emitted[MetricName.GAVE_UP] = 1
        return emitted

    @property
    def fleet_counted(self) -> bool:
        """An exported subusers' day whose counters add up (its bands and ineligible subusers to
        its records): its fleet health is known, for the metrics and the daily digest."""
        counts = self.counts
        return (
            self.status == "exported" and self.kind != ACCOUNT and counts.scored + counts.ineligible == counts.records
        )

    def fleet_metrics(self) -> dict[str, float]:
        """An exported subusers' day's fleet health, once for the whole day (its counters carried
        through any checkpoints): subusers per score band, which with ``IneligibleSubusers`` add up
        to the day's records; the mean score when any subuser is scored; and the score drops and
        rises where they were counted. None for other outcomes, the account's day, or counters
        that do not add up (a day continued from a checkpoint that did not carry the bands)."""
        counts = self.counts
        if not self.fleet_counted:
            return {}
        emitted: dict[str, float] = dict(zip(BAND_METRICS, counts.bands, strict=True))
        if counts.scored:
            emitted[MetricName.MEAN_SCORE] = float(counts.score_sum / counts.scored)
        if self.score_moves_counted:
            emitted[MetricName.SCORE_DROPS] = counts.score_drops
            emitted[MetricName.SCORE_RISES] = counts.score_rises
        return emitted


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """What a backfill did with each job of its range: queued it (under ``run``), or skipped it
    as already exported or as already queued or running (by the run that holds it)."""

    first: str
    last: str
    days: int
    enqueued: list[Job] = field(default_factory=list)
    skipped: list[JobId] = field(default_factory=list)  # already exported
    already_queued: dict[JobId, str] = field(default_factory=dict)  # by the run holding each
    run: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "status": "enqueued",
            "from": self.first,
            "to": self.last,
            "days": self.days,
            "run": self.run,
            "enqueued": [job.id.to_dict() for job in self.enqueued],
            "skipped_already_exported": [job.to_dict() for job in self.skipped],
            "skipped_already_queued": [job.to_dict() | {"run": run} for job, run in self.already_queued.items()],
        }

    def metrics(self) -> dict[str, int]:
        return {MetricName.BACKFILL_DAYS_ENQUEUED: len(self.enqueued)}
