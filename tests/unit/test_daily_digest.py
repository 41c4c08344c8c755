"""The daily digest: one event per source and exported subusers' day, from the counters the export
carries anyway (bands, mean, drops and rises, the biggest movers), and the example rule that
turns it into one short e-mail."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from itertools import permutations
from typing import Any

import pytest

from seq_export.errors import InvalidEventError
from seq_export.events_publisher import DIGEST_DETAIL_TYPE, SOURCE, ScoreChangePublisher
from seq_export.job_message import Checkpoint, Counters, Job, JobId
from seq_export.layout import DEFAULT_SOURCE
from seq_export.models import ACCOUNT, DIGEST_MOVERS, SUBUSERS, Movers
from seq_export.results import ExportResult, Status
from seq_export.score_bands import DailyDigest, ScoreMoves, tally
from tests.support import FakeEvents, job, record, score_change
from tests.support.template import load_template

DAY = "2026-11-22"
DAY_JOB = JobId(DEFAULT_SOURCE, SUBUSERS, DAY)
#: Subuser n's move: drops of 1 to 3 and rises of 1 to 2, two of them the same size.
MOVES = [(1, 4, 3), (2, 5, 2), (3, 4, 1), (4, 5, 3), (5, 3, 2), (6, 2, 4), (7, 1, 3), (8, 2, 3), (9, 4, 2), (10, 5, 4)]


def moved() -> list[Any]:
    return [score_change(n, old=old, new=new) for n, old, new in MOVES]


def digest_of(counts: Counters, *, status: Status = "exported", kind: str = SUBUSERS, counted: bool = True) -> Any:
    result = ExportResult(
        status, JobId(DEFAULT_SOURCE, kind, DAY), attempt=1, counts=counts, score_moves_counted=counted
    )
    return DailyDigest.of(result, Decimal(1))


def a_day() -> Counters:
    """Six subusers (one ineligible), every move of ``MOVES`` seen by the write path."""
    moves = ScoreMoves()
    moves.add(moved(), Decimal(1))
    scores: list[int | Decimal | None] = [1, Decimal("2.5"), 3, Decimal("4.25"), 5, None]
    return tally([record(n, score=score) for n, score in enumerate(scores)]) + moves.counters()


# -- the biggest movers ------------------------------------------------------------------------


def test_the_biggest_drops_and_rises_are_kept_biggest_first_ties_by_user_id() -> None:
    movers = Movers.of(moved())

    assert [(m.user_id, int(m.change)) for m in movers.drops] == [("2", -3), ("3", -3), ("4", -2), ("9", -2), ("1", -1)]
    assert [(m.user_id, int(m.change)) for m in movers.rises] == [("6", 2), ("7", 2), ("8", 1)]
    assert len(movers.drops) == DIGEST_MOVERS


def test_the_biggest_movers_do_not_depend_on_the_order_the_pages_came_in() -> None:
    pages = [moved()[:3], moved()[3:7], moved()[7:]]

    results = set()
    for order in permutations(pages):
        total = Movers()
        for page in order:
            total += Movers.of(page)
        results.add(total)

    assert results == {Movers.of(moved())}


def test_the_movers_survive_a_checkpoint_message_exactly() -> None:
    moves = ScoreMoves()
    moves.add([score_change(1, old=Decimal("4.25"), new=Decimal("2.5"))], Decimal(1))
    counts = Counters(records=2) + moves.counters()
    continued = job(DAY, checkpoint=Checkpoint(after_key="k", next_page=2, exported_at="t", counts=counts))

    message = continued.to_json()
    carried = Job.from_json(message, default_source=DEFAULT_SOURCE).checkpoint

    assert carried is not None
    assert carried.counts == counts
    assert json.loads(message)["checkpoint"]["movers"] == {
        "drops": [
            {
                "user_id": "1",
                "username": "u1",
                "previous_date": "2026-11-21",
                "before": "4.25",  # exact decimal text, not a float
                "after": "2.5",
            }
        ],
        "rises": [],
    }


@pytest.mark.parametrize(
    "movers",
    [
        [],  # not an object
        {"drops": [{"user_id": "1"}]},  # no scores
        {"drops": [{"user_id": "1", "previous_date": "2026-11-21", "before": "x", "after": "2"}]},  # not a number
    ],
)
def test_a_checkpoint_with_malformed_movers_is_refused(movers: Any) -> None:
    with pytest.raises(InvalidEventError, match="checkpoint"):
        Checkpoint.from_dict({"after_key": "k", "next_page": 2, "exported_at": "t", "movers": movers})


def test_a_checkpoint_from_before_the_movers_were_carried_reads_none() -> None:
    checkpoint = Checkpoint.from_dict({"after_key": "k", "next_page": 2, "exported_at": "t", "records": 10})

    assert checkpoint.counts.movers == Movers()


# -- the digest --------------------------------------------------------------------------------


def test_a_digest_carries_the_days_bands_mean_moves_and_biggest_movers() -> None:
    digest = digest_of(a_day())

    detail = json.loads(digest.detail())

    assert {k: v for k, v in detail.items() if not k.startswith("biggest")} == {
        "source": DEFAULT_SOURCE,
        "date": DAY,
        "subusers": 6,
        "bands": {"score_1": 1, "score_2": 1, "score_3": 1, "score_4": 1, "score_5": 1},
        "ineligible": 1,
        "mean_score": 3.15,  # 15.75 / 5, to two decimals
        "min_step": 1,
        "drops": 7,
        "rises": 3,
    }
    assert [m["user_id"] for m in detail["biggest_drops"]] == ["2", "3", "4", "9", "1"]
    assert [m["user_id"] for m in detail["biggest_rises"]] == ["6", "7", "8"]
    assert (
        detail["biggest_drop"]
        == detail["biggest_drops"][0]
        == {
            "user_id": "2",
            "username": "u2",
            "previous_date": "2026-11-21",
            "before": 5,
            "after": 2,
            "change": -3,
        }
    )
    assert detail["biggest_rise"] == detail["biggest_rises"][0]


@pytest.mark.parametrize(("scores", "mean"), [((1, 2, 2), 1.67), (("3.125",), 3.13), ((None,), None)])
def test_the_digests_mean_score_is_rounded_to_two_decimals_half_up(scores: tuple[Any, ...], mean: Any) -> None:
    counts = tally([record(n, score=None if s is None else Decimal(s)) for n, s in enumerate(scores)])

    detail = json.loads(digest_of(counts).detail())

    assert detail["mean_score"] == mean


def test_a_day_without_moves_has_a_digest_naming_no_mover() -> None:
    detail = json.loads(digest_of(tally([record(1, score=3)])).detail())

    assert (detail["drops"], detail["rises"], detail["biggest_drop"], detail["biggest_rise"]) == (0, 0, None, None)
    assert (detail["biggest_drops"], detail["biggest_rises"]) == ([], [])


@pytest.mark.parametrize(
    ("status", "kind", "counted"),
    [
        ("continued", SUBUSERS, True),
        ("not_ready", SUBUSERS, True),
        ("gave_up", SUBUSERS, True),
        ("superseded", SUBUSERS, True),
        ("exported", ACCOUNT, True),
        ("exported", SUBUSERS, False),  # score-change events off: the write path saw no moves
    ],
)
def test_only_an_exported_subusers_day_whose_moves_were_counted_has_a_digest(
    status: Status, kind: str, counted: bool
) -> None:
    assert digest_of(a_day(), status=status, kind=kind, counted=counted) is None


def test_the_digest_goes_to_the_bus_as_one_seq_daily_digest_event() -> None:
    fake = FakeEvents()
    digest = digest_of(a_day())

    sent = ScoreChangePublisher(fake, "bus", sleep=lambda _: None).publish_digest(digest)  # type: ignore[arg-type]

    (call,) = fake.calls
    (entry,) = call
    assert sent is True
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (SOURCE, DIGEST_DETAIL_TYPE, "bus")
    assert entry["Detail"] == digest.detail()


def test_a_digest_eventbridge_keeps_refusing_is_reported_not_raised() -> None:
    fake = FakeEvents(raise_times=99)

    sent = ScoreChangePublisher(fake, "bus", max_attempts=3, sleep=lambda _: None).publish_digest(digest_of(a_day()))  # type: ignore[arg-type]

    assert sent is False
    assert len(fake.calls) == 3  # bounded


# -- the example rule --------------------------------------------------------------------------


def json_path(document: Any, path: str) -> Any:
    """The value at a single-path InputPathsMap entry (``$.a.b``)."""
    assert re.fullmatch(r"\$(\.[A-Za-z_][\w-]*)+", path), path
    for key in path.split(".")[1:]:
        document = document[key]
    return document


def test_the_example_rule_mails_a_sources_digest_only_on_a_day_scores_dropped() -> None:
    rule = load_template()["Resources"]["ScoreDropRule"]

    pattern = rule["Properties"]["EventPattern"]

    assert rule["Condition"] == "RoutesScoreDropsToAlarms"
    assert (pattern["source"], pattern["detail-type"]) == ([SOURCE], [DIGEST_DETAIL_TYPE])
    assert pattern["detail"] == {"drops": [{"numeric": [">", 0]}]}
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "AlarmTopic"}


def test_the_example_rules_message_reads_as_a_sentence_from_the_digests_own_fields() -> None:
    (target,) = load_template()["Resources"]["ScoreDropRule"]["Properties"]["Targets"]
    transformer = target["InputTransformer"]
    event = {"source": SOURCE, "detail-type": DIGEST_DETAIL_TYPE, "detail": json.loads(digest_of(a_day()).detail())}

    values = {name: json_path(event, path) for name, path in transformer["InputPathsMap"].items()}
    message = re.sub(r"<([\w-]+)>", lambda m: str(values[m[1]]), transformer["InputTemplate"])

    assert None not in values.values()  # every path is in a digest with a drop
    assert json.loads(message) == (
        "seq-export default 2026-11-22: 7 subusers' scores dropped by 1 or more, 3 rose; mean score 3.15. "
        "Biggest drop: u2 (2) 5 to 2."
    )
