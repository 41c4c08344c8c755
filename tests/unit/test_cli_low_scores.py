"""``seq-export low-scores`` in process on a fake of the latest-score table: the order of the
subusers and the source of each. The fakes: ``fake_aws`` (``tests/unit/conftest.py``).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from seq_export_cli.scores import sort_by_score
from tests.support.cli import cli
from tests.support.cli_fakes import (
    LATEST_ITEM,
    FakeAws,
)


def test_low_scores_sort_by_score_then_numeric_user_id() -> None:
    rows = [
        {"user_id": "100010", "score": 2},
        {"user_id": "99", "score": 2},
        {"user_id": "5", "score": 3.5},
        {"user_id": "100002", "score": 1.25},
    ]

    assert [r["user_id"] for r in sort_by_score(rows)] == ["100002", "99", "100010", "5"]


def test_low_scores_lines_show_each_items_source(fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    class Scanning:
        def get_paginator(self, name: str) -> Any:
            assert name == "scan"
            return SimpleNamespace(paginate=self.pages)

        def pages(self, **kwargs: Any) -> list[dict[str, Any]]:
            return [{"Items": [LATEST_ITEM] if kwargs["Segment"] == 0 else [], "ScannedCount": 1}]

    fake_aws.clients["dynamodb"] = Scanning()

    code, out, _ = cli(capsys, "low-scores", "--max", "4")

    assert code == 0
    assert out.splitlines()[:2] == [
        " score  user_id      source  username                 date",
        "  3.47  100001       default subuser-100001           2026-11-22",
    ]
