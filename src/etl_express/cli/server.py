"""``etl-express server status|stop``: the embedded PostgreSQL server."""

from __future__ import annotations

import json

import typer

from . import app
from ._output import ErrorStyleGroup, say

server_app = typer.Typer(
    cls=ErrorStyleGroup,
    help="The embedded PostgreSQL server (used when ETL_EXPRESS_DATABASE_URL is not set). "
    "It starts on first use and keeps running after the process exits, so the next run "
    "finds it; stop it here.",
    no_args_is_help=True,
)
app.add_typer(server_app, name="server")


@server_app.command("status")
def status(
    as_json: bool = typer.Option(False, "--json", help="Print the status as a JSON object."),
) -> None:
    """Show whether the embedded server runs (pid, port, data folder); exit 0 when it runs,
    3 when it does not. Never starts it."""
    from ..store.embedded import server_status

    info = server_status()
    if as_json:
        say(json.dumps(info))
    elif info["running"]:
        say(
            f"embedded PostgreSQL running: pid {info['pid']}, port {info.get('port', '?')}, "
            f"since {info.get('started_at', '?')}, data {info['data_dir']}"
        )
    else:
        say(f"embedded PostgreSQL not running (data {info['data_dir']})")
    raise typer.Exit(0 if info["running"] else 3)


@server_app.command("stop")
def stop(
    timeout: float = typer.Option(30.0, "--timeout", min=1, help="Seconds to wait for it."),
) -> None:
    """Stop the embedded server (fast shutdown: committed work is kept; the next use of the
    library starts it again)."""
    from ..store.embedded import data_dir, stop_server

    if stop_server(timeout):
        say(f"embedded PostgreSQL stopped (data {data_dir()})")
    else:
        say(f"embedded PostgreSQL was not running (data {data_dir()})")
