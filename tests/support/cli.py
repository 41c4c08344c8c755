"""The ``seq-export`` command line run in process, as integration tests call it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from seq_export_cli.main import main


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
