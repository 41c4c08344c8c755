"""The stack's saved Athena queries, run against a lake of two sources the real handler exported.

Each ``AWS::Athena::NamedQuery`` is read from template.yaml (its ``!Sub`` rendered with the Glue
names the stack creates), transpiled from Athena's dialect (Trino) to DuckDB with sqlglot, and
run on the lake as Athena sees it: the exported objects read back from S3 (moto) with pyarrow,
typed by the Glue tables' columns, ``source`` and ``dt`` taken from the Hive path (as Athena
takes its partition keys; the ``source`` key of each line is not a column of the table, and is
checked against the path here instead). Every answer is compared with one computed in Python
from the exported lines, source by source.

The two sources are the same simulator behind the same secret, so their lines are alike; they
differ in the days they hold (the second misses the newest day but one), which tells a query
that compares days within a source from one that mixes them.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from local.seq_simulator import Scenario, subuser_record
from local.stack import sources_json
from seq_export.config import Env, Source
from seq_export.layout import DEFAULT_SOURCE, PARTITION_KEYS, SOURCE_KEY, day_key
from seq_export.models import ACCOUNT, METRIC_NAMES, RECORD_KEYS, SUBUSERS
from tests.support import Stack, days_ago
from tests.support.cli import cli
from tests.support.legacy import make_legacy
from tests.support.template import load_template, render_sub

ROOT = Path(__file__).parents[2]
STACK_NAME = "seq-export"
DATABASE = "_".join(STACK_NAME.split("-"))  # what the stack's Glue database is called (see glue_names)
TABLES = {"ScoresTable": "SCORES_PREFIX", "AccountScoresTable": "ACCOUNT_SCORES_PREFIX"}
LATEST = "seq-latest-scores"
MOVERS = "seq-movers-newest-day"
DISTRIBUTION = "seq-score-distribution"
LOW_FOR_7_DAYS = "seq-low-for-7-days"
ACCOUNT_TREND = "seq-account-trend"
SUBUSER_HISTORY = "seq-subuser-history"
#: The lake's sources: every day of the first; the second skips the newest day but one.
FIRST, SECOND = "global", "eu"

#: The lake: every 7th subuser ineligible before the newest day; on the newest day 4 subusers are
#: gone and every 5th is ineligible, so some subusers' newest score is from an earlier day.
BEFORE = Scenario(subusers=60, fractional=True)
NEWEST = Scenario(subusers=56, fractional=True, ineligible_every=5)
#: Days the lake may hold: finished, and well inside every saved query's dt range (30 days or more).
RECENT_DAYS = [days_ago(n) for n in range(1, 29)]  # newest first
#: Ineligible on the newest day only: its history ends with a day without a score.
HISTORY_USERNAME = "subuser-100005"


# -- the template --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def named_queries(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["Name"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Athena::NamedQuery"
    }


def glue_names(template: Mapping[str, Any]) -> dict[str, str]:
    """What ``${ScoresDatabase}`` and the tables render to in a stack named STACK_NAME."""
    database = template["Resources"]["ScoresDatabase"]["Properties"]["DatabaseInput"]["Name"]
    assert database == {"Fn::Join": ["_", {"Fn::Split": ["-", {"Ref": "AWS::StackName"}]}]}
    names = {"ScoresDatabase": DATABASE}
    for table in TABLES:
        names[table] = template["Resources"][table]["Properties"]["TableInput"]["Name"]
    return names


def rendered_sql(template: Mapping[str, Any]) -> dict[str, str]:
    """Each saved query's SQL as the deployed stack holds it."""
    names = glue_names(template)
    return {name: render_sub(query["QueryString"], names) for name, query in named_queries(template).items()}


# -- the lake, read as Athena reads it --------------------------------------------------------------
def arrow_type(glue_type: str) -> Any:
    """The Arrow type of a Glue column type (string, double, struct of those)."""
    import pyarrow as pa  # noqa: PLC0415 - only the reader process needs Arrow

    simple = {"string": pa.string(), "double": pa.float64()}
    if glue_type in simple:
        return simple[glue_type]
    inner = glue_type.removeprefix("struct<").removesuffix(">")
    assert inner != glue_type, f"unexpected Glue type {glue_type}"
    return pa.struct([(name, arrow_type(kind)) for name, kind in (part.split(":", 1) for part in inner.split(","))])


def copy_lake(
    endpoint: str,
    locations: dict[str, str],
    columns: dict[str, list[dict[str, str]]],
    partition_keys: dict[str, list[dict[str, str]]],
    out_dir: str,
) -> None:
    """Read each Glue table's S3 location (JSON lines, Hive partitions) with Arrow's own S3
    filesystem, typed by its Glue columns and partition keys, and write it to
    ``out_dir/<table>.parquet``.

    As Athena's JSON SerDe, the reader maps the table's columns and ignores any other key of a
    line (``source`` is one: a partition key, taken from the path). Arrow's dataset reader does
    not enforce ``unexpected_field_behavior="error"`` anyway (pyarrow 26), so the tests check the
    lines' keys themselves (``exported_lines``). Where a line's ``source`` and its path disagree,
    Arrow, like DuckDB's hive_partitioning, silently takes the path's.

    Runs in a process of its own (see ``read_lake``): the Arrow reader may hold the GIL that the
    moto server in the test process needs."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.dataset as ds  # noqa: PLC0415
    import pyarrow.json as pj  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415
    from pyarrow import fs  # noqa: PLC0415

    address = urlsplit(endpoint)
    s3 = fs.S3FileSystem(
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        session_token=os.environ.get("AWS_SESSION_TOKEN"),
        region=os.environ["AWS_DEFAULT_REGION"],
        endpoint_override=address.netloc,
        scheme=address.scheme,
    )
    for table, location in locations.items():
        data_columns = pa.schema([(c["Name"], arrow_type(c["Type"])) for c in columns[table]])
        partitions = pa.schema([(c["Name"], arrow_type(c["Type"])) for c in partition_keys[table]])
        lines = ds.JsonFileFormat(
            parse_options=pj.ParseOptions(explicit_schema=data_columns, unexpected_field_behavior="ignore")
        )
        # Paths starting with "_" (quarantine, staging) are skipped, as Athena skips them.
        dataset = ds.dataset(
            location.removeprefix("s3://"),
            schema=pa.unify_schemas([data_columns, partitions]),
            format=lines,
            partitioning=ds.partitioning(partitions, flavor="hive"),
            filesystem=s3,
        )
        pq.write_table(dataset.to_table(), Path(out_dir) / f"{table}.parquet")


def read_lake(stack: Stack, template: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """The Glue tables' data (from their S3 locations, typed by their columns) as Parquet files."""
    resources = template["Resources"]
    names = {
        "ScoresBucket": stack.resources.bucket,
        "ScoresPrefix": stack.settings.scores_prefix,
        "AccountScoresPrefix": stack.settings.account_scores_prefix,
    }
    tables = glue_names(template)
    locations, columns, partition_keys = {}, {}, {}
    for logical_id in TABLES:
        table = resources[logical_id]["Properties"]["TableInput"]
        locations[tables[logical_id]] = render_sub(table["StorageDescriptor"]["Location"], names)
        columns[tables[logical_id]] = table["StorageDescriptor"]["Columns"]
        partition_keys[tables[logical_id]] = table["PartitionKeys"]
    arguments = {
        "endpoint": os.environ["AWS_ENDPOINT_URL"],
        "locations": locations,
        "columns": columns,
        "partition_keys": partition_keys,
        "out_dir": str(out_dir),
    }
    code = (
        "import json, sys\n"
        "from tests.integration.test_athena_queries import copy_lake\n"
        "copy_lake(**json.loads(sys.argv[1]))"
    )
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)])}
    subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-c", code, json.dumps(arguments)],
        env=env,
        cwd=ROOT,  # its output (a traceback) shows in the test's report
        timeout=300,
        check=True,
    )
    return {table: out_dir / f"{table}.parquet" for table in locations}


@dataclass
class Lake:
    """An exported lake: each source's days, what was exported, and DuckDB holding the Glue tables."""

    days: dict[str, list[str]]  # source -> its days, oldest first
    subusers: dict[tuple[str, str], list[dict[str, Any]]]  # (source, day) -> its lines
    account: dict[tuple[str, str], list[dict[str, Any]]]
    low_user_id: str  # a subuser scored <= 2 on its 7 newest days of the first source
    sql: dict[str, str]
    db: duckdb.DuckDBPyConnection

    def answer(self, query: str, *parameters: str) -> list[dict[str, Any]]:
        """Run a saved query, transpiled from Athena's Trino dialect to DuckDB's."""
        (statement,) = sqlglot.transpile(self.sql[query], read="trino", write="duckdb")
        cursor = self.db.execute(statement, list(parameters))
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def rows(self, source: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(day, line) of every subuser line of ``source``, oldest day first."""
        for day in self.days[source]:
            for line in self.subusers[source, day]:
                yield day, line


def score_on(day: str, index: int, scenario: Scenario) -> float | None:
    score: float | None = subuser_record(day, index, scenario).get("score")
    return score


def days_with_a_low_week() -> tuple[list[str], str]:
    """Nine days to export, oldest first, and a subuser scored 2 or less on the seven newest.

    Scores are a pure function of (day, user), so this picks, among the recent days, the newest
    seven on which one subuser scored 2 or less, plus the two days before them. The lake then has
    gaps (the previous exported day is not yesterday), as a lake with days given up on has."""
    for index in range(NEWEST.subusers):
        if score_on(RECENT_DAYS[0], index, NEWEST) is None:  # ineligible on the newest day
            continue
        low = [day for day in RECENT_DAYS if (score := score_on(day, index, BEFORE)) is not None and score <= 2]
        earlier = [day for day in RECENT_DAYS if len(low) >= 7 and day < low[6]]
        if len(earlier) >= 2:
            return sorted([*low[:7], *earlier[:2]]), subuser_record(low[0], index, BEFORE)["user_id"]
    raise AssertionError("no subuser scored 2 or less on 7 of the recent days")  # about 1 in 10**14


def exported_lines(stack: Stack, prefix: str, source: str, day: str) -> list[dict[str, Any]]:
    """A source's day's object as JSON, numbers as floats (the Glue columns' double); every line
    has the contract's keys and names the source its path names (the table reads the path's)."""
    key = day_key(prefix, source, day)
    body = stack.session.client("s3").get_object(Bucket=stack.resources.bucket, Key=key)["Body"]
    lines = [json.loads(line, parse_float=float) for line in body.read().decode().splitlines()]
    for line in lines:
        assert list(line) == list(RECORD_KEYS), (key, line)
        assert line[SOURCE_KEY] == source, (key, line)
    return lines


@pytest.fixture
def lake(stack: Stack, template: dict[str, Any], tmp_path: Path) -> Lake:
    # Two sources as the template renders SEQ_SOURCES, both the simulator behind one secret (the
    # first with the URL and secret the stack's single-source variables beside it name).
    sources = [Source(name, stack.simulator.url.rstrip("/"), stack.resources.secret_id) for name in (FIRST, SECOND)]
    stack.configure(**{Env.SEQ_SOURCES: sources_json(sources)})
    assert stack.settings.source_names == (FIRST, SECOND)
    every_day, low_user_id = days_with_a_low_week()
    days = {FIRST: every_day, SECOND: [day for day in every_day if day != every_day[-2]]}
    stack.simulator.reset(BEFORE)
    for day in every_day:
        if day == every_day[-1]:
            stack.simulator.reset(NEWEST)
        for source in (FIRST, SECOND):
            if day in days[source]:
                for kind in ("subusers", "account"):
                    answer = stack.invoke({"date": day, "kind": kind, "source": source})
                    assert (answer["status"], answer["source"]) == ("exported", source), answer

    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")  # Athena's current_date is the UTC day
    database = glue_names(template)["ScoresDatabase"]
    db.execute(f'CREATE SCHEMA "{database}"')
    for table, path in read_lake(stack, template, tmp_path).items():
        db.read_parquet(str(path)).create(f'"{database}"."{table}"')
    settings = stack.settings
    return Lake(
        days=days,
        subusers={
            (source, day): exported_lines(stack, settings.scores_prefix, source, day)
            for source, source_days in days.items()
            for day in source_days
        },
        account={
            (source, day): exported_lines(stack, settings.account_scores_prefix, source, day)
            for source, source_days in days.items()
            for day in source_days
        },
        low_user_id=low_user_id,
        sql=rendered_sql(template),
        db=db,
    )


def metrics_of(line: Mapping[str, Any]) -> dict[str, float] | None:
    metrics: dict[str, float] | None = line["metrics"]
    return metrics


def approx(rows: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    """``rows`` with the named (averaged) values compared approximately."""
    return [row | {key: pytest.approx(row[key]) for key in keys} for row in rows]


def sources_of(rows: list[dict[str, Any]]) -> list[str]:
    """The sources of ``rows``, each once, in order of first appearance."""
    return list(dict.fromkeys(row[SOURCE_KEY] for row in rows))


# -- the template's queries, without a lake ------------------------------------------------------
def test_every_saved_query_runs_in_the_stacks_workgroup_on_the_glue_database(template: dict[str, Any]) -> None:
    queries = named_queries(template)

    assert set(queries) == {LATEST, MOVERS, DISTRIBUTION, LOW_FOR_7_DAYS, ACCOUNT_TREND, SUBUSER_HISTORY}
    for name, query in queries.items():
        assert query["WorkGroup"] == {"Ref": "AthenaWorkGroup"}, name
        assert query["Database"] == {"Ref": "ScoresDatabase"}, name
        assert len(query["Description"]) <= 1024, name


def test_every_saved_query_is_athena_sql_that_reads_glue_tables_by_their_partition(
    template: dict[str, Any],
) -> None:
    names = glue_names(template)
    glue_tables = {names[table] for table in TABLES}

    for name, sql in rendered_sql(template).items():
        tree = sqlglot.parse_one(sql, read="trino")  # raises on anything Trino would not parse
        read = [table for table in tree.find_all(exp.Table) if table.db]
        assert read, name
        for table in read:
            assert (table.db, table.name) in {(names["ScoresDatabase"], t) for t in glue_tables}, (name, table.sql())
            select = table.find_ancestor(exp.Select)
            where = select.args.get("where") if select else None
            assert where is not None, (name, "reads every partition")
            assert any(column.name == "dt" for column in where.find_all(exp.Column)), (name, where.sql())


def test_every_saved_query_answers_with_the_source_first_and_compares_days_within_a_source(
    template: dict[str, Any],
) -> None:
    for name, sql in rendered_sql(template).items():
        tree = sqlglot.parse_one(sql, read="trino")
        assert tree.expressions[0].alias_or_name == SOURCE_KEY, (name, tree.expressions[0].sql())
        for window in tree.find_all(exp.Window):  # ranks, lags: only among one source's rows
            partition = [column.name for column in window.args.get("partition_by") or []]
            assert partition[:1] == [SOURCE_KEY], (name, window.sql())


def test_the_workgroup_keeps_encrypted_results_under_the_buckets_athena_results_prefix(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    workgroup = resources["AthenaWorkGroup"]["Properties"]
    config = workgroup["WorkGroupConfiguration"]
    results = config["ResultConfiguration"]
    rules = resources["ScoresBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]

    assert render_sub(results["OutputLocation"], {"ScoresBucket": "lake"}) == "s3://lake/athena-results/"
    assert results["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}
    assert config["EnforceWorkGroupConfiguration"] is True  # clients cannot send results elsewhere
    assert config["PublishCloudWatchMetricsEnabled"] is True
    assert 0 < config["BytesScannedCutoffPerQuery"] <= 10 * 2**30
    assert workgroup["RecursiveDeleteOption"] is True  # the stack deletes with its saved queries
    (expiry,) = [rule for rule in rules if rule.get("Prefix") == "athena-results/"]
    assert expiry["Status"] == "Enabled"
    assert expiry["ExpirationInDays"] > 0
    assert template["Outputs"]["AthenaWorkGroup"]["Value"] == {"Ref": "AthenaWorkGroup"}


# -- each query on an exported lake ----------------------------------------------------------------
@pytest.mark.integration
def test_the_lake_reads_each_source_from_its_partition(lake: Lake) -> None:
    """What the tables hold: every exported line once, its source and day from its path."""
    for table, exported in (("subuser_scores", lake.subusers), ("account_scores", lake.account)):
        query = f'SELECT {", ".join(PARTITION_KEYS)}, count(*) FROM "{DATABASE}"."{table}" GROUP BY ALL ORDER BY ALL'  # noqa: S608 - constant names
        counted = lake.db.execute(query).fetchall()
        assert counted == sorted((source, day, len(lines)) for (source, day), lines in exported.items()), table


@pytest.mark.integration
def test_latest_scores_gives_each_subusers_newest_score_per_source_even_from_before_an_ineligible_day(
    lake: Lake,
) -> None:
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for source in lake.days:
        for day, line in lake.rows(source):
            if line["score"] is not None:
                fields = ("user_id", "username")
                newest[source, line["user_id"]] = (
                    {"source": source}
                    | {k: line[k] for k in fields}
                    | {"dt": day, "score": line["score"], "metrics": metrics_of(line)}
                )

    answer = lake.answer(LATEST)

    assert answer == [newest[key] for key in sorted(newest)]
    assert sources_of(answer) == [SECOND, FIRST]  # by source (alphabetical), then user
    assert any(row["dt"] < lake.days[FIRST][-1] for row in answer)  # ineligible or gone on the newest day


@pytest.mark.integration
def test_movers_compares_each_sources_newest_day_with_its_previous_exported_day_biggest_drop_first(
    lake: Lake,
) -> None:
    moved = []
    for source, days in lake.days.items():
        previous_day, newest_day = days[-2:]
        before = {line["user_id"]: line for line in lake.subusers[source, previous_day] if line["score"] is not None}
        moved += [
            {
                "source": source,
                "user_id": line["user_id"],
                "username": line["username"],
                "previous_dt": previous_day,
                "previous_score": before[line["user_id"]]["score"],
                "dt": newest_day,
                "score": line["score"],
                "change": line["score"] - before[line["user_id"]]["score"],
            }
            for line in lake.subusers[source, newest_day]
            if line["score"] is not None
            and line["user_id"] in before
            and line["score"] != before[line["user_id"]]["score"]
        ]

    answer = lake.answer(MOVERS)

    assert answer == sorted(moved, key=lambda row: (row["change"], row["source"], row["user_id"]))
    assert answer[0]["change"] < 0 < answer[-1]["change"]
    # each source against its own previous day: the second source has none for the newest but one
    assert {(row["source"], row["previous_dt"]) for row in answer} == {
        (FIRST, lake.days[FIRST][-2]),
        (SECOND, lake.days[SECOND][-2]),
    }


@pytest.mark.integration
def test_score_distribution_counts_each_band_and_the_ineligible_per_source_and_day(lake: Lake) -> None:
    expected = []
    for source in sorted(lake.days):
        for day in lake.days[source]:
            scores = [line["score"] for line in lake.subusers[source, day]]
            scored = [score for score in scores if score is not None]
            bands = {f"score_{band}": sum(1 for s in scored if math.floor(s) == band) for band in range(1, 6)}
            expected.append(
                {"source": source, "dt": day, "subusers": len(scores)}
                | bands
                | {"ineligible": len(scores) - len(scored), "mean_score": fmean(scored)}
            )

    answer = lake.answer(DISTRIBUTION)

    assert answer == approx(expected, "mean_score")
    assert len(answer) == len(lake.days[FIRST]) + len(lake.days[SECOND])
    for row in answer:
        assert sum(row[f"score_{band}"] for band in range(1, 6)) + row["ineligible"] == row["subusers"]


@pytest.mark.integration
def test_low_for_7_days_lists_subusers_scored_2_or_below_on_each_of_their_7_newest_days_of_a_source(
    lake: Lake,
) -> None:
    expected = []
    for source in lake.days:
        history: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for day, line in lake.rows(source):
            history.setdefault(line["user_id"], []).append((day, line))
        for user_id, days in history.items():
            week = days[-7:]
            scores = [line["score"] for _, line in week]
            if len(week) == 7 and all(score is not None and score <= 2 for score in scores):
                expected.append(
                    {
                        "source": source,
                        "user_id": user_id,
                        "username": week[-1][1]["username"],
                        "since": week[0][0],
                        "through": week[-1][0],
                        "highest_score": max(scores),
                        "mean_score": fmean(scores),
                    }
                )
    expected.sort(key=lambda row: (row["mean_score"], row["source"], row["user_id"]))

    answer = lake.answer(LOW_FOR_7_DAYS)

    assert answer == approx(expected, "mean_score")
    assert (FIRST, lake.low_user_id) in {(row["source"], row["user_id"]) for row in answer}


@pytest.mark.integration
def test_account_trend_gives_each_sources_account_score_per_day_with_its_change(lake: Lake) -> None:
    expected = []
    for source in sorted(lake.days):
        previous: float | None = None
        for day in lake.days[source]:
            (line,) = lake.account[source, day]
            score, metrics = line["score"], metrics_of(line) or dict.fromkeys(METRIC_NAMES)
            change = None if score is None or previous is None else score - previous
            expected.append({"source": source, "dt": day, "score": score, "change": change} | metrics)
            previous = score

    answer = lake.answer(ACCOUNT_TREND)

    assert answer == expected
    assert sources_of(answer) == [SECOND, FIRST]
    assert [row["change"] for row in answer if row["dt"] == lake.days[SECOND][0]] == [None, None]  # per source


@pytest.mark.integration
def test_subuser_history_takes_the_username_as_its_parameter_and_gives_one_history_per_source(lake: Lake) -> None:
    expected = []
    for source in sorted(lake.days):
        previous: float | None = None
        for day, line in lake.rows(source):
            if line["username"] == HISTORY_USERNAME:
                score, metrics = line["score"], metrics_of(line) or dict.fromkeys(METRIC_NAMES)
                change = None if score is None or previous is None else score - previous
                expected.append({"source": source, "dt": day, "score": score, "change": change} | metrics)
                previous = score

    answer = lake.answer(SUBUSER_HISTORY, HISTORY_USERNAME)

    assert answer == expected
    for source in (FIRST, SECOND):
        history = [row for row in answer if row["source"] == source]
        assert len(history) == len(lake.days[source])
        assert history[0]["change"] is None
        assert history[-1]["score"] is None  # ineligible on the newest day


@pytest.mark.integration
def test_a_single_source_lake_upgraded_by_migrate_lake_keeps_its_history_readable_through_the_glue_tables(
    stack: Stack, template: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two days of each dataset as a stack wrote them before sources existed
    stack.simulator.reset(Scenario(subusers=20, fractional=True))
    days = [days_ago(3), days_ago(2)]
    for day in days:
        for kind in (SUBUSERS, ACCOUNT):
            assert stack.invoke({"date": day, "kind": kind})["status"] == "exported"
    exported = {day: exported_lines(stack, stack.settings.scores_prefix, DEFAULT_SOURCE, day) for day in days}
    account = {day: exported_lines(stack, stack.settings.account_scores_prefix, DEFAULT_SOURCE, day) for day in days}
    for day in days:
        make_legacy(stack, day)
        make_legacy(stack, day, ACCOUNT)

    # When the operator upgrades the lake
    code, _, _ = cli(capsys, "migrate-lake")

    # Then the Glue tables read every old day under the source, and a saved query answers from them
    assert code == 0
    db = duckdb.connect()
    paths = read_lake(stack, template, tmp_path)
    tables = glue_names(template)
    subusers = db.read_parquet(str(paths[tables["ScoresTable"]])).order("dt, user_id").fetchall()
    assert [(row[-2], row[-1], row[1]) for row in subusers] == [
        (DEFAULT_SOURCE, day, line["user_id"])
        for day in days
        for line in sorted(exported[day], key=lambda x: x["user_id"])
    ]
    account_rows = db.read_parquet(str(paths[tables["AccountScoresTable"]])).order("dt").fetchall()
    assert [(row[-2], row[-1], row[3]) for row in account_rows] == [
        (DEFAULT_SOURCE, day, account[day][0]["score"]) for day in days
    ]
    history_db = duckdb.connect()
    history_db.execute(f'CREATE SCHEMA "{tables["ScoresDatabase"]}"')
    for table, path in paths.items():
        history_db.read_parquet(str(path)).create(f'"{tables["ScoresDatabase"]}"."{table}"')
    history = Lake({}, {}, {}, "", rendered_sql(template), history_db).answer(SUBUSER_HISTORY, "subuser-100002")
    assert [(row["source"], row["dt"]) for row in history] == [(DEFAULT_SOURCE, day) for day in days]
