"""A subusers' day's fleet health: score bands, the mean score, drops and rises, carried across
checkpoints and emitted once per score day, stamped with that day."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from seq_export.errors import InvalidEventError
from seq_export.job_message import Checkpoint, Counters, Job, JobId
from seq_export.layout import DEFAULT_SOURCE
from seq_export.models import ACCOUNT, SUBUSERS, ScoreRecord
from seq_export.observability import NAMESPACE, SERVICE, day_metrics_time, emit_day_metrics
from seq_export.results import ExportResult, Status
from seq_export.score_bands import ScoreMoves, band_of, tally
from tests.support import job, record, score_change

DAY = "2026-11-22"
BANDS = [f"SubusersWithScore{band}" for band in range(1, 6)]


def scored(*scores: int | str | None) -> list[ScoreRecord]:
    """One record per score (text for decimals, None for an ineligible subuser)."""
    return [
        record(n, score=None if s is None else Decimal(s) if isinstance(s, str) else s) for n, s in enumerate(scores)
    ]


def exported(counts: Counters, job: JobId | None = None, **changes: Any) -> ExportResult:
    return ExportResult("exported", job or JobId(DEFAULT_SOURCE, SUBUSERS, DAY), attempt=1, counts=counts, **changes)


def emf_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if '"_aws"' in line]


def noon_ms(day: str) -> int:
    return int(datetime.combine(date.fromisoformat(day), time(12), tzinfo=UTC).timestamp() * 1000)


# -- bands ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "band"),
    [(1, 1), (Decimal("1.99"), 1), (2, 2), (Decimal("3.5"), 3), (Decimal("4.99"), 4), (5, 5), (Decimal("5.00"), 5)],
)
def test_a_scores_band_is_its_integer_part(score: int | Decimal, band: int) -> None:
    assert band_of(score) == band


def test_a_pages_bands_and_ineligible_subusers_add_up_to_its_records() -> None:
    batch = scored(1, "1.99", 2, "3.5", "4.99", 5, None, None)

    counts = tally(batch)

    assert counts.bands == (2, 1, 1, 1, 1)
    assert counts.ineligible == 2
    assert counts.scored + counts.ineligible == counts.records == 8
    assert counts.score_sum == Decimal("18.48")


def test_an_exported_day_emits_subusers_per_band_and_its_exact_mean_score() -> None:
    counts = tally(scored("3.47", "2.01", "4.5", None))

    fleet = exported(counts).fleet_metrics()

    assert [fleet[name] for name in BANDS] == [0, 1, 1, 1, 0]
    assert fleet["MeanScore"] == float(Decimal("9.98") / 3)  # 3.3266..., not rounded to the scores' decimals
    assert fleet["MeanScore"] != round(fleet["MeanScore"], 2)


def test_a_day_without_a_scored_subuser_emits_its_bands_as_zero_and_no_mean() -> None:
    fleet = exported(tally(scored(None, None))).fleet_metrics()

    assert fleet == dict.fromkeys(BANDS, 0)


@pytest.mark.parametrize("status", ["continued", "not_ready", "gave_up", "superseded"])
def test_only_the_invocation_that_completes_the_day_emits_its_fleet_metrics(status: Status) -> None:
    result = ExportResult(status, JobId(DEFAULT_SOURCE, SUBUSERS, DAY), attempt=1, counts=tally(scored(3, 4)))

    assert result.fleet_metrics() == {}


def test_the_accounts_day_emits_no_fleet_metrics() -> None:
    result = exported(tally(scored(3)), job=JobId(DEFAULT_SOURCE, ACCOUNT, DAY))

    assert result.fleet_metrics() == {}


def test_counters_whose_bands_do_not_add_up_to_the_records_emit_no_fleet_metrics() -> None:
    # a day continued from a checkpoint written before the bands were carried
    counts = Counters(pages=2, records=10, ineligible=1) + tally(scored(3, 4))

    assert exported(counts).fleet_metrics() == {}


# -- drops and rises -----------------------------------------------------------------------------

CHANGES = [
    score_change(1, old=4, new=2),  # -2
    score_change(2, old=4, new=Decimal("3.5")),  # -0.5
    score_change(3, old=2, new=3),  # +1
    score_change(4, old=3, new=Decimal("3.99")),  # +0.99
    score_change(5, old=1, new=5),  # +4
]


@pytest.mark.parametrize(("step", "drops", "rises"), [("1", 1, 2), ("0.5", 2, 3), ("2", 1, 1), ("4.5", 0, 0)])
def test_drops_and_rises_count_the_moves_of_at_least_the_min_step(step: str, drops: int, rises: int) -> None:
    moves = ScoreMoves()

    moved = moves.add(CHANGES, Decimal(step))

    assert (moves.drops, moves.rises) == (drops, rises)
    assert len(moved) == drops + rises  # the same moves become score-change events


def test_drops_and_rises_are_emitted_where_the_write_path_counted_them_even_when_zero() -> None:
    counts = tally(scored(3, 4)) + Counters(score_drops=0, score_rises=2)

    fleet = exported(counts, score_moves_counted=True).fleet_metrics()

    assert (fleet["ScoreDrops"], fleet["ScoreRises"]) == (0, 2)


def test_no_drops_or_rises_are_emitted_where_the_write_path_did_not_count_them() -> None:
    fleet = exported(tally(scored(3, 4))).fleet_metrics()

    assert "ScoreDrops" not in fleet
    assert "ScoreRises" not in fleet


# -- carried across a checkpoint -----------------------------------------------------------------


def test_counters_survive_a_checkpoint_message_exactly() -> None:
    counts = tally(scored("3.47", "2.01", None)) + Counters(latest_written=2, score_drops=1, score_rises=3)
    continued = job(DAY, attempt=1, checkpoint=Checkpoint(after_key="k", next_page=2, exported_at="t", counts=counts))

    message = continued.to_json()
    carried = Job.from_json(default_source=DEFAULT_SOURCE, body=message).checkpoint

    assert carried is not None
    assert carried.counts == counts
    flat = json.loads(message)["checkpoint"]
    assert flat["score_sum"] == "5.48"  # exact decimal text, not a float
    assert all(isinstance(flat[f"band_{band}"], int) for band in range(1, 6))


def test_a_day_continued_across_invocations_emits_the_bands_and_mean_of_all_its_pages() -> None:
    first, second = scored("1.5", "2.25", None), scored("4.75", 5, "2.5")
    message = Checkpoint(after_key="k", next_page=2, exported_at="t", counts=tally(first)).to_dict()

    counts = Checkpoint.from_dict(json.loads(json.dumps(message))).counts + tally(second)

    fleet = exported(counts).fleet_metrics()
    assert [fleet[name] for name in BANDS] == [1, 2, 0, 1, 1]
    assert fleet["MeanScore"] == float(Decimal("16.00") / 5)


def test_a_checkpoint_from_before_the_bands_were_carried_reads_them_as_zero() -> None:
    checkpoint = Checkpoint.from_dict({"after_key": "k", "next_page": 2, "exported_at": "t", "records": 1_000})

    assert checkpoint.counts == Counters(records=1_000)


def test_a_checkpoint_with_a_score_sum_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(InvalidEventError, match="score_sum"):
        Checkpoint.from_dict({"after_key": "k", "next_page": 2, "exported_at": "t", "score_sum": "a lot"})


# -- one point per score day ---------------------------------------------------------------------


@pytest.mark.parametrize("days_back", [1, 2, 12, 13])
def test_a_day_up_to_13_days_back_is_stamped_at_its_noon_utc(days_back: int) -> None:
    now = datetime(2026, 11, 23, 23, 59, tzinfo=UTC)
    day = (now.date() - timedelta(days=days_back)).isoformat()

    assert day_metrics_time(day, now) == datetime.combine(date.fromisoformat(day), time(12), tzinfo=UTC)


@pytest.mark.parametrize("days_back", [14, 30, 89])
def test_a_day_more_than_13_days_back_gets_no_point(days_back: int) -> None:
    now = datetime(2026, 11, 23, 0, 1, tzinfo=UTC)
    day = (now.date() - timedelta(days=days_back)).isoformat()

    assert day_metrics_time(day, now) is None


def test_fleet_metrics_go_out_as_one_document_stamped_with_the_score_day(capsys: pytest.CaptureFixture[str]) -> None:
    day = (datetime.now(UTC).date() - timedelta(days=3)).isoformat()
    values = {"SubusersWithScore3": 7, "MeanScore": 3.3266666666666667}

    emitted = emit_day_metrics(DEFAULT_SOURCE, day, values)

    (document,) = emf_lines(capsys.readouterr().out)
    assert emitted is True
    assert document["_aws"]["Timestamp"] == noon_ms(day)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE  # as the invocation's other metrics
    assert [sorted(names) for names in directive["Dimensions"]] == [["service", "source"]]
    assert (document["service"], document["source"]) == (SERVICE, DEFAULT_SOURCE)
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {"SubusersWithScore3": "Count", "MeanScore": "None"}
    assert (document["SubusersWithScore3"], document["MeanScore"]) == ([7.0], [3.3266666666666667])


def test_fleet_metrics_of_a_day_older_than_13_days_are_not_emitted(capsys: pytest.CaptureFixture[str]) -> None:
    day = (datetime.now(UTC).date() - timedelta(days=14)).isoformat()

    emitted = emit_day_metrics(DEFAULT_SOURCE, day, {"SubusersWithScore3": 7})

    assert emitted is False
    assert emf_lines(capsys.readouterr().out) == []


def test_nothing_to_emit_prints_no_document(capsys: pytest.CaptureFixture[str]) -> None:
    emitted = emit_day_metrics(DEFAULT_SOURCE, DAY, {})

    assert emitted is False
    assert emf_lines(capsys.readouterr().out) == []
