"""One ``--json`` shape per command: ``run``, ``status`` and ``report`` answer one source as they
answer several, ``{"date": D, "sources": [...]}``, so a script reads either alike."""

from __future__ import annotations

import json

import pytest

from tests.support import days_ago
from tests.support.cli import cli
from tests.support.cli_fakes import FakeAws, PerSourceLambda

DAY = days_ago(2)


@pytest.mark.parametrize("command", ["run", "status", "report"])
def test_the_top_level_keys_are_the_same_for_one_source_and_for_two(
    command: str, two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    two_sources.clients["lambda"] = PerSourceLambda()

    _, both, _ = cli(capsys, "--json", command, "--date", DAY)
    _, one, _ = cli(capsys, "--json", command, "--date", DAY, "--source", "eu")

    both_document, one_document = json.loads(both), json.loads(one)
    assert set(one_document) == set(both_document) == {"date", "sources"}
    assert [s["source"] for s in both_document["sources"]] == ["global", "eu"]
    assert [s["source"] for s in one_document["sources"]] == ["eu"]
    assert one_document["sources"][0].keys() == both_document["sources"][1].keys()  # eu, in either answer


@pytest.mark.parametrize("command", ["run", "status"])
def test_one_kind_and_every_kind_are_listed_alike_under_kinds(
    command: str, two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    two_sources.clients["lambda"] = PerSourceLambda()

    _, one_kind, _ = cli(capsys, "--json", command, "--date", DAY, "--source", "global", "--kind", "subusers")
    _, every_kind, _ = cli(capsys, "--json", command, "--date", DAY, "--source", "global", "--kind", "all")

    (one,), (every,) = json.loads(one_kind)["sources"], json.loads(every_kind)["sources"]
    assert set(one) == set(every) == {"source", "kinds"}
    assert (len(one["kinds"]), len(every["kinds"])) == (1, 2)  # global exports its account's day too
    assert all(isinstance(kind, dict) for kind in every["kinds"])  # objects, never "kind:day" strings
