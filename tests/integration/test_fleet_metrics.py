"""A subusers' day's fleet health as EMF metrics, through the handler: subusers per score band,
the mean score, drops and rises; once per day, stamped with the score day; and in `make run`."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from local.seq_simulator import Scenario, expected_records
from seq_export.layout import DEFAULT_SOURCE
from seq_export.observability import SERVICE, SOURCE_DIMENSION
from tests.support import Stack, days_ago, emf_documents, run_to_completion

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BANDS = [f"SubusersWithScore{band}" for band in range(1, 6)]
BUS = "seq-scores"


def noon_ms(day: str) -> int:
    """The score day's noon (UTC) in epoch milliseconds: the fleet metrics' EMF timestamp."""
    return int(datetime.combine(date.fromisoformat(day), time(12), tzinfo=UTC).timestamp() * 1000)


def fleet_documents(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [document for document in documents if "SubusersWithScore1" in document]


def stack_wide(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents of the stack-wide series (dimension ``service`` alone)."""
    return [document for document in documents if SOURCE_DIMENSION not in document]


def of_source(documents: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """The documents of ``source``'s own series (dimensions ``service`` and ``source``)."""
    return [document for document in documents if document.get(SOURCE_DIMENSION) == source]


def dimensions(document: dict[str, Any]) -> list[set[str]]:
    return [set(names) for directive in document["_aws"]["CloudWatchMetrics"] for names in directive["Dimensions"]]


def expected_fleet(scores: list[Any]) -> dict[str, Any]:
    """Bands, ineligible and mean as a day's scores (None: ineligible) call for them."""
    exact = [Decimal(str(score)) for score in scores if score is not None]
    bands = {name: sum(1 for score in exact if int(score) == band) for band, name in enumerate(BANDS, start=1)}
    return {**bands, "IneligibleSubusers": len(scores) - len(exact), "MeanScore": float(sum(exact) / len(exact))}


def values_of(document: dict[str, Any]) -> dict[str, float]:
    """Each metric's one value in an EMF document (Powertools writes them as lists)."""
    return {
        metric["Name"]: document[metric["Name"]][0]
        for directive in document["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }


def test_an_exported_day_emits_its_subusers_per_band_and_mean_score_as_its_lines_call_for(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=1_200, fractional=True))
    day = days_ago(1)
    invoked_at = int(datetime.now(UTC).timestamp() * 1000)

    summary = stack.invoke({"date": day})

    expected = expected_fleet([line["score"] for line in stack.lines(day)])
    own = stack.source_metrics(DEFAULT_SOURCE)
    assert {name: own[name] for name in [*BANDS, "IneligibleSubusers"]} == {
        name: expected[name] for name in [*BANDS, "IneligibleSubusers"]
    }
    assert sum(own[name] for name in BANDS) + own["IneligibleSubusers"] == summary["records"]
    assert not any(name in stack.metrics for name in [*BANDS, "MeanScore"])  # a fleet is one source's subusers
    assert stack.metrics["IneligibleSubusers"] == expected["IneligibleSubusers"]  # counts are stack-wide too
    (fleet,) = fleet_documents(stack.documents)
    assert fleet[SOURCE_DIMENSION] == DEFAULT_SOURCE
    assert dimensions(fleet) == [{"service", SOURCE_DIMENSION}]
    assert values_of(fleet)["MeanScore"] == expected["MeanScore"]  # exact, not rounded
    assert {m["Name"]: m["Unit"] for m in fleet["_aws"]["CloudWatchMetrics"][0]["Metrics"]}["MeanScore"] == "None"
    assert "ScoreDrops" not in fleet  # score-change events are off: the write path saw no old scores
    assert fleet["_aws"]["Timestamp"] == noon_ms(day)
    (counts,) = [document for document in stack_wide(stack.documents) if "RecordsExported" in document]
    assert dimensions(counts) == [{"service"}]
    assert counts["_aws"]["Timestamp"] >= invoked_at  # the invocation's own counts keep its time
    (source_counts,) = [
        document for document in of_source(stack.documents, DEFAULT_SOURCE) if "RecordsExported" in document
    ]
    assert source_counts["_aws"]["Timestamp"] >= invoked_at
    assert fleet["_aws"]["CloudWatchMetrics"][0]["Namespace"] == counts["_aws"]["CloudWatchMetrics"][0]["Namespace"]
    assert fleet["service"] == counts["service"]


def test_a_day_continued_across_invocations_emits_its_bands_once_for_the_whole_day(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=2_500, fractional=True))
    day = days_ago(1)

    first, continuations = run_to_completion(stack, day, pages=1)

    assert (first["status"], len(continuations)) == ("continued", 2)
    (fleet,) = fleet_documents(stack.documents)  # from the last invocation only
    expected = expected_fleet([line["score"] for line in stack.lines(day)])
    assert {name: values_of(fleet)[name] for name in [*BANDS, "MeanScore"]} == {
        name: expected[name] for name in [*BANDS, "MeanScore"]
    }
    assert fleet["_aws"]["Timestamp"] == noon_ms(day)


def test_with_score_change_events_on_drops_and_rises_of_the_min_step_are_counted_against_the_day_before(
    stack: Stack,
) -> None:
    scenario = Scenario(subusers=600, fractional=True, ineligible_every=9)
    stack.simulator.reset(scenario)
    stack.session.client("events").create_event_bus(Name=BUS)
    stack.configure(SCORE_CHANGE_EVENT_BUS=BUS, SCORE_CHANGE_MIN_STEP="0.75")
    old_day, new_day = days_ago(2), days_ago(1)

    stack.invoke({"date": old_day})
    summary = stack.invoke({"date": new_day})

    before = {line["user_id"]: line["score"] for line in stack.lines(old_day) if line["score"] is not None}
    moves = [
        line["score"] - before[line["user_id"]]
        for line in stack.lines(new_day)
        if line["score"] is not None and line["user_id"] in before
    ]
    drops = sum(1 for move in moves if move <= Decimal("-0.75"))
    rises = sum(1 for move in moves if move >= Decimal("0.75"))
    assert drops > 0
    assert rises > 0
    by_day = {document["_aws"]["Timestamp"]: values_of(document) for document in fleet_documents(stack.documents)}
    assert (by_day[noon_ms(old_day)]["ScoreDrops"], by_day[noon_ms(old_day)]["ScoreRises"]) == (0, 0)
    assert (by_day[noon_ms(new_day)]["ScoreDrops"], by_day[noon_ms(new_day)]["ScoreRises"]) == (drops, rises)
    assert summary["score_change_events"] == drops + rises  # one rule for the events and the metrics


def test_every_exported_subusers_day_counts_one_day_exported_in_its_sources_own_series(stack: Stack) -> None:
    """What each source's freshness alarm watches: DayExported, {service, source}, one per day exported."""
    stack.simulator.reset(Scenario(subusers=50, not_ready=1))  # each day's first request gets 202
    stack.add_source("brand-b", Scenario(subusers=20, first_user_id=500_001))
    outcomes = [
        stack.invoke({"date": days_ago(3)})["status"],
        stack.invoke({"date": days_ago(3)})["status"],
        stack.invoke({"date": days_ago(2)})["status"],
        stack.invoke({"date": days_ago(2)})["status"],
        stack.invoke({"date": days_ago(2), "source": "brand-b"})["status"],
        stack.invoke({"date": days_ago(2), "kind": "account"})["status"],  # the account's day is no subusers' day
    ]

    assert outcomes == ["not_ready", "exported", "not_ready", "exported", "exported", "exported"]
    assert stack.source_metrics(DEFAULT_SOURCE)["DayExported"] == 2
    assert stack.source_metrics("brand-b")["DayExported"] == 1
    assert stack.metrics["DayExported"] == 3  # the stack-wide series counts them all
    for source in (DEFAULT_SOURCE, "brand-b"):
        for document in [d for d in of_source(stack.documents, source) if "DayExported" in d]:
            assert dimensions(document) == [{"service", SOURCE_DIMENSION}]
            assert (document["service"], document[SOURCE_DIMENSION]) == (SERVICE, source)
            assert values_of(document)["DayExported"] == 1


@pytest.mark.parametrize(("days_back", "emitted"), [(13, True), (14, False), (40, False)])
def test_fleet_metrics_are_emitted_for_days_up_to_13_days_back_and_counts_always(
    stack: Stack, days_back: int, emitted: bool
) -> None:
    stack.simulator.reset(Scenario(subusers=30))
    day = days_ago(days_back)

    stack.invoke({"date": day})

    assert stack.metrics["RecordsExported"] == 30  # the invocation's counts, whatever the day
    stamps = [document["_aws"]["Timestamp"] for document in fleet_documents(stack.documents)]
    assert stamps == ([noon_ms(day)] if emitted else [])  # older days are left to Athena


# -- make run ------------------------------------------------------------------------------------

#: What `make run` passes through the environment; cleared so that the caller's shell does not change a run.
RUNNER_VARIABLES = ("DATE", "SUBUSERS", "NOT_READY", "DELAY", "MAX_ATTEMPTS", "PAGE_SIZE", "VERBOSE", "KEEP")


def test_make_run_verbose_shows_the_fleet_metrics_of_the_exported_day() -> None:
    day = days_ago(1)
    env = {key: value for key, value in os.environ.items() if key not in RUNNER_VARIABLES}

    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "local.run", "--verbose", "--subusers", "50", "--date", day],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    (fleet,) = fleet_documents(emf_documents(result.stderr))
    scores = [record.get("score") for record in expected_records(day, Scenario(subusers=50))]
    expected = expected_fleet(scores)
    assert {name: values_of(fleet)[name] for name in [*BANDS, "MeanScore"]} == {
        name: expected[name] for name in [*BANDS, "MeanScore"]
    }
    assert fleet[SOURCE_DIMENSION] == DEFAULT_SOURCE
    documents = emf_documents(result.stderr)
    (counts,) = [document for document in stack_wide(documents) if "IneligibleSubusers" in document]
    assert values_of(counts)["IneligibleSubusers"] == expected["IneligibleSubusers"]
    (source_counts,) = [
        document for document in of_source(documents, DEFAULT_SOURCE) if "IneligibleSubusers" in document
    ]
    assert values_of(source_counts)["IneligibleSubusers"] == expected["IneligibleSubusers"]
    assert fleet["_aws"]["Timestamp"] == noon_ms(day)
