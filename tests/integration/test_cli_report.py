"""``seq-export report``: a day's fleet health read from the lake, checked against its lines;
each source against its own previous day.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest

from local.seq_simulator import Scenario
from tests.support import Stack, days_ago
from tests.support.cli import cli, cli_json, day_lines

pytestmark = pytest.mark.integration


@pytest.fixture
def two_days(stack: Stack) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two exported days of 60 subusers with fractional scores (they differ by day)."""
    stack.simulator.reset(Scenario(subusers=60, fractional=True))
    for n in (3, 2):
        assert stack.invoke({"date": days_ago(n)})["status"] == "exported"
    return day_lines(stack, days_ago(3)), day_lines(stack, days_ago(2))


def test_report_counts_bands_mean_movers_and_lowest_as_the_lines_say(
    stack: Stack, two_days: tuple[list[dict[str, Any]], list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    before, now = two_days
    scores = [Decimal(str(line["score"])) for line in now if line["score"] is not None]
    previous = {line["user_id"]: Decimal(str(line["score"])) for line in before if line["score"] is not None}
    changes = sorted(
        (Decimal(str(line["score"])) - previous[line["user_id"]], line["user_id"])
        for line in now
        if line["score"] is not None and line["user_id"] in previous
    )

    code, out, _ = cli(capsys, "report", "--date", days_ago(2), "--limit", "3", "--json")
    document = json.loads(out)

    assert code == 0
    assert document["date"] == days_ago(2)
    (report,) = document["sources"]  # one source: listed as several are
    assert report["previous_date"] == days_ago(3)
    assert report["bands"] == {str(b): sum(1 for s in scores if int(s) == b) for b in range(1, 6)}
    assert report["ineligible"] == sum(1 for line in now if line["score"] is None)
    assert sum(report["bands"].values()) + report["ineligible"] == report["subusers"] == 60
    assert report["mean_score"] == pytest.approx(float(sum(scores) / len(scores)), abs=1e-12)
    assert [d["user_id"] for d in report["drops"]] == [uid for change, uid in changes if change < 0][:3]
    rises = sorted((-change, uid) for change, uid in changes if change > 0)
    assert [r["user_id"] for r in report["rises"]] == [uid for _, uid in rises][:3]
    assert [low["score"] for low in report["lowest"]] == [float(s) for s in sorted(scores)[:3]]
    # numbers as the lines carry them: an integral score is 1, never 1.0 (as lookup answers it)
    assert all(
        type(low["score"]) is (int if s == s.to_integral_value() else float)
        for low, s in zip(report["lowest"], sorted(scores)[:3], strict=True)
    )


def test_report_on_a_terminal_draws_the_bands_as_bars(
    stack: Stack,
    two_days: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")

    code, out, _ = cli(capsys, "report", "--date", days_ago(2))
    shown = re.sub(r"\x1b\[[0-9;]*m", "", out)

    assert code == 0
    assert "█" in shown
    assert f"biggest drops against {days_ago(3)}" in shown
    assert "lowest scorers" in shown


def test_report_of_a_day_not_exported_exits_1(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "report", "--date", days_ago(5))

    assert code == 1
    assert out == f"not exported  subusers {days_ago(5)}: nothing to report\n"


def test_report_reports_each_source_against_its_own_previous_day(
    two_sources: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    for event in (
        {"date": days_ago(4), "source": "global"},
        {"date": days_ago(3), "source": "eu"},
        {"date": days_ago(2), "source": "global"},
        {"date": days_ago(2), "source": "eu"},
    ):
        assert two_sources.invoke(event)["status"] == "exported"

    code, document, _ = cli_json(capsys, "report", "--date", days_ago(2))
    one, only_eu, _ = cli_json(capsys, "report", "--date", days_ago(2), "--source", "eu", "--limit", "2")
    _, text, _ = cli(capsys, "report", "--date", days_ago(2))

    assert code == 0
    assert [(r["source"], r["previous_date"], r["subusers"]) for r in document["sources"]] == [
        ("global", days_ago(4), 12),
        ("eu", days_ago(3), 12),
    ]
    (eu,) = only_eu["sources"]
    assert (one, only_eu["date"], eu["source"], eu["previous_date"], len(eu["lowest"])) == (
        0,
        days_ago(2),
        "eu",
        days_ago(3),
        2,
    )
    assert [line for line in text.splitlines() if line.startswith("source ")] == [
        "source        global",
        "source        eu",
    ]


def test_report_of_a_day_one_source_lacks_exits_1_and_still_reports_the_other(
    two_sources: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(2)
    assert two_sources.invoke({"date": day, "source": "global"})["status"] == "exported"

    code, document, _ = cli_json(capsys, "report", "--date", day)

    assert code == 1
    assert document["sources"][0]["source"] == "global"
    assert document["sources"][0]["subusers"] == 12
    assert document["sources"][1] == {"date": day, "source": "eu", "exported": False}
