"""Several SendGrid sources in one stack: each (source, kind, day) is its own job.

Three sources over two hosts, each a SEQ simulator in a process of its own: ``global`` and
``brand-b`` are two parent accounts on the global host (two keys), ``eu`` is the EU host (its own
key, no account scores of its own). Every assertion names the source it is about.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Any

import boto3
import pytest

from local.seq_simulator import Scenario, expected_records
from local.simulator_process import SimulatorProcess
from local.stack import new_api_key
from seq_export import wiring
from seq_export.config import Env
from seq_export.errors import ConfigError
from seq_export.job_message import Job, JobId
from seq_export.layout import DEFAULT_ACCOUNT_PREFIX, day_key
from seq_export.models import ACCOUNT, SUBUSERS
from tests.support import Stack, days_ago
from tests.support.stack import at_once

pytestmark = pytest.mark.integration

GLOBAL = Scenario(subusers=1_200)
BRAND_B = Scenario(subusers=300, first_user_id=500_001)
EU = Scenario(subusers=250, first_user_id=900_001)


@pytest.fixture(scope="session")
def eu_api_key() -> str:
    return new_api_key()


@pytest.fixture(scope="session")
def eu_simulator(eu_api_key: str) -> Iterator[SimulatorProcess]:
    """The EU host: a simulator in a process of its own, beside the session's simulator."""
    with SimulatorProcess(eu_api_key, label="eu") as simulator:
        yield simulator


@pytest.fixture(scope="session")
def global_host(api_key: str) -> Iterator[SimulatorProcess]:
    """The global host, reached with the stack's own key (its secret) and brand-b's."""
    with SimulatorProcess(api_key, label="primary") as simulator:
        yield simulator


@pytest.fixture
def sources(
    stack: Stack, global_host: SimulatorProcess, eu_simulator: SimulatorProcess, eu_api_key: str, api_key: str
) -> Stack:
    """The stack configured with the three sources, each key in a secret of its own."""
    brand_b_key = new_api_key()
    global_host.reset(GLOBAL)
    global_host.api_key = api_key
    global_host.add_account(brand_b_key, BRAND_B, label="brand-b")
    eu_simulator.reset(EU)
    eu_simulator.api_key = eu_api_key  # a test may have revoked it
    secrets = stack.session.client("secretsmanager")
    brand_b_secret = secrets.create_secret(Name="seq-export/brand-b", SecretString=brand_b_key)["ARN"]
    eu_secret = secrets.create_secret(Name="seq-export/eu", SecretString=json.dumps({"api_key": eu_api_key}))["ARN"]
    configured = [
        {"name": "global", "base_url": global_host.url, "secret_id": stack.resources.secret_id},
        {"name": "brand-b", "base_url": global_host.url, "secret_id": brand_b_secret},
        {"name": "eu", "base_url": eu_simulator.url, "secret_id": eu_secret, "account_scores": False},
    ]
    stack.monkeypatch.delenv(Env.SEQ_API_BASE_URL, raising=False)
    stack.monkeypatch.delenv(Env.SEQ_API_KEY_SECRET_ID, raising=False)
    stack.configure(**{Env.SEQ_SOURCES: json.dumps(configured)})
    return stack


def drain(stack: Stack, *, retry_failed_at_once: bool = False) -> list[dict[str, Any]]:
    """Play the event source until the retry queue is empty; the responses, in order."""
    responses = []
    while (response := stack.deliver(wait_seconds=3, retry_failed_at_once=retry_failed_at_once)) is not None:
        responses.append(response)
    return responses


def user_ids(stack: Stack, day: str, source: str) -> list[str]:
    return [line["user_id"] for line in stack.lines(day, source)]


def truth(day: str, scenario: Scenario) -> list[str]:
    return [record["user_id"] for record in expected_records(day, scenario)]


def account_key(stack: Stack, source: str, day: str) -> str:
    return day_key(DEFAULT_ACCOUNT_PREFIX, source, day)


# -- the daily run -----------------------------------------------------------------------------


def test_the_daily_run_exports_every_sources_day_each_with_its_own_key(
    sources: Stack, global_host: SimulatorProcess, eu_simulator: SimulatorProcess
) -> None:
    day = days_ago(1)

    answer = sources.invoke({"scheduled_time": f"{days_ago(0)}T06:00:00Z"})
    assert all(response == {"batchItemFailures": []} for response in drain(sources))
    assert sources.queue_counts() == {"visible": 0, "delayed": 0}

    assert (answer["status"], answer["source"], answer["date"]) == ("exported", "global", day)
    assert user_ids(sources, day, "global") == truth(day, GLOBAL)
    assert user_ids(sources, day, "brand-b") == truth(day, BRAND_B)
    assert user_ids(sources, day, "eu") == truth(day, EU)
    assert {line["source"] for line in sources.lines(day, "eu")} == {"eu"}
    host = {(r["account"], r["path"].rsplit("/", 1)[-1]) for r in global_host.requests}
    assert host == {("primary", "scores"), ("brand-b", "scores")}  # both keys, both endpoints, no 401
    assert {r["account"] for r in eu_simulator.requests} == {"eu"}
    assert {r["status"] for r in global_host.requests + eu_simulator.requests} == {200}
    data = sources.data_keys()
    assert account_key(sources, "global", day) in data
    assert account_key(sources, "brand-b", day) in data
    assert account_key(sources, "eu", day) not in data  # the EU source exports no account scores


def test_each_source_counts_in_its_own_metric_series_and_in_the_stack_total(sources: Stack) -> None:
    day = days_ago(1)

    sources.invoke({"scheduled_time": f"{days_ago(0)}T06:00:00Z"})
    drain(sources)

    for name, scenario in (("global", GLOBAL), ("brand-b", BRAND_B), ("eu", EU)):
        assert sources.source_metrics(name)["RecordsExported"] == scenario.subusers, name
    assert sources.metrics["RecordsExported"] == GLOBAL.subusers + BRAND_B.subusers + EU.subusers
    fleet = [d for d in sources.documents if "SubusersWithScore1" in d]
    assert sorted(d["source"] for d in fleet) == ["brand-b", "eu", "global"]
    assert sources.dlq_bodies() == []
    assert sources.item(truth(day, EU)[0])["source"] == "eu"  # type: ignore[index]


# -- independence --------------------------------------------------------------------------------


def test_a_202_chain_on_one_source_does_not_hold_up_the_others(sources: Stack, eu_simulator: SimulatorProcess) -> None:
    day = days_ago(1)
    eu_simulator.reset(Scenario(subusers=EU.subusers, first_user_id=EU.first_user_id, not_ready=2))

    sources.invoke({"scheduled_time": f"{days_ago(0)}T06:00:00Z"})
    first_round = sources.deliver(wait_seconds=1)  # the queued jobs: brand-b, eu, the accounts

    assert first_round == {"batchItemFailures": []}
    assert user_ids(sources, day, "brand-b") == truth(day, BRAND_B)  # landed while eu waits
    assert sources.key(day, "eu") not in sources.data_keys()
    drain(sources)
    assert user_ids(sources, day, "eu") == truth(day, EU)
    assert [r["status"] for r in eu_simulator.requests] == [202, 202, 200]
    assert sources.source_metrics("eu")["NotReadyRescheduled"] == 2
    assert sources.source_metrics("global")["NotReadyRescheduled"] == 0


def test_a_refused_key_on_one_source_fails_only_that_source(sources: Stack, eu_simulator: SimulatorProcess) -> None:
    day = days_ago(1)
    eu_simulator.api_key = new_api_key()  # the EU key was revoked at SendGrid

    sources.invoke({"scheduled_time": f"{days_ago(0)}T06:00:00Z"})
    responses = drain(sources, retry_failed_at_once=True)

    assert user_ids(sources, day, "global") == truth(day, GLOBAL)
    assert user_ids(sources, day, "brand-b") == truth(day, BRAND_B)
    assert sources.key(day, "eu") not in sources.data_keys()
    assert sum(len(r["batchItemFailures"]) for r in responses) == 3  # received three times, then dead-lettered
    (dead,) = sources.dlq_bodies()
    assert (dead["source"], dead["kind"], dead["date"]) == ("eu", SUBUSERS, day)
    assert sources.source_metrics("eu")["ExportFailed"] == 3
    assert sources.source_metrics("brand-b")["ExportFailed"] == 0


def test_the_same_day_of_two_sources_exports_concurrently_without_waiting(sources: Stack) -> None:
    day = days_ago(1)
    names = ("global", "brand-b")

    def export(name: str) -> dict[str, Any]:
        return wiring.dependencies().exports.of(name).subusers.run(_job(name, day)).summary()

    summaries = at_once([partial(export, name) for name in names])

    answers = dict(zip(names, summaries, strict=True))
    assert {answers[name]["status"] for name in answers} == {"exported"}
    assert sources.sleeps == []  # neither waited on the other's lease
    assert user_ids(sources, day, "global") == truth(day, GLOBAL)
    assert user_ids(sources, day, "brand-b") == truth(day, BRAND_B)
    scored = [r for r in expected_records(day, BRAND_B) if "score" in r]
    assert answers["brand-b"]["latest_written"] == len(scored)


def test_two_sources_returning_the_same_user_id_keep_one_item_and_both_lines(
    sources: Stack, eu_simulator: SimulatorProcess
) -> None:
    day, older = days_ago(1), days_ago(2)
    # the EU host answers for the first subusers of the global account too (same ids)
    eu_simulator.reset(Scenario(subusers=10, first_user_id=GLOBAL.first_user_id))

    sources.invoke({"date": day, "source": "eu"})
    sources.invoke({"date": day, "source": "global"})
    sources.invoke({"date": older, "source": "eu"})

    shared = truth(day, GLOBAL)[0]
    assert shared in user_ids(sources, day, "eu")
    assert shared in user_ids(sources, day, "global")
    item = sources.item(shared)
    assert item is not None
    assert (item["date"], item["source"]) == (day, "global")  # the last write of the newest day


# -- backfill ------------------------------------------------------------------------------------


def test_a_backfill_of_one_source_queues_only_that_source(sources: Stack) -> None:
    first, last = days_ago(3), days_ago(2)

    answer = sources.invoke({"from": first, "to": last, "source": "eu"})
    drain(sources)

    assert answer["enqueued"] == [
        {"source": "eu", "kind": SUBUSERS, "date": first},
        {"source": "eu", "kind": SUBUSERS, "date": last},
    ]
    assert sorted(sources.data_keys()) == sorted([sources.key(first, "eu"), sources.key(last, "eu")])


def test_a_backfill_of_every_source_repeated_adds_no_work(
    sources: Stack, global_host: SimulatorProcess, eu_simulator: SimulatorProcess
) -> None:
    day = days_ago(2)

    answer = sources.invoke({"from": day, "to": day})
    drain(sources)
    requests = len(global_host.requests) + len(eu_simulator.requests)
    again = sources.invoke({"from": day, "to": day})

    enqueued = {(job["source"], job["kind"]) for job in answer["enqueued"]}
    assert enqueued == {
        ("global", SUBUSERS),
        ("global", ACCOUNT),
        ("brand-b", SUBUSERS),
        ("brand-b", ACCOUNT),
        ("eu", SUBUSERS),
    }
    assert again["enqueued"] == []
    assert len(again["skipped_already_exported"]) == len(enqueued)
    assert drain(sources) == []
    assert len(global_host.requests) + len(eu_simulator.requests) == requests


def test_an_unknown_source_in_an_event_is_refused_naming_the_configured_ones(
    sources: Stack, global_host: SimulatorProcess
) -> None:
    with pytest.raises(Exception, match="unknown source 'apac'; the configured sources are global, brand-b, eu"):
        sources.invoke({"date": days_ago(1), "source": "apac"})

    assert sources.object_keys() == []
    assert global_host.requests == []


# -- configuration -------------------------------------------------------------------------------


def test_a_malformed_seq_sources_fails_at_start_before_anything_is_fetched_or_written(stack: Stack) -> None:
    bad = json.dumps([{"name": "global", "base_url": stack.simulator.url, "secret_id": "s"}, {"name": "EU"}])
    stack.monkeypatch.setenv(Env.SEQ_SOURCES, bad)
    wiring.use_dependencies(None)  # a fresh container reads its environment

    with pytest.raises(ConfigError, match=r"^SEQ_SOURCES item 2: 'base_url' is required"):
        stack.invoke({"date": days_ago(1)})

    assert stack.simulator.requests == []
    assert boto3.session.Session().client("s3").list_objects_v2(Bucket=stack.resources.bucket).get("KeyCount") == 0


def _job(source: str, day: str) -> Job:
    return Job(JobId(source, SUBUSERS, day), attempt=1)


def test_a_retried_scheduled_run_queues_the_same_jobs_and_each_runs_once(
    sources: Stack, global_host: SimulatorProcess, eu_simulator: SimulatorProcess
) -> None:
    scheduled = {"scheduled_time": f"{days_ago(0)}T06:00:00Z"}

    sources.invoke(scheduled)
    sources.invoke(scheduled)  # Lambda retries a scheduled invocation that failed
    drain(sources)

    eu_pages = [r for r in eu_simulator.requests if r["status"] == 200]
    assert len(eu_pages) == 1  # 250 subusers: one page, fetched once
    brand_b = [r for r in global_host.requests if r["account"] == "brand-b"]
    assert len(brand_b) == 2  # its subusers' page and its account's day, once each
    assert sources.metrics["RecordsExported"] == 2 * GLOBAL.subusers + BRAND_B.subusers + EU.subusers
