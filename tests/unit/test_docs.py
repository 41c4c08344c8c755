"""The README and docs/ stay true to what they describe: every link lands on a file and a
heading, every variable, parameter, alarm and command has its row, every test a runbook names
exists, and the README's recipe makes every sample event one the function accepts. Pages move
and code grows; these fail the day a page is left behind, not the day a reader finds out."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from seq_export.config import Env
from seq_export.dates import check_exportable, parse_day
from seq_export.errors import InvalidEventError
from seq_export.invocations import QueuedJobs, parse_event
from seq_export_cli.main import cli
from tests.support.template import load_template

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: Every markdown page a reader follows links through (the changelog's history included).
PAGES = sorted([README, ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md", ROOT / "SECURITY.md", *DOCS.glob("*.md")])
#: The README is what a newcomer reads in one sitting; the reference lives in docs/.
README_MAX_LINES = 300
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
CODE_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
#: The README's date recipe for the samples: ``sed -E "s/PATTERN/$D/g" events/...``.
SED_RECIPE = re.compile(r'sed -E "s/(?P<pattern>[^/]+)/\$D/g" events/')


def heading_anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as ``-``."""
    text = CODE_BLOCK.sub("", page.read_text(encoding="utf-8"))
    headings = re.findall(r"^#+\s+(.+?)\s*$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def broken_links(page: Path) -> list[str]:
    """Each relative link of ``page`` whose file is missing, or whose ``#anchor`` names no heading there."""
    broken = []
    for match in LINK.finditer(CODE_BLOCK.sub("", page.read_text(encoding="utf-8"))):
        target = match["target"]
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked):
            broken.append(f"{target}: no such heading")
    return broken


def table_rows(page: Path) -> list[str]:
    """The first cell of every table row of ``page``."""
    return re.findall(r"^\|\s*([^|]+?)\s*\|", page.read_text(encoding="utf-8"), re.MULTILINE)


def test_the_readme_fits_one_sitting() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()

    assert len(lines) < README_MAX_LINES


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_and_a_heading_there(page: Path) -> None:
    assert broken_links(page) == []


def test_a_link_to_a_heading_that_moved_away_is_reported(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## Kept here\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("[kept](other.md#kept-here) [moved](other.md#moved-away) [gone](gone.md)\n", encoding="utf-8")

    assert broken_links(page) == ["other.md#moved-away: no such heading", "gone.md: no such file"]


def test_every_variable_of_the_function_has_a_row_in_the_configuration_table() -> None:
    names = {value for key, value in vars(Env).items() if not key.startswith("_") and isinstance(value, str)}
    rows = set(table_rows(DOCS / "configuration.md"))

    assert {name for name in names if f"`{name}`" not in rows} == set()


def test_every_parameter_of_the_template_has_a_row_in_the_parameters_table() -> None:
    parameters = set(load_template()["Parameters"])
    rows = set(table_rows(DOCS / "configuration.md"))

    assert {name for name in parameters if f"`{name}`" not in rows} == set()


def test_every_alarm_of_the_template_has_a_row_saying_what_to_do() -> None:
    resources = load_template()["Resources"]
    alarms = {name for name, resource in resources.items() if resource["Type"] == "AWS::CloudWatch::Alarm"}
    rows = " ".join(table_rows(DOCS / "operations.md"))
    # The extra sources' freshness alarms share a row: `ExtraSourceFreshnessAlarm1` … `5`.
    named = {re.sub(r"^(ExtraSourceFreshnessAlarm)\d$", r"\g<1>1", alarm) for alarm in alarms}

    assert {alarm for alarm in named if f"`{alarm}`" not in rows} == set()


def test_every_command_of_the_cli_has_a_row_in_the_command_reference() -> None:
    rows = table_rows(DOCS / "cli.md")

    missing = {name for name in cli.commands if not any(row.startswith(f"`seq-export {name}") for row in rows)}

    assert missing == set()


def test_every_test_file_the_docs_name_exists() -> None:
    named = {
        path
        for page in PAGES
        if page.name != "CHANGELOG.md"  # history may name files since moved
        for path in re.findall(r"tests/[\w/]+\.py", page.read_text(encoding="utf-8"))
    }

    assert named, "the runbooks name the tests that perform their steps"
    assert {path for path in named if not (ROOT / path).is_file()} == set()


def accepted_and_refused(pattern: str, yesterday: date) -> tuple[list[str], list[str]]:
    """The samples the function accepts and those it refuses once ``pattern`` is replaced by
    ``yesterday`` everywhere in them, as the README's ``sed`` does."""
    today = yesterday + timedelta(days=1)
    accepted, refused = [], []
    for sample in sorted((ROOT / "events").glob("*.json")):
        event = json.loads(re.sub(pattern, yesterday.isoformat(), sample.read_text(encoding="utf-8")))
        try:
            request = parse_event(event, today=today)
            if isinstance(request, QueuedJobs):  # the worker checks a queued job's day: do the same
                for record in event["Records"]:
                    check_exportable(parse_day(json.loads(record["body"])["date"]), today, what=sample.name)
        except InvalidEventError:
            refused.append(sample.name)
            continue
        accepted.append(sample.name)
    return accepted, refused


def test_the_readmes_date_recipe_makes_every_sample_event_one_the_function_accepts() -> None:
    patterns = SED_RECIPE.findall(README.read_text(encoding="utf-8"))
    assert patterns, "the README gives the one-liner that sets the samples' dates"
    samples = sorted(sample.name for sample in (ROOT / "events").glob("*.json"))

    for pattern in patterns:
        accepted, refused = accepted_and_refused(pattern, date(2026, 3, 1))  # any day: the recipe makes it theirs

        assert refused == ["invalid.json"], pattern
        assert accepted == [name for name in samples if name != "invalid.json"], pattern


def test_a_recipe_that_misses_a_samples_date_leaves_it_refused() -> None:
    accepted, refused = accepted_and_refused("2026-11-22", date(2026, 3, 1))

    assert "backfill.json" in refused  # its 2026-11-01 .. 2026-11-07 left as they were
    assert "direct-date.json" in accepted
