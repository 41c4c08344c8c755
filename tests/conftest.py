"""Fixtures for every test: fake AWS credentials, clean Powertools state, the function's log lines.

The integration fixtures (moto server, simulator, the local stack) are in tests/integration/conftest.py;
the stack's handle, fakes and builders in the tests/support/ package."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator

import pytest
from aws_lambda_powertools.utilities import parameters

from local.stack import AWS_TEST_ENV
from seq_export import wiring
from seq_export.observability import logger, metrics

# Unit tests must never reach real AWS by accident: fake credentials, no endpoint.
for _key, _value in AWS_TEST_ENV.items():
    os.environ.setdefault(_key, _value)


@pytest.fixture(autouse=True)
def _clean_powertools() -> Iterator[None]:
    metrics.clear_metrics()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    yield
    metrics.clear_metrics()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    wiring.use_dependencies(None)


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Every line the function logs, formatted exactly as Lambda would ship it (JSON)."""
    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(logger.registered_formatter)
    target = logging.getLogger(logger.name)
    target.addHandler(capture)
    yield stream
    target.removeHandler(capture)
