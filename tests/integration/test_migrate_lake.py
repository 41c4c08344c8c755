"""``seq-export migrate-lake`` on a lake written before sources existed, in process, against moto
server: the legacy objects and items are made as the exporter wrote them before (its lines and
items without ``source``, under ``{prefix}/dt=D/``), the migration moves them under a source, the
new objects read back equal apart from the added source, and running it again changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from local.seq_simulator import Scenario
from seq_export import layout, record_codec
from seq_export.models import ACCOUNT, RECORD_KEYS, SUBUSERS
from tests.support import Stack, days_ago
from tests.support.cli import cli, cli_json, configure_sources, deploy_function, object_body, object_key
from tests.support.legacy import current_keys, items, legacy_key, make_legacy, put_legacy, strip_item_sources

pytestmark = pytest.mark.integration

LEGACY_DAYS = (days_ago(3), days_ago(2))


def parsed(body: bytes) -> list[dict[str, Any]]:
    """Lines with their keys in order and numbers exact."""
    return record_codec.decode(body)


@pytest.fixture
def legacy_lake(stack: Stack) -> dict[tuple[str, str], bytes]:
    """Two subusers' days and one account day of 30 subusers with fractional scores, and their
    latest scores, as the exporter wrote them before sources; the legacy bodies by (kind, day)."""
    stack.simulator.reset(Scenario(subusers=30, fractional=True))
    bodies: dict[tuple[str, str], bytes] = {}
    for day in LEGACY_DAYS:
        assert stack.invoke({"date": day})["status"] == "exported"
        bodies[SUBUSERS, day] = make_legacy(stack, day)
    assert stack.invoke({"date": LEGACY_DAYS[1], "kind": ACCOUNT})["status"] == "exported"
    bodies[ACCOUNT, LEGACY_DAYS[1]] = make_legacy(stack, LEGACY_DAYS[1], ACCOUNT)
    strip_item_sources(stack)
    assert current_keys(stack) == sorted(legacy_key(stack, day, kind) for kind, day in bodies)
    assert all("source" not in item for item in items(stack).values())
    return bodies


def test_migrate_lake_moves_every_legacy_day_under_the_source_and_tags_every_item(
    stack: Stack, legacy_lake: dict[tuple[str, str], bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    subusers_items = len(items(stack)) - 1  # the exporter's control item aside

    code, document, err = cli_json(capsys, "migrate-lake")

    assert code == 0
    assert err.splitlines() == [f"seq-export: legacy days migrated: {n}/3" for n in (1, 2, 3)]  # progress only
    assert current_keys(stack) == sorted(object_key(stack, day, kind=kind) for kind, day in legacy_lake)
    for (kind, day), legacy in legacy_lake.items():
        new_key = object_key(stack, day, kind=kind)
        migrated = parsed(object_body(stack, new_key))
        assert migrated == [{"source": "default", **line} for line in parsed(legacy)]  # equal apart from source
        assert all(list(line) == list(RECORD_KEYS) for line in migrated)
        head = stack.session.client("s3").head_object(Bucket=stack.resources.bucket, Key=new_key)
        assert head["Metadata"]["records"] == str(len(migrated))
        assert head["ContentType"] == record_codec.CONTENT_TYPE
    after = items(stack)
    assert {item.get("source") for user_id, item in after.items() if user_id != layout.CONTROL_KEY} == {"default"}
    assert "source" not in after[layout.CONTROL_KEY]
    assert document["source"] == "default"
    assert [
        (d["kind"], d["legacy_objects"], d["moved"], d["kept_existing"], d["failed"]) for d in document["datasets"]
    ] == [
        (SUBUSERS, 2, 2, 0, 0),
        (ACCOUNT, 1, 1, 0, 0),
    ]
    assert document["datasets"][0]["lines"] == 60
    assert document["items"] == {"without_source": subusers_items, "updated": subusers_items, "already_had_source": 0}
    assert document["errors"] == []


def test_migrate_lake_again_changes_nothing(
    stack: Stack, legacy_lake: dict[tuple[str, str], bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "migrate-lake")[0] == 0
    s3 = stack.session.client("s3")
    before = {key: s3.head_object(Bucket=stack.resources.bucket, Key=key)["ETag"] for key in current_keys(stack)}
    items_before = items(stack)

    code, document, _ = cli_json(capsys, "migrate-lake")
    _, out, _ = cli(capsys, "migrate-lake")

    assert code == 0
    assert {
        key: s3.head_object(Bucket=stack.resources.bucket, Key=key)["ETag"] for key in current_keys(stack)
    } == before
    assert items(stack) == items_before
    assert document["objects"] == []
    assert [d["legacy_objects"] for d in document["datasets"]] == [0, 0]
    assert document["items"] == {"without_source": 0, "updated": 0, "already_had_source": 0}
    assert out.splitlines() == [
        f"subusers      {stack.settings.scores_prefix}: no day in the layout from before sources",
        f"account       {stack.settings.account_scores_prefix}: no day in the layout from before sources",
        "DynamoDB      0 latest scores without a source: 0 given default, 0 had one by then",
    ]


def test_migrate_lake_dry_run_lists_what_it_would_do_and_changes_nothing(
    stack: Stack, legacy_lake: dict[tuple[str, str], bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    keys_before, items_before = current_keys(stack), items(stack)

    code, out, _ = cli(capsys, "migrate-lake", "--dry-run")
    _, document, _ = cli_json(capsys, "migrate-lake", "--dry-run")

    assert code == 0
    assert (current_keys(stack), items(stack)) == (keys_before, items_before)
    bucket = stack.resources.bucket
    day = LEGACY_DAYS[0]
    assert (
        f"would move    s3://{bucket}/{legacy_key(stack, day)} -> {object_key(stack, day)} (30 lines)"
        in out.splitlines()
    )
    assert (
        out.splitlines()[-1]
        == f"DynamoDB      {len(items_before) - 1} latest scores without a source would get default"
    )
    subusers_line = next(line for line in out.splitlines() if line.startswith("subusers"))
    assert subusers_line.endswith(
        f"{len(LEGACY_DAYS)} days in the layout from before sources: would move {len(LEGACY_DAYS)} under source "
        "default (60 lines), would delete 0 already there"
    )
    assert document["dry_run"] is True
    assert [(o["action"], o["kind"], o["date"]) for o in document["objects"]] == [
        ("move", SUBUSERS, LEGACY_DAYS[0]),
        ("move", SUBUSERS, LEGACY_DAYS[1]),
        ("move", ACCOUNT, LEGACY_DAYS[1]),
    ]
    assert document["items"]["updated"] == 0


def test_a_day_already_exported_under_its_source_keeps_that_object_and_loses_the_legacy_one(
    stack: Stack, legacy_lake: dict[tuple[str, str], bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    day = LEGACY_DAYS[1]
    assert stack.invoke({"date": day})["status"] == "exported"  # the upgraded function exported it again
    newer = object_body(stack, object_key(stack, day))

    code, document, _ = cli_json(capsys, "migrate-lake")

    assert code == 0
    assert object_body(stack, object_key(stack, day)) == newer
    assert legacy_key(stack, day) not in current_keys(stack)
    assert [(o["action"], o["date"]) for o in document["objects"] if o["kind"] == SUBUSERS] == [
        ("move", LEGACY_DAYS[0]),
        ("delete", day),
    ]
    assert document["datasets"][0]["kept_existing"] == 1


def test_migrate_lake_moves_under_the_named_source_or_the_first_configured(
    stack: Stack, legacy_lake: dict[tuple[str, str], bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_sources(stack, "global", "eu")

    code, document, _ = cli_json(capsys, "migrate-lake", "--source", "eu", "--dry-run")
    moved, _, _ = cli(capsys, "migrate-lake")

    assert code == 0
    assert document["source"] == "eu"
    assert document["objects"][0]["to"] == object_key(stack, LEGACY_DAYS[0], source="eu")
    assert moved == 0  # without --source: the first configured source
    assert current_keys(stack) == sorted(
        object_key(stack, day, source="global", kind=kind) for kind, day in legacy_lake
    )
    assert {item.get("source") for uid, item in items(stack).items() if uid != layout.CONTROL_KEY} == {"global"}


def test_exact_numbers_and_text_survive_the_move(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    day = days_ago(5)
    metrics = (
        '{"engagement_recency": 1, "open_rate": 3.750, "bounce_classification": 5, '
        '"bounce_rate": 1.0000000000000000001, "spam_rate": 2}'
    )
    lines = [
        f'{{"date": "{day}", "user_id": "7", "username": "Zoë \\"ops\\" [team]", "score": 3.750, '
        f'"metrics": {metrics}, "exported_at": "2026-11-23T06:00:03.120Z"}}',
        f'{{"date": "{day}", "user_id": "8", "username": null, "score": null, "metrics": null, '
        '"exported_at": "2026-11-23T06:00:03.120Z"}',
    ]
    put_legacy(stack, day, "\n".join(lines).encode(), records=2)  # no newline after the last line

    code, _, _ = cli(capsys, "migrate-lake")

    assert code == 0
    migrated = object_body(stack, object_key(stack, day)).decode().splitlines()
    assert migrated == ['{"source": "default", ' + line.removeprefix("{") for line in lines]


def test_a_malformed_line_fails_its_day_naming_key_and_line_and_the_other_days_are_migrated(
    stack: Stack, legacy_lake: dict[tuple[str, str], bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    bad_day = days_ago(6)
    good = legacy_lake[SUBUSERS, LEGACY_DAYS[0]].decode().splitlines()
    broken = [good[0].replace(LEGACY_DAYS[0], bad_day), good[1].replace(LEGACY_DAYS[0], bad_day), '{"date": "oops"']
    bad_key = put_legacy(stack, bad_day, ("\n".join(broken) + "\n").encode())

    code, out, err = cli(capsys, "migrate-lake")

    assert code == 1
    assert [line for line in err.splitlines() if "legacy days migrated" not in line] == [
        f"seq-export: s3://{stack.resources.bucket}/{bad_key} line 3: not a JSON line "
        "(Expecting ',' delimiter: line 1 column 16 (char 15)); nothing of subusers "
        f"{bad_day} was changed"
    ]
    assert bad_key in current_keys(stack)  # nothing of that day deleted...
    assert object_key(stack, bad_day) not in current_keys(stack)  # ...or written
    assert all(object_key(stack, day) in current_keys(stack) for day in LEGACY_DAYS)
    assert f"failed        s3://{stack.resources.bucket}/{bad_key} line 3: not a JSON line" in out
    assert "1 failed (malformed lines, unchanged)" in out


def test_the_commands_read_the_migrated_lake(
    stack: Stack, legacy_lake: dict[tuple[str, str], bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    scored = next(line for line in parsed(legacy_lake[SUBUSERS, LEGACY_DAYS[1]]) if line["score"] is not None)
    assert cli(capsys, "migrate-lake")[0] == 0

    status_code, status, _ = cli_json(capsys, "status", "--date", LEGACY_DAYS[1], "--kind", "all")
    report_code, report, _ = cli_json(capsys, "report", "--date", LEGACY_DAYS[1])
    lookup_code, lookup, _ = cli_json(capsys, "lookup", scored["user_id"])
    sources_code, sources, _ = cli_json(capsys, "sources")

    (status_of_default,) = status["sources"]
    (report_of_default,) = report["sources"]
    assert (status_code, [k["exported"] for k in status_of_default["kinds"]]) == (0, [True, True])
    assert (report_code, report_of_default["previous_date"], report_of_default["subusers"]) == (
        0,
        LEGACY_DAYS[0],
        30,
    )
    assert (lookup_code, lookup["subusers"][0]["source"]) == (0, "default")
    assert sources_code == 0
    assert sources["sources"][0][SUBUSERS] == {"newest": LEGACY_DAYS[1], "days": 2}


def test_sources_points_at_migrate_lake_while_legacy_days_remain(
    stack: Stack, legacy_lake: dict[tuple[str, str], bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    code, document, _ = cli_json(capsys, "sources")
    _, out, _ = cli(capsys, "sources")

    assert code == 0
    assert document["legacy_days"] == {SUBUSERS: 2, ACCOUNT: 1}
    assert (
        f"legacy        subusers: 2 days under {stack.settings.scores_prefix} in the layout from before sources: "
        "`seq-export migrate-lake` moves them under a source" in out.splitlines()
    )
    assert (
        f"legacy        account: 1 day under {stack.settings.account_scores_prefix} in the layout from before sources: "
        "`seq-export migrate-lake` moves them under a source" in out.splitlines()
    )


def test_without_seq_sources_the_deployed_functions_first_source_is_the_one_migrated_to(
    stack: Stack, legacy_lake: dict[tuple[str, str], bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an operator's shell that names the deployed function but not its sources, whose
    # first source is not called "default"
    deploy_function(stack, ["global"])
    stack.monkeypatch.setenv("SEQ_EXPORT_FUNCTION", "seq-export-fn")

    # When the lake is migrated without --source
    code, _, _ = cli(capsys, "migrate-lake")

    # Then the history lands under the function's first source, where its tables look
    assert code == 0
    assert all(object_key(stack, day, source="global") in current_keys(stack) for day in LEGACY_DAYS)
    assert {item.get("source") for user_id, item in items(stack).items() if user_id != layout.CONTROL_KEY} == {"global"}
