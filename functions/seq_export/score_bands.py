"""A subusers' day's fleet health, counted as it is exported.

Each page adds its scored subusers per band and the exact sum of their scores to the day's
``Counters`` (``tally``), so a checkpoint carries them to the day's last invocation, which emits
them once for the whole day (``results.ExportResult.fleet_metrics``). Score moves against an
earlier day are counted only where the write path returns the replaced item anyway (the tracked
path of score-change events, ``ScoreMoves``), with the same min-step rule as the events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from seq_export.job_message import Counters
from seq_export.models import SCORE_MAX, SCORE_MIN, Number, ScoreChange, ScoreRecord

BANDS = tuple(range(SCORE_MIN, SCORE_MAX + 1))


def band_of(score: Number) -> int:
    """A score's band is its integer part: 3.5 is in band 3, 4.99 in band 4, 5 in band 5."""
    return int(score)


def tally(batch: Sequence[ScoreRecord]) -> Counters:
    """One page's counters: a page, its records, the ineligible ones, and the scored ones per
    band with the exact sum of their scores."""
    per_band = dict.fromkeys(BANDS, 0)
    total = Decimal(0)
    for record in batch:
        if record.score is not None:
            per_band[band_of(record.score)] += 1
            total += record.score
    return Counters(
        pages=1,
        records=len(batch),
        ineligible=len(batch) - sum(per_band.values()),
        band_1=per_band[1],
        band_2=per_band[2],
        band_3=per_band[3],
        band_4=per_band[4],
        band_5=per_band[5],
        score_sum=total,
    )


@dataclass
class ScoreMoves:
    """This invocation's score moves of at least the min step: down (drops) and up (rises)."""

    drops: int = 0
    rises: int = 0

    def add(self, changes: Sequence[ScoreChange], min_step: Decimal) -> list[ScoreChange]:
        """Count the changes that moved at least ``min_step`` and return them (the ones that
        become score-change events: one rule for the events and the metrics)."""
        moved = [change for change in changes if abs(change.change) >= min_step]
        self.drops += sum(1 for change in moved if change.change < 0)
        self.rises += sum(1 for change in moved if change.change > 0)
        return moved

    def counters(self) -> Counters:
        return Counters(score_drops=self.drops, score_rises=self.rises)
