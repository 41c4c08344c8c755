"""A subusers' day's fleet health, counted as it is exported.

Each page adds its scored subusers per band and the exact sum of their scores to the day's
``Counters`` (``tally``), so a checkpoint carries them to the day's last invocation, which emits
them once for the whole day (``results.ExportResult.fleet_metrics``). Score moves against an
earlier day are counted only where the write path returns the replaced item anyway (the tracked
path of score-change events, ``ScoreMoves``), with the same min-step rule as the events, and the
biggest of them kept (``models.Movers``). From these alone, which the export carries anyway, an
exported day's ``DailyDigest`` is built: no read and no second pass over the day.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from seq_export.job_message import Counters
from seq_export.models import SCORE_MAX, SCORE_MIN, Movers, Number, ScoreChange, ScoreRecord, json_number

if TYPE_CHECKING:  # the CLI imports the bands without the function's Powertools-backed results
    from seq_export.results import ExportResult

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
    """This invocation's score moves of at least the min step: down (drops) and up (rises), and
    the biggest of each."""

    drops: int = 0
    rises: int = 0
    movers: Movers = field(default_factory=Movers)

    def add(self, changes: Sequence[ScoreChange], min_step: Decimal) -> list[ScoreChange]:
        """Count the changes that moved at least ``min_step`` and return them (the ones that
        become score-change events: one rule for the events and the metrics)."""
        moved = [change for change in changes if abs(change.change) >= min_step]
        self.drops += sum(1 for change in moved if change.change < 0)
        self.rises += sum(1 for change in moved if change.change > 0)
        self.movers += Movers.of(moved)
        return moved

    def counters(self) -> Counters:
        return Counters(score_drops=self.drops, score_rises=self.rises, movers=self.movers)


#: The mean score in a digest: two decimals read well in a message (the MeanScore metric is exact).
DIGEST_MEAN_PLACES = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class DailyDigest:
    """One source's exported subusers' day in one ``SEQ Daily Digest`` event: how its fleet
    stands (subusers per band, as the fleet metrics count them, ineligible ones, the mean score)
    and how it moved against the scores the table held from earlier days (drops and rises of at
    least ``min_step``, the score-change events' own rule, and the biggest of each)."""

    source: str
    date: str
    counts: Counters
    min_step: Decimal

    @classmethod
    def of(cls, result: ExportResult, min_step: Decimal) -> DailyDigest | None:
        """The digest of an exported subusers' day whose moves were counted (score-change events
        on); None for any other outcome, which sends none."""
        if not (result.fleet_counted and result.score_moves_counted):
            return None
        return cls(result.source, result.date, result.counts, min_step)

    @property
    def mean_score(self) -> Decimal | None:
        counts = self.counts
        if not counts.scored:
            return None
        return (counts.score_sum / counts.scored).quantize(DIGEST_MEAN_PLACES, rounding=ROUND_HALF_UP)

    def detail(self) -> str:
        """The event's detail; ``biggest_drop`` and ``biggest_rise`` repeat the first of their
        lists, so a rule's input transformer (single JSON paths only) can quote them."""
        counts, movers, mean = self.counts, self.counts.movers, self.mean_score
        return json.dumps(
            {
                "source": self.source,
                "date": self.date,
                "subusers": counts.records,
                "bands": {f"score_{band}": count for band, count in zip(BANDS, counts.bands, strict=True)},
                "ineligible": counts.ineligible,
                "mean_score": None if mean is None else json_number(mean),
                "min_step": json_number(self.min_step),
                "drops": counts.score_drops,
                "rises": counts.score_rises,
                "biggest_drop": movers.drops[0].detail() if movers.drops else None,
                "biggest_rise": movers.rises[0].detail() if movers.rises else None,
                "biggest_drops": [mover.detail() for mover in movers.drops],
                "biggest_rises": [mover.detail() for mover in movers.rises],
            }
        )
