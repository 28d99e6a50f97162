"""A pipeline in a plain script: load a shop's ``orders`` table into an analytics table.

Runs against the PostgreSQL named by ``ETL_EXPRESS_DATABASE_URL`` (read as a secret, never
written in code). It creates its own small source table ``<schema>.orders`` there when it is
missing, loads it into ``<schema>.orders_loaded`` exactly once, and prints the run's result
and a few loaded records::

    ETL_EXPRESS_DATABASE_URL=postgresql://me@localhost:5432/mydb python examples/pipeline_script.py

Run it again: the source is incremental (cursor ``updated_at``), so the second run reads
nothing new. ``EXAMPLE_SCHEMA`` (default ``example_shop``) chooses the schema.
"""

from __future__ import annotations

import json
import os

import psycopg

import etl_express as etl
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource

STATUSES = ("new", "paid", "shipped", "returned")


def create_source_table(url: str, schema: str, rows: int = 500) -> None:
    """The shop's ``orders`` table with ``rows`` generated orders (kept if it exists)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conn.execute(f"""
            CREATE TABLE IF NOT EXISTS "{schema}".orders (
                id integer PRIMARY KEY,
                status text NOT NULL,
                amount numeric(10, 2) NOT NULL,
                ordered_on date NOT NULL,
                updated_at timestamptz NOT NULL
            )""")
        conn.execute(
            f"""
            INSERT INTO "{schema}".orders
            SELECT g,
                   (%s::text[])[1 + g %% 4],
                   round((10 + (g * 37) %% 490)::numeric + (g %% 100) / 100.0, 2),
                   date '2024-01-01' + (g %% 60),
                   timestamptz '2024-01-01 00:00:00+00' + g * interval '7 minutes'
            FROM generate_series(1, %s) AS g
            ON CONFLICT (id) DO NOTHING""",
            (list(STATUSES), rows),
        )


def build_pipeline(schema: str) -> etl.Pipeline:
    """The source and the target live in the same database here; in production the source
    URL is another secret (``etl.secret("SHOP_DB_URL")``)."""
    return etl.Pipeline(
        name=f"{schema}_orders",
        source=SQLSource(
            url=etl.secret("DATABASE_URL"),
            table=f"{schema}.orders",
            primary_key="id",
            cursor="updated_at",
            batch_size=200,
        ),
        sink=PostgresSink(table=f"{schema}.orders_loaded"),
        progress=False,
    )


def load_example(schema: str | None = None) -> str:
    """Create the source table if needed, run the pipeline, return the loaded table's name."""
    schema = schema or os.environ.get("EXAMPLE_SCHEMA", "example_shop")
    url = etl.secret("DATABASE_URL").get().get_secret_value()
    create_source_table(url, schema)
    result = build_pipeline(schema).run()
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
