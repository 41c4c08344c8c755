"""The Lambda's CodeUri holds what Lambda runs and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "functions" / "seq_export"


def test_every_module_of_the_function_package_is_imported_by_the_handler() -> None:
    # a fresh interpreter, as Lambda starts one: what the handler imports, nothing more
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys; import seq_export.handler; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('seq_export'))))",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT / "functions",
        timeout=120,
    )
    imported = set(json.loads(loaded.stdout.splitlines()[-1]))

    shipped = {f"seq_export.{path.stem}" for path in PACKAGE.glob("*.py") if path.stem != "__init__"}

    assert shipped - imported == set()


def test_no_operator_tooling_ships_in_the_function_package() -> None:
    tooling = ("argparse", "click", "typer", "rich", "local", "seq_export_cli", "bench", "tests")
    offenders = [
        f"{path.name}: {line.strip()}"
        for path in PACKAGE.glob("*.py")
        for line in path.read_text().splitlines()
        if line.startswith(("import ", "from ")) and line.split()[1].split(".")[0] in tooling
    ]

    assert offenders == []
