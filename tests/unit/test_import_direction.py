"""Dependencies run one way: the local stack, the benchmark and the tests use the CLI and the
function; the CLI uses the function; neither package reaches back. An operator's `pip install .`
carries no `local/`, so a CLI module that imported it, even inside a function, would fail there
and only there. Read from the source (every import statement, at any depth, and
``importlib.import_module``/``__import__`` of a literal name), so no code path has to run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Each installed package, and the top-level packages it must never import.
NEVER_IMPORTED = {
    ROOT / "seq_export_cli": ("local", "bench", "tests"),
    ROOT / "functions" / "seq_export": ("local", "bench", "tests", "seq_export_cli"),
}


def imported_names(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import in ``tree``: statements anywhere, and dynamic imports of a
    literal name."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in {"import_module", "__import__"} and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def reaching_back(package: Path, forbidden: tuple[str, ...]) -> list[str]:
    """``file:line imports module`` for each import of ``package`` into one of ``forbidden``."""
    return [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted(package.rglob("*.py"))
        for line, module in imported_names(ast.parse(path.read_text(), filename=str(path)))
        if module.partition(".")[0] in forbidden
    ]


def test_the_scan_finds_an_import_of_local_inside_a_function_and_a_dynamic_one() -> None:
    source = (
        "import json\n"
        "def later():\n"
        "    from local.stack import AWS_TEST_ENV\n"
        "    import local.run as runner\n"
        "    return importlib.import_module('local.report')\n"
    )

    modules = [module for _, module in imported_names(ast.parse(source))]

    assert modules == ["json", "local.stack", "local.run", "local.report"]


@pytest.mark.parametrize("package", list(NEVER_IMPORTED), ids=lambda path: path.name)
def test_an_installed_package_never_imports_the_local_stack_the_bench_the_tests_or_a_package_above_it(
    package: Path,
) -> None:
    assert list(package.glob("*.py"))  # the package is where this test looks

    assert reaching_back(package, NEVER_IMPORTED[package]) == []
