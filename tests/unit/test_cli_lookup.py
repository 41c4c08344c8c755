"""``seq-export lookup`` in process on a fake of the latest-score table: the key it reads, the
fields it prints, numbers exact, and a subuser without a latest score. The fakes: ``fake_aws``
(``tests/unit/conftest.py``).
"""

from __future__ import annotations

import json

import pytest

from seq_export_cli.scores import subuser_fields
from tests.support import FakeDynamoDB
from tests.support.cli import cli
from tests.support.cli_fakes import (
    LATEST_ITEM,
    FakeAws,
)


def test_lookup_prints_the_subusers_latest_score(fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    fake_aws.clients["dynamodb"] = table = FakeDynamoDB(items={"100001": LATEST_ITEM})

    code, out, _ = cli(capsys, "lookup", " 100001 ")

    assert code == 0
    assert table.keys_read() == [{"user_id": {"S": "100001"}}]
    assert out.splitlines() == [
        "user_id     100001",
        "source      default",
        "username    subuser-100001",
        "date        2026-11-22",
        "score       3.47",
        "metrics     open_rate=4 spam_rate=1.125",
        "updated_at  2026-11-23T06:00:03.120Z",
    ]


def test_lookup_of_a_subuser_without_a_latest_score_exits_1(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_aws.clients["dynamodb"] = FakeDynamoDB(items={})
    del fake_aws.environ["SCORES_BUCKET"]

    code, out, _ = cli(capsys, "--json", "lookup", "7")

    assert code == 1
    assert json.loads(out) == {
        "query": {"user_id": "7"},
        "subusers": [],
        "reason": "unknown",
        "newest_day": None,
        "source": None,
        "newest_days": {},
    }


def test_lookup_with_no_why_reads_nothing_from_s3_and_says_it_did_not_check(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_aws.clients["dynamodb"] = FakeDynamoDB(items={})
    fake_aws.clients["s3"] = object()  # any S3 call would fail the command

    code, out, err = cli(capsys, "--json", "lookup", "7", "--no-why")

    assert (code, err) == (1, "")
    document = json.loads(out)
    assert (document["subusers"], document["reason"], document["newest_day"]) == ([], "not_checked", None)


def test_lookup_help_says_what_the_explanation_reads_from_s3(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "lookup", "--help")

    text = " ".join(out.split())
    assert code == 0
    assert "--no-why" in text
    assert "about 25 MB at 100,000 subusers" in text


def test_items_become_the_printed_fields_with_exact_numbers() -> None:
    assert subuser_fields(LATEST_ITEM) == {
        "user_id": "100001",
        "source": "default",
        "username": "subuser-100001",
        "date": "2026-11-22",
        "score": 3.47,
        "metrics": {"open_rate": 4, "spam_rate": 1.125},
        "updated_at": "2026-11-23T06:00:03.120Z",
    }
    assert list(subuser_fields(LATEST_ITEM)) == [
        "user_id",
        "source",
        "username",
        "date",
        "score",
        "metrics",
        "updated_at",
    ]
    assert subuser_fields({"user_id": {"S": "7"}})["username"] is None
