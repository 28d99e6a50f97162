"""``etl-express logs purge``: remove log files and log rows past their retention."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app
from ._output import ErrorStyleGroup, say

logs_app = typer.Typer(
    cls=ErrorStyleGroup,
    help="Manage etl-express logs (JSON-lines files and the etl_express.logs table).",
    no_args_is_help=True,
)
app.add_typer(logs_app, name="logs")


@logs_app.command("purge")
def purge(
    older_than_days: int = typer.Option(
        30, "--older-than-days", min=1, help="Remove what is older than this many days."
    ),
    log_dir: Path | None = typer.Option(
        None,
        "--log-dir",
        help="Log folder (default: ETL_EXPRESS_LOG_DIR, "
        "ETL_EXPRESS_HOME/logs or the user log folder).",
    ),
    database: bool = typer.Option(
        True,
        "--database/--no-database",
        help="Also purge etl_express.logs in the state database "
        "(ETL_EXPRESS_DATABASE_URL, else the embedded server).",
    ),
) -> None:
    """Delete log files and database log rows older than --older-than-days (default 30)."""
    from ..logs import default_log_dir, purge_log_files, purge_log_rows
    from ..store.database import mask_url, resolve_url

    folder = log_dir if log_dir is not None else default_log_dir()
    removed = purge_log_files(folder, older_than_days)
    say(f"removed {len(removed)} log file(s) older than {older_than_days} days from {folder}")
    if database:
        url = resolve_url()
        rows = purge_log_rows(url, older_than_days)
        say(f"removed {rows} log row(s) older than {older_than_days} days from {mask_url(url)}")
