"""``etl-express scan URL``: what a replication of the database would find."""

from __future__ import annotations

import json

import typer

from . import app


@app.command("scan")
def scan_command(
    url: str = typer.Argument(
        ..., help="The database's SQLAlchemy URL (its password is never printed)."
    ),
    schema: str | None = typer.Option(
        None, "--schema", help="The schema (MariaDB: the database); default: the URL's."
    ),
    include: list[str] = typer.Option(["*"], "--include", help="Table name glob to include."),
    exclude: list[str] = typer.Option([], "--exclude", help="Table name glob to leave out."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """List the tables with their estimated rows, keys, candidate cursors and the columns
    that look like personal data (from a small sample; no value is printed), then a ready
    Replication(...) to paste."""
    from ..errors import ETLError
    from ..sources.sql.database import SQLDatabase
    from ..sources.sql.scan import scan

    try:
        report = scan(SQLDatabase(url, schema=schema, include=include, exclude=exclude))
    except ETLError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.text())
