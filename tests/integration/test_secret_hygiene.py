"""The API key never leaves the Authorization header: not in logs, errors, summaries, SQS or S3."""

from __future__ import annotations

import io
import json

import pytest

from local.seq_simulator import Fault, Scenario
from seq_export.errors import SeqExportError
from tests.conftest import Stack
from tests.integration.test_export_day import days_ago

pytestmark = pytest.mark.integration

SCENARIOS = [
    Scenario(subusers=1_500),
    Scenario(subusers=1_500, not_ready=1),
    Scenario(subusers=1_500, faults=[Fault(page=2, status=429), Fault(page=2, status=500)]),
    Scenario(subusers=1_500, faults=[Fault(page=2, status=502, times=9)]),
    Scenario(subusers=1_500, faults=[Fault(page=1, status=403)]),
    Scenario(subusers=1_500, faults=[Fault(page=2, status=200, body="not json")]),
]


def test_the_api_key_appears_nowhere_the_function_writes(
    stack: Stack, api_key: str, log_output: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str] = []
    for scenario in SCENARIOS:
        stack.simulator.reset(scenario)
        try:
            seen.append(json.dumps(stack.invoke({"date": days_ago(1)})))
        except SeqExportError as exc:
            seen.append(f"{exc!r} {exc}")
    stack.session.client("secretsmanager").put_secret_value(  # and with the wrong key stored
        SecretId=stack.resources.secret_id, SecretString=json.dumps({"api_key": "SG.wrong"})
    )
    stack.configure()
    with pytest.raises(SeqExportError) as caught:
        stack.invoke({"date": days_ago(1)})
    seen.append(str(caught.value))

    messages = stack.sqs.receive_message(QueueUrl=stack.resources.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2)
    seen += [m["Body"] for m in messages.get("Messages", [])]
    seen.append(
        stack.session.client("s3")
        .get_object(Bucket=stack.resources.bucket, Key=stack.key(days_ago(1)))["Body"]
        .read()
        .decode()
    )
    logs = log_output.getvalue()
    printed = capsys.readouterr()
    seen += [logs, printed.out, printed.err]

    assert "Page fetched" in logs  # the capture really saw the logs
    assert "Export failed" in logs
    assert len(messages.get("Messages", [])) == 1  # the not-ready scenario's retry message
    for text in seen:
        assert api_key not in text
        assert api_key.rsplit(".", maxsplit=1)[-1] not in text
        assert "Bearer" not in text
