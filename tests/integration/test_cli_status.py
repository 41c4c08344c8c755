"""``seq-export status``, in process against moto server and the SEQ simulator: an exported
day's size, time and lines, a day not exported, a bucket that does not exist, one answer per
source, and a table on a terminal.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support import Stack, days_ago
from tests.support.cli import cli, cli_json, object_key, only_entry

pytestmark = pytest.mark.integration


def test_status_of_an_exported_day_gives_size_time_and_line_count(
    stack: Stack, exported_day: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(1)
    head = stack.session.client("s3").head_object(Bucket=stack.resources.bucket, Key=object_key(stack, day))

    code, answer, _ = cli_json(capsys, "status", "--date", day)

    assert code == 0
    document = only_entry(answer)
    assert document["exported"] is True
    assert document["key"] == object_key(stack, day)
    assert document["bytes"] == head["ContentLength"]
    assert document["last_modified"] == head["LastModified"].isoformat()
    assert (document["records"], document["records_from"]) == (40, "metadata")


def test_status_counts_the_lines_when_the_object_has_no_records_metadata(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    day = days_ago(9)
    body = b"".join(b'{"user_id": "%d"}\n' % n for n in range(7)) + b'{"user_id": "last"}'
    stack.session.client("s3").put_object(Bucket=stack.resources.bucket, Key=object_key(stack, day), Body=body)

    code, out, _ = cli(capsys, "status", "--date", day)

    assert code == 0
    assert f"{len(body)} bytes, 8 lines (counted)" in out


def test_status_of_a_day_not_exported_exits_1(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    day = days_ago(7)

    code, answer, err = cli_json(capsys, "status", "--date", day)

    assert code == 1
    assert answer["date"] == day
    assert only_entry(answer) == {
        "date": day,
        "source": "default",
        "kind": "subusers",
        "exported": False,
        "bucket": stack.resources.bucket,
        "key": object_key(stack, day),
    }
    assert err == ""  # the answer is on stdout, once


def test_status_against_a_bucket_that_does_not_exist_is_an_aws_error_not_a_missing_day(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCORES_BUCKET", "no-such-bucket-for-seq-export")

    code, _, err = cli(capsys, "status", "--date", days_ago(1))

    assert code == 4
    assert "S3 bucket no-such-bucket-for-seq-export does not exist" in err


def test_status_answers_per_source_and_source_picks_one(two_sources: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    day = days_ago(2)
    assert two_sources.invoke({"date": day, "source": "eu"})["status"] == "exported"

    every, both, _ = cli_json(capsys, "status", "--date", day)
    one, eu, _ = cli_json(capsys, "status", "--date", day, "--source", "eu")
    _, text, _ = cli(capsys, "status", "--date", day)

    assert every == 1  # global's day is not exported
    assert both["date"] == day
    assert [(s["source"], [k["exported"] for k in s["kinds"]]) for s in both["sources"]] == [
        ("global", [False]),
        ("eu", [True]),
    ]
    assert one == 0
    assert [s["source"] for s in eu["sources"]] == ["eu"]
    eu = only_entry(eu)
    assert (eu["source"], eu["exported"], eu["records"], eu["key"]) == (
        "eu",
        True,
        12,
        object_key(two_sources, day, source="eu"),
    )
    assert text.splitlines() == [
        "source        global",
        f"not exported  subusers {day}: no object s3://{two_sources.resources.bucket}/"
        + object_key(two_sources, day, source="global"),
        "",
        "source        eu",
        f"exported      subusers {day}: s3://{two_sources.resources.bucket}/"
        + object_key(two_sources, day, source="eu"),
        *text.splitlines()[-2:],
    ]


def test_a_terminal_gets_a_table(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    day = days_ago(1)
    assert stack.invoke({"date": day})["status"] == "exported"
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # Rich: treat the captured stdout as a terminal

    code, out, _ = cli(capsys, "status", "--date", day)
    shown = re.sub(r"\x1b\[[0-9;]*m", "", out)  # styles aside

    assert code == 0
    assert f"{day} in s3://{stack.resources.bucket}" in shown
    assert "┃ kind" in shown  # a Rich table's header row
    assert "│ subusers │ yes" in shown
