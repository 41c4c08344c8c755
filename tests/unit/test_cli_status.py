"""``seq-export status`` in process on a fake S3: one document per source, or the one source's;
and the lines of a streamed object counted. The fakes: ``fake_aws`` (``tests/unit/conftest.py``).
"""

from __future__ import annotations

import json

import pytest

from seq_export.record_codec import count_lines
from tests.support.cli import cli, only_entry
from tests.support.cli_fakes import (
    FakeAws,
)


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([], 0),
        ([b""], 0),
        ([b'{"a": 1}\n', b'{"a": 2}\n'], 2),
        ([b'{"a": 1}\n{"a"', b": 2}"], 2),  # last line without a newline
        ([b'{"a": 1}\n', b""], 1),  # an empty last chunk
        ([b"\n"], 1),
    ],
)
def test_count_lines_of_a_streamed_body(chunks: list[bytes], lines: int) -> None:
    assert count_lines(chunks) == lines


def test_status_of_several_sources_lists_one_document_per_source(
    two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    two_sources.clients["s3"].put("seq/subuser_scores/source=global/dt=2026-11-22/scores.jsonl")

    code, out, _ = cli(capsys, "status", "--date", "2026-11-22", "--json")
    text_code, text, _ = cli(capsys, "status", "--date", "2026-11-22")

    assert (code, text_code) == (1, 1)  # eu's day is not exported
    document = json.loads(out)
    assert document["date"] == "2026-11-22"
    assert [(s["source"], [k["exported"] for k in s["kinds"]]) for s in document["sources"]] == [
        ("global", [True]),
        ("eu", [False]),
    ]
    assert document["sources"][1]["kinds"][0]["key"] == "seq/subuser_scores/source=eu/dt=2026-11-22/scores.jsonl"
    assert text.splitlines()[0] == "source        global"
    assert "source        eu" in text.splitlines()


def test_status_of_one_source_of_several_lists_that_source_only(
    two_sources: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    two_sources.clients["s3"].put("seq/subuser_scores/source=eu/dt=2026-11-22/scores.jsonl")

    code, out, _ = cli(capsys, "status", "--date", "2026-11-22", "--source", "eu", "--json")

    assert code == 0
    document = json.loads(out)
    assert (document["date"], [s["source"] for s in document["sources"]]) == ("2026-11-22", ["eu"])
    assert only_entry(document) | {"last_modified": None} == {
        "date": "2026-11-22",
        "source": "eu",
        "kind": "subusers",
        "exported": True,
        "bucket": "env-bucket",
        "key": "seq/subuser_scores/source=eu/dt=2026-11-22/scores.jsonl",
        "bytes": 120,
        "last_modified": None,
        "records": 3,
        "records_from": "metadata",
        "exported_at": None,
    }
