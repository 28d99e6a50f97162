"""A local, read-only web dashboard over the store (extra ``ui``): ``etl-express ui``.

Pages: ``/`` (pipelines with freshness badges), ``/pipelines/<name>`` (run history with rows,
rows/s and duration charts, quality checks over time, schema changes), ``/runs/<run_id>``
(partitions, checks, log lines) and ``/quarantine`` (anonymized records, reasons and the
replay command). It binds to 127.0.0.1 by default; bound to any other address it refuses to
start without a token (``ETL_EXPRESS_UI_TOKEN``, resolved through :func:`etl_express.secret`)
and then answers only requests carrying ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..errors import ETLConfigError

TOKEN_SECRET = "ETL_EXPRESS_UI_TOKEN"  # the secret's name, not a value  # pragma: allowlist secret
MIN_TOKEN_LENGTH = 16
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765


def is_loopback(host: str) -> bool:
    """``host`` is only reachable from this machine (127.0.0.0/8, ::1, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def ui_token(required: bool) -> str | None:
    """The dashboard token from the secret chain; ``None`` when unset and not ``required``."""
    from ..secrets import reveal, secret

    try:
        token = reveal(secret(TOKEN_SECRET))
    except ETLConfigError:
        if not required:
            return None
        raise ETLConfigError(
            f"the dashboard is bound beyond this machine but no {TOKEN_SECRET} is set",
            hint=f"set the secret {TOKEN_SECRET} (at least {MIN_TOKEN_LENGTH} characters, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), or bind to "
            "127.0.0.1 and reach it through an SSH tunnel",
        ) from None
    if not token or len(token) < MIN_TOKEN_LENGTH:
        raise ETLConfigError(
            f"{TOKEN_SECRET} is shorter than {MIN_TOKEN_LENGTH} characters",
            hint="use a long random token, e.g. secrets.token_urlsafe(32)",
        )
    return token


def build(url: Any = None, host: str = DEFAULT_HOST) -> Any:
    """The dashboard application for the store at ``url``, guarded as ``host`` requires."""
    try:
        import jinja2  # noqa: F401
        import uvicorn  # noqa: F401

        from .app import create_app
    except ImportError as exc:
        raise ETLConfigError(
            f"the dashboard needs the ui extra ({exc.name} is missing)",
            hint='pip install "etl-express[ui]"',
        ) from None
    from ..store.checkpoints import open_store

    local = is_loopback(host)
    token = ui_token(required=not local)
    engine = open_store(url, create=False).engine
    return create_app(engine, token, local_only=local)


def serve(url: Any = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the dashboard until interrupted (see :func:`build` for the checks made first)."""
    import uvicorn

    app = build(url, host)
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="off", ws="none")


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "TOKEN_SECRET", "build", "is_loopback", "serve"]
