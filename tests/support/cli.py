"""The ``seq-export`` command line run in process, as unit and integration tests call it, and the lake
as the commands see it: keys and lines of a source's day (``layout``'s keys), several sources;
``deploy``: the local stack as the CLI sees a deployed one."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from seq_export import record_codec
from seq_export.layout import DEFAULT_SOURCE, day_key
from seq_export.models import ACCOUNT, SUBUSERS
from seq_export_cli import app as app_module
from seq_export_cli.app import OUTPUT_NAMES, App
from seq_export_cli.main import main
from seq_export_cli.options import Options

if TYPE_CHECKING:
    from tests.support.stack import Stack


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``seq-export ARGV``."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """``seq-export ARGV --json``: the exit code, the parsed document and stderr."""
    code, out, err = cli(capsys, *argv, "--json")
    return code, json.loads(out), err


def only_entry(document: dict[str, Any]) -> dict[str, Any]:
    """The one entry of a ``run`` or ``status`` answer of one source and one kind:
    ``{"date", "sources": [{"source", "kinds": [ENTRY]}]}``."""
    (source,) = document["sources"]
    (entry,) = source["kinds"]
    return dict(entry)


def days_with(document: dict[str, Any], outcome: str) -> list[dict[str, Any]]:
    """The days of a ``backfill`` answer's ``by_day`` with ``outcome`` (``enqueued``, ``already
    exported``, ``already queued``), each as the function names it: source, kind, date (and the
    run holding a day already queued)."""
    return [
        {name: value for name, value in row.items() if name != "outcome"}
        for row in document["by_day"]
        if row["outcome"] == outcome
    ]


def object_key(stack: Stack, day: str, *, source: str = DEFAULT_SOURCE, kind: str = SUBUSERS) -> str:
    """The key of ``source``'s ``kind`` of ``day`` in the stack's lake."""
    settings = stack.settings
    prefix = settings.account_scores_prefix if kind == ACCOUNT else settings.scores_prefix
    return day_key(prefix, source, day)


def object_body(stack: Stack, key: str) -> bytes:
    s3 = stack.session.client("s3")
    return bytes(s3.get_object(Bucket=stack.resources.bucket, Key=key)["Body"].read())


def day_lines(stack: Stack, day: str, *, source: str = DEFAULT_SOURCE, kind: str = SUBUSERS) -> list[dict[str, Any]]:
    """The lines of ``source``'s ``kind`` of ``day``, numbers exact."""
    body = object_body(stack, object_key(stack, day, source=source, kind=kind))
    return record_codec.decode(body)


def scored(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines of subusers with a score (an ineligible subuser's line has none)."""
    return [line for line in lines if line["score"] is not None]


#: The sources of the integration fixture ``two_sources``, in their configured order.
TWO_SOURCE_NAMES = ("global", "eu")


def configure_sources(stack: Stack, *names: str) -> None:
    """Configure the stack with sources ``names``, each at the simulator with the one API key."""
    sources = [
        {"name": name, "base_url": stack.simulator.url, "secret_id": stack.resources.secret_id} for name in names
    ]
    stack.configure(SEQ_SOURCES=json.dumps(sources))


def deploy_function(stack: Stack, sources: list[str], name: str = "seq-export-fn") -> str:
    """A Lambda function ``name`` on moto configured with ``sources`` (SEQ_SOURCES, in order),
    as the CLI reads a deployed function's configuration (it is never invoked). Returns ``name``."""
    session = stack.session
    role = session.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    configured = [
        {"name": source, "base_url": "https://api.sendgrid.com", "secret_id": f"{source}-key"} for source in sources
    ]
    session.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role,
        Handler="seq_export.handler.lambda_handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},  # an empty zip: moto stores it, nothing runs it
        Environment={"Variables": {"SEQ_SOURCES": json.dumps(configured)}},
    )
    return name


def deploy_outputs(stack: Stack, name: str, outputs: dict[str, str]) -> None:
    """A CloudFormation stack ``name`` on moto with these outputs (by output name), as the
    template's name the resources."""
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-marker"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    stack.session.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


def deploy(stack: Stack, name: str = "seq-export-deployed") -> str:
    """The local stack as ``--stack NAME`` sees a deployed one: a CloudFormation stack ``name``
    with its outputs; Lambda Invoke runs the handler in this process (the deployed function),
    and while a command sleeps between two polls of ``--wait`` the retry queue is delivered (the
    function's SQS event source; failed records come back at once, each receive counting
    towards ``maxReceiveCount``). Returns ``name``."""
    resources = stack.resources
    outputs = {
        "bucket": resources.bucket,
        "prefix": stack.settings.scores_prefix,
        "account_prefix": stack.settings.account_scores_prefix,
        "table": resources.table,
        "queue_url": resources.queue_url,
        "dlq_url": resources.dlq_url,
        "function_name": f"{name}-function",
        "sources": ",".join(stack.settings.source_names),
    }
    deploy_outputs(stack, name, {OUTPUT_NAMES[field]: value for field, value in outputs.items()})

    def event_source(seconds: float) -> None:
        stack.deliver(wait_seconds=max(1, min(int(seconds), 5)), retry_failed_at_once=True)

    class DeployedApp(App):
        def __init__(self, options: Options) -> None:
            super().__init__(options, sleep=event_source)

        def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
            return stack.invoke(event)

    stack.monkeypatch.setattr(app_module, "App", DeployedApp)  # what ``with_app`` builds for each command
    return name
