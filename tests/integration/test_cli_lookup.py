"""``seq-export lookup``, in process against moto server and the SEQ simulator: a subuser's
latest score by user id or username, with its source, and why a subuser has none.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.support import Stack, days_ago
from tests.support.cli import cli, cli_json, scored

pytestmark = pytest.mark.integration


def test_lookup_by_user_id_prints_the_latest_score(
    stack: Stack, exported_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    line = scored(exported_day)[3]

    code, document, _ = cli_json(capsys, "lookup", line["user_id"])

    assert code == 0
    assert document["query"] == {"user_id": line["user_id"]}
    [found] = document["subusers"]
    assert list(found) == ["user_id", "source", "username", "date", "score", "metrics", "updated_at"]
    assert found["source"] == "default"
    assert (found["user_id"], found["username"], found["date"]) == (line["user_id"], line["username"], line["date"])
    assert Decimal(str(found["score"])) == line["score"]
    assert {k: Decimal(str(v)) for k, v in found["metrics"].items()} == line["metrics"]
    assert found["updated_at"] == line["exported_at"]


def test_lookup_by_username_uses_the_username_index(
    stack: Stack, exported_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    line = scored(exported_day)[5]

    code, out, _ = cli(capsys, "lookup", "--username", line["username"])

    assert code == 0
    assert f"user_id     {line['user_id']}\n" in out
    assert "source      default\n" in out
    assert f"username    {line['username']}\n" in out
    assert f"score       {line['score']}\n" in out


def test_lookup_of_an_unknown_user_id_exits_1(
    stack: Stack, exported_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, document, err = cli_json(capsys, "lookup", "999999")

    assert code == 1
    assert document["subusers"] == []
    assert (document["reason"], document["newest_day"]) == ("unknown", days_ago(1))
    assert err == ""


def test_lookup_of_an_unknown_username_exits_1(
    stack: Stack, exported_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "lookup", "--username", "nobody-here")

    assert code == 1
    assert out == (
        f"no latest score for username 'nobody-here': SendGrid did not return it on {days_ago(1)}, "
        "the newest exported day\n"
    )
    assert err == ""


def test_lookup_of_an_ineligible_subuser_exits_1_since_it_has_no_latest_score(
    stack: Stack, exported_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    ineligible = next(line for line in exported_day if line["score"] is None)

    code, out, _ = cli(capsys, "lookup", ineligible["user_id"])

    assert code == 1
    assert f"SendGrid returned it on {days_ago(1)}, the newest exported day, without a score (not eligible)" in out


def test_lookup_with_no_why_does_not_read_the_day_that_would_say_not_eligible(
    stack: Stack, exported_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    ineligible = next(line for line in exported_day if line["score"] is None)

    code, out, err = cli(capsys, "lookup", ineligible["user_id"], "--no-why")

    assert (code, err) == (1, "")
    assert out == (
        f"no latest score for user_id {ineligible['user_id']!r}: not in table {stack.resources.table} "
        "(--no-why: the newest exported day was not read to say why)\n"
    )


def test_lookup_never_shows_the_exporters_control_item(
    stack: Stack, exported_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack.item("#seq-export#control") is not None  # it is there...

    code, document, _ = cli_json(capsys, "lookup", "#seq-export#control")

    assert code == 1  # ...but it is not a subuser
    assert document["subusers"] == []


def test_missing_table_variable_is_a_configuration_error_naming_it(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LATEST_SCORES_TABLE")

    code, out, err = cli(capsys, "--json", "lookup", "100001")

    assert code == 3
    assert out == ""
    assert "LATEST_SCORES_TABLE is not set" in err


def test_lookup_shows_the_source_of_the_latest_score(
    two_sources: Stack, eu_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    line = next(line for line in eu_day if line["score"] is not None)

    code, document, _ = cli_json(capsys, "lookup", line["user_id"])
    _, out, _ = cli(capsys, "lookup", "--username", line["username"])

    assert code == 0
    assert document["subusers"][0]["source"] == "eu"
    assert out.splitlines()[:2] == [f"user_id     {line['user_id']}", "source      eu"]


def test_lookup_of_an_ineligible_subuser_names_the_source_that_returned_it(
    two_sources: Stack, eu_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    ineligible = next(line for line in eu_day if line["score"] is None)

    code, document, _ = cli_json(capsys, "lookup", ineligible["user_id"])
    _, out, _ = cli(capsys, "lookup", "999999")

    assert code == 1
    assert (document["reason"], document["source"], document["newest_day"]) == ("not_eligible", "eu", days_ago(1))
    assert document["newest_days"] == {"eu": days_ago(1)}
    assert out == (
        f"no latest score for user_id '999999': no source returned it on its newest exported day (eu {days_ago(1)})\n"
    )
