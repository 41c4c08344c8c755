"""Installs carry what they need and nothing more: `pip install .` is the `seq-export` command
alone, the extra `run` adds the function's runtime and the local stack (`make run`), and `dev`
adds the test and lint tools (`make test`); `python -m local.run` without the local stack says
how to install it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from seq_export_cli.errors import EXIT_CONFIG

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make") or "make"
#: What a clone holds that a build must not see (virtualenvs, build output, caches).
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", ".venv-tools", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", ".aws-sam"
)
#: Packages the local stack, the tests or the tooling bring; none may be needed by `seq-export` alone.
NOT_FOR_THE_CLI = ("local", "werkzeug", "flask", "moto", "requests", "aws_lambda_powertools", "typer", "pytest")
TOOLS = {
    "pytest",
    "hypothesis",
    "ruff",
    "mypy",
    "cfn-lint",
    "duckdb",
    "pyarrow",
    "sqlglot",
    "openapi-schema-validator",
    "boto3-stubs",
    "types-requests",
    "types-pyyaml",
}


def requirement_name(requirement: str) -> str:
    """``moto[server]>=5.1,<6; extra == "run"`` -> ``moto``, normalised as pip compares names."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\s\[<>=!~;(]", requirement, maxsplit=1)[0]).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    return {requirement_name(requirement) for requirement in requirements}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip install .` builds, from a copy of the working tree (a build writes into it)."""
    tree = tmp_path_factory.mktemp("tree") / "seq-export"
    shutil.copytree(ROOT, tree, ignore=NOT_SOURCES)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(  # noqa: S603 - this interpreter's pip, on our own project, no index
        [sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps", "--no-build-isolation", "--no-index", "-w", out],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("seq_export-*.whl")
    return built


@pytest.fixture(scope="module")
def metadata(wheel: Path) -> dict[str, list[str]]:
    """The wheel's METADATA: each field's values (``Requires-Dist`` once per requirement)."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        message = Parser().parsestr(archive.read(name).decode())
    return {key: message.get_all(key) or [] for key in set(message.keys())}


def requires(metadata: dict[str, list[str]], extra: str | None) -> set[str]:
    """The names ``Requires-Dist`` lists without a marker (``extra=None``) or for one extra."""
    chosen = []
    for requirement in metadata["Requires-Dist"]:
        _, _, marker = requirement.partition(";")
        if (extra is None and not marker) or (extra is not None and re.search(rf"extra\s*==\s*\"{extra}\"", marker)):
            chosen.append(requirement)
    return requirement_names(chosen)


# -- what `pip install .` installs ------------------------------------------------------------
def test_the_wheel_holds_the_function_and_cli_packages_and_no_local_stack(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(archive.read(name).decode() for name in names if name.endswith("entry_points.txt"))

    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}

    assert top_level == {"seq_export", "seq_export_cli"}
    assert "seq_export/handler.py" in names
    assert "seq_export_cli/main.py" in names
    assert "seq-export = seq_export_cli.main:main" in entry_points


def test_a_plain_install_requires_what_the_cli_imports_and_nothing_else(metadata: dict[str, list[str]]) -> None:
    assert requires(metadata, None) == {"boto3", "click", "rich"}
    assert "typer" not in requirement_names(metadata["Requires-Dist"])  # not even in an extra


def test_the_run_extra_carries_the_functions_runtime_and_the_local_stack(metadata: dict[str, list[str]]) -> None:
    function_runtime = requirement_names(
        [line for line in (ROOT / "functions" / "requirements.txt").read_text().splitlines() if line[:1].isalpha()]
    )

    run = requires(metadata, "run")

    assert function_runtime <= requires(metadata, None) | run
    assert {"moto", "flask", "flask-cors"} <= run  # moto in server mode
    assert not run & TOOLS
    # moto's extras server, all and proxy bring every service's dependencies, cfn-lint among them
    (moto,) = [r for r in metadata["Requires-Dist"] if requirement_name(r) == "moto" and 'extra == "run"' in r]
    assert not {"server", "all", "proxy"} & set(re.findall(r"[a-z]+", moto.partition("[")[2].partition("]")[0]))


def test_the_dev_extra_is_run_plus_the_test_and_lint_tools(metadata: dict[str, list[str]]) -> None:
    dev = requires(metadata, "dev")

    assert {"run", "dev"} <= set(metadata["Provides-Extra"])
    assert "seq-export" in dev  # seq-export[run]: the dev install is the run install and more
    assert any(re.match(r"seq[-_]export\[run\]", requirement) for requirement in metadata["Requires-Dist"])
    assert {"pytest", "ruff", "mypy", "cfn-lint"} <= dev


def cli_from_the_wheel(
    wheel: Path, tmp_path: Path, args: list[str], *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``seq-export ARGS`` run from the unpacked wheel alone, as a plain ``pip install`` has it.

    -I: no current directory (so no local/ of the checkout), no PYTHONPATH; the wheel first on
    the path; every package the plain install leaves out made unimportable. The first line of
    standard output is the CLI module's file."""
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    script = (
        "import sys; "
        f"sys.path.insert(0, {str(unpacked)!r}); "
        f"sys.modules.update(dict.fromkeys({NOT_FOR_THE_CLI!r})); "
        "import seq_export_cli.main; "
        "print(seq_export_cli.main.__file__); "
        f"sys.exit(seq_export_cli.main.main({args!r}))"
    )
    return subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-I", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_cli_imports_from_the_wheel_without_the_local_stack_or_the_tooling(wheel: Path, tmp_path: Path) -> None:
    result = cli_from_the_wheel(wheel, tmp_path, ["--help"])

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(tmp_path / "site" / "seq_export_cli"))
    assert "Usage: seq-export" in result.stdout


def test_local_mode_from_the_wheel_alone_says_what_it_needs_instead_of_a_traceback(wheel: Path, tmp_path: Path) -> None:
    variables = {"SCORES_BUCKET": "lake", "SCORES_PREFIX": "seq/subuser_scores", "LATEST_TABLE": "latest"}

    result = cli_from_the_wheel(wheel, tmp_path, ["run", "--local"], env={**os.environ, **variables})

    assert result.returncode == EXIT_CONFIG, result.stderr
    assert "Traceback" not in result.stderr
    assert "--local runs the function in this process and needs its runtime" in result.stderr
    assert "make run" in result.stderr


# -- `python -m local.run` without the local stack ----------------------------------------------
def test_local_run_without_the_local_stack_says_how_to_install_it(tmp_path: Path) -> None:
    # a werkzeug that is not there, first on the path, as after `pip install .` (moto[server] brings it)
    stub = tmp_path / "werkzeug"
    stub.mkdir()
    (stub / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'werkzeug'\", name='werkzeug')\n")
    path = os.pathsep.join([str(tmp_path), str(ROOT / "functions"), str(ROOT)])

    result = subprocess.run(
        [sys.executable, "-m", "local.run", "--subusers", "20"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == EXIT_CONFIG
    assert result.stdout == ""  # nothing started
    assert result.stderr.startswith("Error: the local stack needs 'werkzeug', which is not installed")
    assert "`make run`" in result.stderr
    assert "pip install -e '.[run]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1


# -- the Makefile: `make run` installs `run`, the test targets `dev` ------------------------------
def pip_installs(target: str, venv: Path) -> list[str]:
    """What ``make TARGET`` would install into a fresh ``venv``: the extras of its pip lines."""
    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    dry_run = subprocess.run(  # noqa: S603 - make, on our own Makefile, printing only (-n)
        [MAKE, "--no-print-directory", "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return re.findall(r'pip install --quiet -e "\.\[([a-z,]+)\]"', dry_run)


@pytest.mark.parametrize(
    ("target", "extras"),
    [("run", ["run"]), ("install", ["run", "dev"]), ("unit", ["run", "dev"]), ("lint", ["run", "dev"])],
)
def test_make_run_installs_the_run_extra_and_the_test_targets_add_dev(
    tmp_path: Path, target: str, extras: list[str]
) -> None:
    assert pip_installs(target, tmp_path / "fresh-venv") == extras
