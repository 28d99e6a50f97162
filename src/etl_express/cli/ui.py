"""``etl-express ui``: the local web dashboard over the store."""

from __future__ import annotations

import typer

from . import app
from ._output import fail, log_runs, say
from ._pipelines import url_option


@app.command("ui")
def ui_command(
    url: str | None = url_option(),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to bind. Anything but a loopback address requires ETL_EXPRESS_UI_TOKEN.",
    ),
    port: int = typer.Option(8765, "--port", help="Port to listen on."),
) -> None:
    """Serve a read-only web dashboard of the store: pipelines and freshness, run history
    charts, quality checks over time, quarantine and schema changes.

    Bound beyond 127.0.0.1 it refuses to start without the secret ETL_EXPRESS_UI_TOKEN and
    then answers only requests sending 'Authorization: Bearer <token>'.
    """
    from ..errors import ETLError
    from ..ui import build

    log_runs()
    try:
        dashboard = build(url, host)
    except ETLError as exc:
        raise fail(exc, 2) from None
    import uvicorn

    shown = f"[{host}]" if ":" in host else host
    say(f"etl-express dashboard on http://{shown}:{port}/ (read-only; Ctrl+C stops it)")
    uvicorn.run(dashboard, host=host, port=port, log_level="warning", lifespan="off", ws="none")
