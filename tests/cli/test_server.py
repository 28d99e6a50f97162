"""``etl-express server status|stop`` against a real embedded PostgreSQL in its own folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etl_express.cli import _register, app

_register()


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # the server runs as another user when we are root: its folder must be reachable
    path = Path(tempfile.mkdtemp(prefix="etl-server-", dir="/tmp"))
    path.chmod(0o755)
    monkeypatch.setenv("ETL_EXPRESS_HOME", str(path))
    yield path
    CliRunner().invoke(app, ["server", "stop"])
    shutil.rmtree(path, ignore_errors=True)


def _status() -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["server", "status", "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_status_and_stop_of_the_embedded_server(home: Path) -> None:
    code, info = _status()
    assert code == 3 and info["running"] is False
    assert info["data_dir"] == str(home / "pgdata")
    started = subprocess.run(
        [sys.executable, "-c", "from etl_express.store.embedded import embedded_url as u; u()"],
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    code, info = _status()  # the server outlived the process that started it
    assert code == 0 and info["running"] is True and info["pid"] > 0
    os.kill(info["pid"], 0)
    human = CliRunner().invoke(app, ["server", "status"])
    assert f"running: pid {info['pid']}" in human.stdout
    stopped = CliRunner().invoke(app, ["server", "stop"])
    assert stopped.exit_code == 0 and "stopped" in stopped.stdout
    code, info = _status()
    assert code == 3 and info["running"] is False
    again = CliRunner().invoke(app, ["server", "stop"])
    assert again.exit_code == 0 and "was not running" in again.stdout
