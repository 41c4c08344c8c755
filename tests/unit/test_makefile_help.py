"""`make help` lists every target of the Makefile with one line each, and `make` alone shows it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make") or "make"
TARGET = re.compile(r"^([a-z][a-z-]*):(?!=)", re.MULTILINE)


def make(*args: str) -> str:
    # a make above pytest (make test) must not turn this one into a sub-make that names directories
    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(  # noqa: S603 - make, on our own Makefile
        [MAKE, "--no-print-directory", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=60
    ).stdout


def test_make_help_lists_every_target_with_a_description() -> None:
    targets = set(TARGET.findall((ROOT / "Makefile").read_text()))

    listed = dict(line.split(maxsplit=1) for line in make("help").splitlines() if line.startswith("  "))

    assert targets >= {"help", "run", "test", "template-check", "bench"}
    assert targets == set(listed)
    assert all(description.strip() for description in listed.values())


def test_make_alone_prints_the_help() -> None:
    assert make() == make("help")
