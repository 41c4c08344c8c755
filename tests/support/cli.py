"""The ``seq-export`` command line run in process, as integration tests call it, and the lake
as the commands see it: keys and lines of a source's day (``layout``'s keys), several sources."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from seq_export.layout import DEFAULT_SOURCE, day_key
from seq_export.models import ACCOUNT, SUBUSERS
from seq_export_cli.main import main

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
    return [json.loads(line, parse_float=Decimal) for line in body.decode().splitlines()]


def configure_sources(stack: Stack, *names: str) -> None:
    """Configure the stack with sources ``names``, each at the simulator with the one API key."""
    sources = [
        {"name": name, "base_url": stack.simulator.url, "secret_id": stack.resources.secret_id} for name in names
    ]
    stack.configure(SEQ_SOURCES=json.dumps(sources))
