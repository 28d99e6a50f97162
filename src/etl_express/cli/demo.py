"""``etl-express demo``."""

from __future__ import annotations

import typer

from . import app


@app.command()
def demo(
    rows: int = typer.Option(100_000, help="How many demo customers to generate."),
    reset: bool = typer.Option(
        False, "--reset", help="Regenerate the demo data and load everything again."
    ),
) -> None:
    """Build a demo CRM database and load it, anonymized, into the embedded PostgreSQL."""
    from ..demo import run_demo

    run_demo(rows=rows, reset=reset)
