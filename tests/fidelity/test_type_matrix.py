"""Finding 3 of issue 14: every type of :mod:`.type_matrix` is delivered exactly — the same
``::text`` in the target as in the source, or its stated lossless mapping — on each
PostgreSQL reader path (the compiled binary COPY reader, ADBC, and SQLAlchemy rows with
``fast_path=False``) and from MariaDB; the docs' type tables are rendered from the matrix."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from etl_express import Pipeline
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource
from etl_express.sources.sql import pgbinary
from etl_express.store.database import engine_for
from tests.conftest import pg_exec
from tests.fidelity.type_matrix import MYSQL_TYPES, PG_SETUP, PG_TYPES, TypeCase, markdown
from tests.sources.sql.test_pgbinary import require_binary_reader

DOCS = Path(__file__).resolve().parents[2] / "docs" / "connectors" / "sql.md"


def rows_of(cases: tuple[TypeCase, ...]) -> int:
    return max(len(c.values) for c in cases)


def target_texts(url: str, table: str, cases: tuple[TypeCase, ...]) -> dict[str, list[Any]]:
    with psycopg.connect(url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        out = {}
        for i, c in enumerate(cases):
            expr = f"c{i}" if c.same not in ("text", "float") else f"c{i}::text"
            out[f"c{i}"] = [r[0] for r in conn.execute(f"SELECT {expr} FROM {table} ORDER BY id")]
        return out


def target_types(url: str, table: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = to_regclass(%s) AND attnum > 0",
                (table,),
            ).fetchall()
        )


def same_number(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    x, y = float(a), float(b)
    return x == y or (math.isnan(x) and math.isnan(y))


def check(
    cases: tuple[TypeCase, ...],
    want: dict[str, list[Any]],
    got: dict[str, list[Any]],
    types: dict[str, str],
) -> list[str]:
    problems = []
    for i, c in enumerate(cases):
        name = f"c{i}"
        if types.get(name) != c.target:
            problems.append(f"{c.sql}: target column is {types.get(name)}, not {c.target}")
        if c.same == "float":
            ok = all(same_number(a, b) for a, b in zip(want[name], got[name]))
        else:
            ok = want[name] == got[name]
        if not ok:
            problems.append(f"{c.sql}: source {want[name]!r} != target {got[name]!r}")
    return problems


@pytest.fixture(params=["binary", "adbc", "sqlalchemy"])
def fast_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    if request.param == "adbc":
        monkeypatch.setattr(pgbinary, "available", lambda: False)
    elif request.param == "binary":
        require_binary_reader()
    return request.param != "sqlalchemy"


@pytest.mark.parametrize("via", ["table", "query"])
def test_every_postgres_type_is_delivered_exactly(
    pg_url: str, schema: str, pipeline_name: str, fast_path: bool, via: str
) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for ddl in PG_SETUP:
            conn.execute(ddl.format(schema=schema))
        columns = ", ".join(f"c{i} {c.sql.format(schema=schema)}" for i, c in enumerate(PG_TYPES))
        conn.execute(f"CREATE TABLE {schema}.src (id int PRIMARY KEY, {columns})")
        for row in range(rows_of(PG_TYPES)):
            values = ", ".join(
                f"({c.values[row]})::{c.sql.format(schema=schema)}"
                if row < len(c.values)
                else "NULL"
                for c in PG_TYPES
            )
            conn.execute(f"INSERT INTO {schema}.src VALUES ({row}, {values})")
        conn.execute("SET TimeZone = 'UTC'")
        want = {}
        for i, c in enumerate(PG_TYPES):
            expr = "c{i}::text" if c.same in ("text", "float") else c.same.replace("{c}", "c{i}")
            want[f"c{i}"] = [
                r[0]
                for r in conn.execute(f"SELECT {expr.format(i=i)} FROM {schema}.src ORDER BY id")
            ]
    where = (
        {"table": f"{schema}.src"} if via == "table" else {"query": f"SELECT * FROM {schema}.src"}
    )
    source = SQLSource(pg_url, **where, primary_key="id", batch_size=3, fast_path=fast_path)
    result = Pipeline(
        pipeline_name, source, sink=PostgresSink(f"{schema}.dst"), progress=False
    ).run()
    assert (result.rows_written, result.rows_quarantined) == (rows_of(PG_TYPES), 0)
    got = target_texts(pg_url, f"{schema}.dst", PG_TYPES)
    assert check(PG_TYPES, want, got, target_types(pg_url, f"{schema}.dst")) == []


def test_every_mysql_type_is_delivered_exactly(
    mysql_url: str, pg_url: str, schema: str, pipeline_name: str
) -> None:
    engine = engine_for(mysql_url)
    table = "m_" + schema
    columns = ", ".join(f"c{i} {c.sql}" for i, c in enumerate(MYSQL_TYPES))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (id int PRIMARY KEY, {columns})")
        for row in range(rows_of(MYSQL_TYPES)):
            values = ", ".join(
                c.values[row] if row < len(c.values) else "NULL" for c in MYSQL_TYPES
            )
            conn.exec_driver_sql(f"INSERT INTO {table} VALUES ({row}, {values})")
    try:
        want = {}
        with engine.connect() as conn:
            for i, c in enumerate(MYSQL_TYPES):
                expr = f"c{i}" if c.same in ("text", "float") else c.same.replace("{c}", f"c{i}")
                want[f"c{i}"] = [
                    r[0]
                    for r in conn.exec_driver_sql(
                        f"SELECT CAST({expr} AS CHAR) FROM {table} ORDER BY id"
                    )
                ]
        source = SQLSource(mysql_url, table, primary_key="id", batch_size=2)
        result = Pipeline(
            pipeline_name, source, sink=PostgresSink(f"{schema}.dst"), progress=False
        ).run()
        assert (result.rows_written, result.rows_quarantined) == (rows_of(MYSQL_TYPES), 0)
        with psycopg.connect(pg_url) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            got = {
                f"c{i}": [
                    r[0]
                    for r in conn.execute(
                        f"SELECT {c.target_sql.format(c=f'c{i}')} FROM {schema}.dst ORDER BY id"
                    )
                ]
                for i, c in enumerate(MYSQL_TYPES)
            }
        assert check(MYSQL_TYPES, want, got, target_types(pg_url, f"{schema}.dst")) == []
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))


def test_the_docs_type_tables_are_the_matrix() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    assert markdown(PG_TYPES, "PostgreSQL") in docs, "run python -m tests.fidelity.type_matrix"
    assert markdown(MYSQL_TYPES, "MariaDB/MySQL") in docs, (
        "run python -m tests.fidelity.type_matrix"
    )


def test_an_enum_and_money_ordering_key_resumes_exactly(
    pg_url: str, schema: str, pipeline_name: str, fast_path: bool
) -> None:
    pg_exec(pg_url, f"CREATE TYPE {schema}.region AS ENUM ('north', 'south', 'east')")
    pg_exec(
        pg_url,
        f"CREATE TABLE {schema}.src (region {schema}.region, price money, n int, "
        "PRIMARY KEY (region, n))",
    )
    pg_exec(
        pg_url,
        f"INSERT INTO {schema}.src VALUES ('north', 1.5, 1), ('south', 12.34, 1), "
        "('south', 2, 2), ('east', 1000, 1)",
    )

    def run() -> int:
        source = SQLSource(
            pg_url,
            f"{schema}.src",
            primary_key=["region", "n"],
            cursor="price",
            batch_size=1,
            fast_path=fast_path,
        )
        sink = PostgresSink(f"{schema}.dst")
        return Pipeline(pipeline_name, source, sink=sink, progress=False).run().rows_written

    assert run() == 4
    pg_exec(pg_url, f"INSERT INTO {schema}.src VALUES ('north', 5000, 9)")
    assert run() == 1
    assert run() == 0
    got = pg_exec(pg_url, f"SELECT region, price, n FROM {schema}.dst ORDER BY n, region")
    want = pg_exec(
        pg_url, f"SELECT region::text, price::text, n FROM {schema}.src ORDER BY n, region"
    )
    assert got == want
