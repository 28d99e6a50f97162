"""A pipeline in a plain script: load a shop's ``orders`` table into an analytics table.

Needs no configuration: the shop is a small SQLite database this script creates in the
temporary folder (a stand-in for your shop's database: any SQLAlchemy URL works the same way),
and the target is the default store — the PostgreSQL named by ``ETL_EXPRESS_DATABASE_URL``, or
the embedded one when that is unset. It loads ``orders`` into ``<schema>.orders_loaded``
exactly once and prints the run's result and a few loaded records::

    python examples/pipeline_script.py

Run it again: the source is incremental (cursor ``updated_at``), so the second run reads
nothing new. ``EXAMPLE_SCHEMA`` (default ``example_shop``) chooses the target schema.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import tempfile
from pathlib import Path

import etl_express as etl
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource

STATUSES = ("new", "paid", "shipped", "returned")
START = dt.datetime(2024, 1, 1)


def create_source_table(path: Path, rows: int = 500) -> str:
    """The shop's ``orders`` table with ``rows`` generated orders (kept if it exists); its URL."""
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, status TEXT NOT NULL,"
            " amount NUMERIC(10, 2) NOT NULL, ordered_on DATE NOT NULL,"
            " updated_at DATETIME NOT NULL)"
        )
        db.executemany(
            "INSERT OR IGNORE INTO orders VALUES (?, ?, ?, ?, ?)",
            [
                (
                    g,
                    STATUSES[g % 4],
                    f"{10 + (g * 37) % 490 + (g % 100) / 100:.2f}",
                    (START.date() + dt.timedelta(days=g % 60)).isoformat(),
                    (START + dt.timedelta(minutes=7 * g)).isoformat(sep=" "),
                )
                for g in range(1, rows + 1)
            ],
        )
    return f"sqlite:///{path}"


def build_pipeline(source_url: str, schema: str) -> etl.Pipeline:
    """In production the source URL holds a password: pass ``etl.secret("SHOP_DB_URL")``."""
    return etl.Pipeline(
        name=f"{schema}_orders",
        source=SQLSource(
            url=source_url, table="orders", primary_key="id", cursor="updated_at", batch_size=200
        ),
        sink=PostgresSink(table=f"{schema}.orders_loaded"),
        progress=False,
    )


def load_example(schema: str | None = None) -> str:
    """Create the source table if needed, run the pipeline, return the loaded table's name."""
    schema = schema or os.environ.get("EXAMPLE_SCHEMA", "example_shop")
    shop = Path(tempfile.gettempdir()) / f"etl-express-example-{schema}.db"
    result = build_pipeline(create_source_table(shop), schema).run()
    print(
        f"run {result.status}: {result.rows_read} read, {result.rows_written} written, "
        f"{result.rows_quarantined} quarantined in {result.batches} batches"
    )
    return f"{schema}.orders_loaded"


def main() -> None:
    table = load_example()
    for record in etl.read(table, limit=3, order_by=["id"]):
        print(json.dumps(record))


if __name__ == "__main__":
    main()
