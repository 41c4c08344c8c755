"""Unit fixtures of the command line: ``fake_aws`` (every ``App`` a command builds gets recording
fakes of the clients, ``tests/support/cli_fakes.py``), ``two_sources`` (the same, with two
sources in ``SEQ_SOURCES``) and ``aws_unreachable`` (any AWS call would fail loudly); and, for
every unit test, stdout and stderr as pipes whatever the environment says.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from botocore.config import Config

import seq_export_cli.app as app_module
import seq_export_cli.backfill as backfill_module
import seq_export_cli.run as run_module
from seq_export_cli.app import AWS_CONFIG, App
from seq_export_cli.options import Options
from tests.support.cli_fakes import (
    FULL_OUTPUTS,
    TARGET_ENV,
    TWO_SOURCES,
    FakeAws,
    FakeCloudFormation,
    FakeDeadLetters,
    FakeS3,
)
from tests.support.template import FUNCTION, load_template


@pytest.fixture(autouse=True)
def _piped(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdout and stderr are pipes (capsys) whatever the environment says about colour or terminals."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> FakeAws:
    """Every ``App`` a command builds gets ``FakeAws``'s clients, environment and clock."""
    aws = FakeAws()
    aws.clients["cloudformation"] = FakeCloudFormation(FULL_OUTPUTS)
    aws.clients["s3"] = FakeS3(aws.clock)
    aws.clients["sqs"] = FakeDeadLetters(aws.clock)

    class FakeApp(App):
        def __init__(self, options: Options) -> None:
            super().__init__(options, environ=aws.environ, sleep=aws.clock.sleep, clock=aws.clock)
            aws.options.append(options)

        def client(self, service: str, config: Config = AWS_CONFIG) -> Any:
            aws.asked.append(service)
            return aws.clients[service]

    monkeypatch.setattr(app_module, "App", FakeApp)  # what ``with_app`` builds for each command
    return aws


@pytest.fixture
def two_sources(fake_aws: FakeAws) -> FakeAws:
    """``fake_aws`` with the two sources of ``TWO_SOURCES`` in the environment."""
    fake_aws.environ["SEQ_SOURCES"] = TWO_SOURCES
    return fake_aws


@pytest.fixture
def aws_unreachable(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A complete target in the environment, no credentials and a closed endpoint, so any AWS
    call would fail (exit 3 or 4, never 2); every client asked for or local handler run is recorded."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    for name, value in TARGET_ENV.items():
        monkeypatch.setenv(name, value)
    attempts: list[str] = []
    real_client = App.client

    def recorded_client(self: App, service: str, config: Config = AWS_CONFIG) -> Any:
        attempts.append(service)
        return real_client(self, service, config)

    def no_local_handler(event: dict[str, Any], **_: Any) -> dict[str, Any]:
        attempts.append(f"local handler {event}")
        raise AssertionError("the handler ran before the usage check")

    monkeypatch.setattr(App, "client", recorded_client)
    monkeypatch.setattr(run_module, "invoke_local", no_local_handler)
    monkeypatch.setattr(backfill_module, "invoke_local", no_local_handler)
    return attempts


# -- template.yaml (tests/support/template.py) --------------------------------------------------
@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], template["Resources"])


@pytest.fixture(scope="module")
def function(resources: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], resources[FUNCTION]["Properties"])


@pytest.fixture(scope="module")
def env(function: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], function["Environment"]["Variables"])
