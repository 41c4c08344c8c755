"""What a release carries, held together: one version everywhere, and files that name no tracker numbers.

The version's one home is ``seq_export.__version__`` (the Lambda zip has no package metadata);
pyproject.toml reads it, and the CLI, the changelog and the template's SAR metadata must show it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

import seq_export
from seq_export import __version__
from tests.support.cli import cli
from tests.support.template import load_template

ROOT = Path(__file__).resolve().parents[2]
CHANGELOG = ROOT / "CHANGELOG.md"
#: A release heading of Keep a Changelog: ``## [0.2.0] - 2026-12-02`` or ``## [Unreleased]``.
RELEASE_HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?\s*$", re.MULTILINE)
SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
#: A reference to a tracker item (the word, then a number, maybe after "#"): files speak of the product.
ISSUE_NUMBER = re.compile(r"issue\s*#?\d+", re.IGNORECASE)


def released(changelog: str) -> list[tuple[str, str | None]]:
    """The changelog's releases, newest first, as (version, date); ``Unreleased`` left out."""
    return [(m["version"], m["date"]) for m in RELEASE_HEADING.finditer(changelog) if m["version"] != "Unreleased"]


def semver(version: str) -> tuple[int, ...]:
    """``"0.2.0"`` as ``(0, 2, 0)``, for ordering; anything else fails the test that asked."""
    match = SEMVER.match(version)
    assert match, f"{version!r} is not MAJOR.MINOR.PATCH"
    return tuple(int(part) for part in match.groups())


def sar_metadata() -> dict[str, Any]:
    metadata: dict[str, Any] = load_template()["Metadata"]["AWS::ServerlessRepo::Application"]
    return metadata


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as stream:
        return tomllib.load(stream)


def naming_issue_numbers(paths: Iterable[Path]) -> list[str]:
    """``path:line: text`` for each line that names a tracker item; binary files are skipped."""
    found = []
    for path in paths:
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        found += [
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{number}: {line.strip()}"
            for number, line in enumerate(text.splitlines(), start=1)
            if ISSUE_NUMBER.search(line)
        ]
    return found


def project_files() -> list[Path]:
    """Tracked files and new ones not ignored yet, as they are in the working tree."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no list of tracked files")
    listed = subprocess.run(  # noqa: S603 - git with fixed arguments
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout.decode("utf-8")
    return [ROOT / name for name in sorted(set(listed.split("\0"))) if name and (ROOT / name).is_file()]


# -- one version --------------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_the_cli_prints_the_package_version(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, flag)

    assert code == 0
    assert out == f"seq-export {__version__}\n"
    assert err == ""


def test_the_version_is_semantic() -> None:
    assert len(semver(__version__)) == 3


def test_pyproject_reads_its_version_from_the_function_package() -> None:
    project = pyproject()
    setuptools = project["tool"]["setuptools"]

    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert setuptools["dynamic"]["version"] == {"attr": "seq_export.__version__"}
    package_dir = ROOT / setuptools["package-dir"]["seq_export"]
    assert Path(seq_export.__file__) == package_dir / "__init__.py"  # the module pyproject reads is the one imported


def test_the_changelogs_newest_release_is_the_package_version() -> None:
    releases = released(CHANGELOG.read_text(encoding="utf-8"))

    assert releases, "CHANGELOG.md has no release heading"
    assert releases[0][0] == __version__


def test_every_changelog_release_is_dated_and_older_ones_come_after() -> None:
    releases = released(CHANGELOG.read_text(encoding="utf-8"))
    versions = [semver(version) for version, _ in releases]
    dates = [day or "undated" for _, day in releases]

    assert "undated" not in dates
    assert versions == sorted(versions, reverse=True)
    assert len(set(versions)) == len(versions)
    assert dates == sorted(dates, reverse=True)


def test_the_templates_sar_semantic_version_is_the_package_version() -> None:
    assert sar_metadata()["SemanticVersion"] == __version__


def test_the_sar_metadata_points_at_the_licence_and_readme_that_ship() -> None:
    metadata = sar_metadata()

    assert metadata["SpdxLicenseId"] == pyproject()["project"]["license"]
    assert (ROOT / metadata["LicenseUrl"]).is_file()
    assert (ROOT / metadata["ReadmeUrl"]).is_file()
    assert "MIT License" in (ROOT / metadata["LicenseUrl"]).read_text(encoding="utf-8")


# -- no tracker numbers -------------------------------------------------------------------------
def test_no_project_file_names_an_issue_number() -> None:
    assert naming_issue_numbers(project_files()) == []


def test_the_issue_number_check_finds_references_and_skips_binary_files(tmp_path: Path) -> None:
    reference = f"the targets of {'Issue'} #{12} and issue {6}"  # spelt so that this file names none
    text = tmp_path / "notes.md"
    text.write_text(f"# Benchmark\n{reference}\nreputation issues are fine\n")
    binary = tmp_path / "plot.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\0" + reference.encode())

    found = naming_issue_numbers([text, binary])

    assert found == [f"{text}:2: {reference}"]
