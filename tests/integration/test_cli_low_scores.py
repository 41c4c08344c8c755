"""``seq-export low-scores``, in process against moto server and the SEQ simulator: every
subuser at or below a score, lowest first, with its source; ``--limit``; a table that does not
exist.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.support import Stack
from tests.support.cli import cli, cli_json, scored

pytestmark = pytest.mark.integration


def test_low_scores_lists_every_subuser_at_or_below_the_score_lowest_first(
    stack: Stack, exported_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    expected = sorted(
        ((line["score"], int(line["user_id"])) for line in scored(exported_day) if line["score"] <= Decimal("2.5")),
    )
    assert 3 <= len(expected) < len(scored(exported_day))  # the threshold splits the day

    code, document, _ = cli_json(capsys, "low-scores", "--max", "2.5")

    assert code == 0
    assert [(Decimal(str(s["score"])), int(s["user_id"])) for s in document["subusers"]] == expected
    assert document["matched"] == len(expected)
    assert document["scanned"] == len(scored(exported_day)) + 1  # every item, the control item too
    assert all(s["username"] and s["date"] == exported_day[0]["date"] for s in document["subusers"])


def test_low_scores_limit_prints_only_the_lowest(
    stack: Stack, exported_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    lowest = sorted((line["score"], int(line["user_id"])) for line in scored(exported_day))[:3]

    code, document, _ = cli_json(capsys, "low-scores", "--max", "5", "--limit", "3")

    assert code == 0
    assert [(Decimal(str(s["score"])), int(s["user_id"])) for s in document["subusers"]] == lowest
    assert document["matched"] == len(scored(exported_day))


def test_low_scores_human_output_is_a_table_and_a_count(
    stack: Stack, exported_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    matching = [line for line in scored(exported_day) if line["score"] <= 2]

    code, out, _ = cli(capsys, "low-scores", "--max", "2")

    assert code == 0
    rows = out.splitlines()
    assert rows[0].split() == ["score", "user_id", "source", "username", "date"]
    assert all(row.split()[2] == "default" for row in rows[1:-1])
    assert len(rows) == len(matching) + 2
    assert rows[-1].startswith(f"{len(matching)} subusers with a latest score <= 2;")


def test_low_scores_with_nothing_at_or_below_exits_1(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, document, err = cli_json(capsys, "low-scores", "--max", "5")  # nothing exported yet

    assert code == 1
    assert (document["subusers"], document["matched"]) == ([], 0)
    assert err == ""


def test_a_table_that_does_not_exist_exits_4_with_one_line_naming_the_call_and_table(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LATEST_SCORES_TABLE", "no-such-table")

    code, out, err = cli(capsys, "low-scores", "--max", "3")

    assert code == 4
    assert out == ""
    assert err.count("\n") == 1
    assert "DynamoDB Scan of table no-such-table" in err
    assert "ResourceNotFoundException" in err
    assert "Traceback" not in err


def test_low_scores_shows_the_source_of_each_latest_score(
    two_sources: Stack, eu_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, document, _ = cli_json(capsys, "low-scores", "--max", "5")
    _, out, _ = cli(capsys, "low-scores", "--max", "5")

    assert code == 0
    assert document["matched"] == sum(1 for line in eu_day if line["score"] is not None)
    assert {s["source"] for s in document["subusers"]} == {"eu"}
    rows = out.splitlines()
    assert rows[0].split() == ["score", "user_id", "source", "username", "date"]
    assert {row.split()[2] for row in rows[1:-1]} == {"eu"}
