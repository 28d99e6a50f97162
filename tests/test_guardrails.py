"""The maintainer's guardrails: ``.ci/run`` lints, checks formatting and types before the tests
(and those checks fail on a planted error), pre-commit runs the same commands, the changelog
keeps its form and the version is written once."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import etl_express

ROOT = Path(__file__).resolve().parents[1]
CI_RUN = ROOT / ".ci" / "run"
GUARDS = (
    "python3 -m ruff check .",
    "python3 -m ruff format --check .",
    "python3 -m mypy src",
)


def ci_commands() -> list[str]:
    lines = CI_RUN.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_ci_runs_lint_format_and_types_before_the_tests() -> None:
    commands = ci_commands()
    assert "set -euo pipefail" in commands  # a failing check stops the run
    tests = next(i for i, c in enumerate(commands) if "pytest" in c)
    for guard in GUARDS:
        assert guard in commands, guard
        assert commands.index(guard) < tests, f"{guard} must run before the tests"


def test_pre_commit_runs_the_same_checks_as_ci() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    entries = [hook["entry"] for repo in config["repos"] for hook in repo["hooks"]]
    assert entries == list(GUARDS)


def test_guard_tools_are_in_the_dev_extra() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    dev = pyproject.split("dev = [", 1)[1].split("]\n", 1)[0]
    assert '"ruff' in dev and '"mypy' in dev


def test_the_tree_is_lint_clean_and_formatted() -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


@pytest.mark.parametrize(
    ("command", "source"),
    [
        (["ruff", "check", "."], "import os\n"),  # unused import
        (["ruff", "format", "--check", "."], "x = {  'a':1}\n"),
        (["mypy", "src"], "def untyped(x):\n    return x\n"),  # disallow_untyped_defs
        (["mypy", "src"], "def f() -> int:\n    return 'text'\n"),
    ],
)
def test_each_guard_fails_on_a_planted_error(
    tmp_path: Path, command: list[str], source: str
) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "planted.py").write_text(source)
    proc = subprocess.run(
        [sys.executable, "-m", *command], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode != 0, proc.stdout
    assert "planted.py" in proc.stdout + proc.stderr


def test_changelog_keeps_a_changelog_form() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "keepachangelog.com" in text
    sections = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.MULTILINE)
    assert sections[0] == ("Unreleased", ""), "the newest section is Unreleased"
    released = [name for name, date in sections[1:]]
    assert all(date for _, date in sections[1:]), "every release has its date"
    assert etl_express.__version__ in released or etl_express.__version__ == released[0]
    for kind in re.findall(r"^### (.+)$", text, re.MULTILINE):
        assert kind in {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, kind
    for name, _ in sections:  # every section heading links somewhere
        assert re.search(rf"^\[{re.escape(name)}\]: https://", text, re.MULTILINE), name


def test_version_is_written_once() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = { attr = "etl_express.__version__" }' in pyproject
    assert not re.search(r'^version\s*=\s*"', pyproject, re.MULTILINE)
    written = [
        path
        for path in (ROOT / "src").rglob("*.py")
        if re.search(r"^__version__\s*=", path.read_text(), re.MULTILINE)
    ]
    assert written == [ROOT / "src" / "etl_express" / "__init__.py"]
    proc = subprocess.run(
        [sys.executable, "-m", "etl_express.cli", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"etl-express {etl_express.__version__} ")
