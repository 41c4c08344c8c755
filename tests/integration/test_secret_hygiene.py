"""The API key never leaves the Authorization header: not in logs, errors, summaries, SQS, S3 or DynamoDB."""

from __future__ import annotations

import io
import json

import pytest

from local.seq_simulator import Fault, Scenario
from seq_export.errors import SeqExportError
from tests.support import Stack, days_ago, invoke_short

pytestmark = pytest.mark.integration

SCENARIOS = [
    Scenario(subusers=1_500),
    Scenario(subusers=1_500, not_ready=1),
    Scenario(subusers=1_500, faults=[Fault(page=2, status=429), Fault(page=2, status=500)]),
    Scenario(subusers=1_500, faults=[Fault(page=2, status=429, rate_headers=False)]),
    Scenario(subusers=1_500, faults=[Fault(page=2, status=502, times=9)]),
    Scenario(subusers=1_500, faults=[Fault(page=1, status=403)]),
    Scenario(subusers=1_500, faults=[Fault(page=1, status=404)]),
    Scenario(subusers=1_500, faults=[Fault(page=2, kind="reset"), Fault(page=2, kind="truncate")]),
    Scenario(subusers=1_500, faults=[Fault(page=2, status=200, body="not json")]),
    Scenario(subusers=1_500, faults=[Fault(page=2, kind="stuck_cursor")]),
    Scenario(subusers=1_500, faults=[Fault(page=2, kind="repeat_users")]),
]


def everything_stored(stack: Stack) -> list[str]:
    """Every object, message and item the function could have written anything into."""
    s3 = stack.session.client("s3")
    texts = [
        s3.get_object(Bucket=stack.resources.bucket, Key=key)["Body"].read().decode("utf-8", "replace")
        for key in stack.object_keys()
    ]
    for queue in (stack.resources.queue_url, stack.resources.dlq_url):
        answer = stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0)
        texts += [m["Body"] for m in answer.get("Messages", [])]
    dynamodb = stack.session.client("dynamodb")
    for table in (stack.resources.table, stack.resources.idempotency_table):
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            texts += [json.dumps(item) for item in page["Items"]]
    return texts


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
    stack.simulator.reset(Scenario(subusers=2_500))
    seen.append(json.dumps(invoke_short(stack, {"date": days_ago(2)}, pages=1)))  # a continuation message
    stack.session.client("secretsmanager").put_secret_value(  # and with the wrong key stored
        SecretId=stack.resources.secret_id, SecretString=json.dumps({"api_key": "SG.wrong"})
    )
    stack.configure()
    with pytest.raises(SeqExportError) as caught:
        stack.invoke({"date": days_ago(1)})
    seen.append(str(caught.value))

    stored = everything_stored(stack)
    logs = log_output.getvalue()
    printed = capsys.readouterr()
    seen += [*stored, logs, printed.out, printed.err]

    assert "Page fetched" in logs  # the capture really saw the logs
    assert "Bad answer kept aside" in logs
    assert any('"checkpoint"' in text for text in stored)  # the continuation was looked at
    assert any('"reason": "not_ready"' in text for text in stored)  # and the 202 retry message
    for text in seen:
        assert api_key not in text
        assert api_key.rsplit(".", maxsplit=1)[-1] not in text
        assert "Bearer" not in text
