"""Integration fixtures: one moto server and one SEQ simulator per session, fresh state per test;
and the days and sources the CLI's tests read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.metrics.provider import cold_start

from local.seq_simulator import Scenario, SeqSimulator
from local.stack import AWS_TEST_ENV, create_resources, new_api_key, reset_moto, start_moto
from seq_export.config import Settings
from tests.support import Stack, days_ago
from tests.support.cli import TWO_SOURCE_NAMES, configure_sources, day_lines


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server, endpoint = start_moto()
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def api_key() -> str:
    return new_api_key()


@pytest.fixture(scope="session")
def simulator(api_key: str) -> Iterator[SeqSimulator]:
    with SeqSimulator(api_key) as sim:
        yield sim


@pytest.fixture
def stack(moto_endpoint: str, simulator: SeqSimulator, api_key: str, monkeypatch: pytest.MonkeyPatch) -> Stack:
    # Every test's container is warm, so its metrics are its own; a test of the cold start sets it.
    monkeypatch.setattr(cold_start, "is_cold_start", False)
    reset_moto(moto_endpoint)
    simulator.reset(Scenario(subusers=2_500))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    for key, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    session = boto3.session.Session()
    resources = create_resources(session, api_key)
    for key, value in resources.env(simulator.url, NOT_READY_DELAY_SECONDS="1", MAX_NOT_READY_ATTEMPTS="3").items():
        monkeypatch.setenv(key, value)
    stack = Stack(
        resources=resources,
        simulator=simulator,
        session=session,
        settings=Settings.from_env(),
        monkeypatch=monkeypatch,
    )
    stack.configure()
    return stack


# -- the CLI's days --------------------------------------------------------------------------
@pytest.fixture
def exported_day(stack: Stack) -> list[dict[str, Any]]:
    """One exported day of 40 subusers with fractional scores; its lines."""
    stack.simulator.reset(Scenario(subusers=40, fractional=True))
    day = days_ago(1)
    assert stack.invoke({"date": day})["status"] == "exported"
    return day_lines(stack, day)


@pytest.fixture
def two_sources(stack: Stack) -> Stack:
    """The stack configured with the sources ``global`` and ``eu`` (``TWO_SOURCE_NAMES``), SEQ_SOURCES
    in the CLI's environment too; 12 subusers with fractional scores."""
    configure_sources(stack, *TWO_SOURCE_NAMES)
    stack.simulator.reset(Scenario(subusers=12, fractional=True))
    return stack


@pytest.fixture
def eu_day(two_sources: Stack) -> list[dict[str, Any]]:
    """eu's exported day: its latest scores carry eu."""
    day = days_ago(1)
    assert two_sources.invoke({"date": day, "source": "eu"})["status"] == "exported"
    return day_lines(two_sources, day, source="eu")
