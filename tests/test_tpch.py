"""TPC-H through one ``Replication``: the copy answers the same SQL as the source.

The official schema (``char(n)``, ``varchar(n)``, ``decimal(15,2)``, ``date``, composite keys) is
generated at a small scale factor in a PostgreSQL schema (:mod:`tests.tpch`), replicated in one
call, and the 22 queries run on both sides: every answer is the same, and every target column
has its source column's type. With the customers' and suppliers' names and phones
pseudonymized, every query that does not output them still gives the same answer.
(``benchmarks/replication.py`` runs the same at scale factor 1 and times it.)
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import etl_express as etl
from etl_express.anonymizers import Pseudonymize
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLDatabase
from tests.conftest import pg_exec
from tests.tpch import NAMED_OUTPUT, QUERIES, TABLES, generate

SF = 0.002
os.environ.setdefault("ETL_EXPRESS_TPCH_TEST_KEY", secrets.token_urlsafe(48))


@pytest.fixture(scope="module")
def tpch(pg_url: str) -> Iterator[str]:
    name = "tpch_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
        conn.execute(f"SET search_path = {name}")
        generate(conn.execute, SF)
    yield name
    pg_exec(pg_url, f"DROP SCHEMA {name} CASCADE")


@pytest.fixture
def target(pg_url: str) -> Iterator[str]:
    name = "tpch_copy_" + uuid.uuid4().hex[:8]
    yield name
    pg_exec(pg_url, f"DROP SCHEMA IF EXISTS {name} CASCADE")


def answers(url: str, schema: str) -> dict[int, list[tuple[Any, ...]]]:
    """Each query's rows (sorted: a LIMIT may cut through rows with equal sort keys)."""
    with psycopg.connect(url) as conn:
        conn.execute(f"SET search_path = {schema}")
        return {q: sorted(conn.execute(sql).fetchall(), key=repr) for q, sql in QUERIES.items()}


def column_types(url: str, schema: str) -> dict[tuple[str, str], str]:
    rows = pg_exec(
        url,
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped "
        "AND a.attname NOT LIKE '\\_etl\\_%%'",
        (schema,),
    )
    return {(t, c): ty for t, c, ty in rows}


def test_the_copy_answers_all_22_queries_as_the_source_on_the_same_types(
    pg_url: str, tpch: str, target: str
) -> None:
    result = etl.Replication(
        "tpch_" + target, SQLDatabase(pg_url, schema=tpch), sink=PostgresSink(schema=target)
    ).run(workers=2)
    assert result.ok and sorted(result.tables) == sorted(TABLES)
    assert result.rows_written == result.rows_read > 10_000
    assert column_types(pg_url, target) == column_types(pg_url, tpch)
    source, copy = answers(pg_url, tpch), answers(pg_url, target)
    # most queries have answers at this scale (Q3's 'BUILDING' is a char(10) comparison)
    assert sum(1 for rows in source.values() if rows) >= 15 and source[3]
    assert [q for q in QUERIES if copy[q] != source[q]] == []


def test_with_names_and_phones_pseudonymized_the_other_queries_answer_the_same(
    pg_url: str, tpch: str, target: str
) -> None:
    personal = ["customer.c_name", "customer.c_phone", "supplier.s_name", "supplier.s_phone"]
    result = etl.Replication(
        "tpch_anon_" + target,
        SQLDatabase(
            pg_url,
            schema=tpch,
            include=[
                "customer",
                "supplier",
                "nation",
                "region",
                "orders",
                "lineitem",
                "part",
                "partsupp",
            ],
        ),
        sink=PostgresSink(schema=target),
        anonymizers=[Pseudonymize(personal, key=etl.secret("TPCH_TEST_KEY"))],
    ).run()
    assert result.ok
    types = column_types(pg_url, target)
    assert types[("customer", "c_phone")] == "text"  # the tokens' type, not char(15)
    assert types[("customer", "c_mktsegment")] == "character(10)"
    source, copy = answers(pg_url, tpch), answers(pg_url, target)
    assert [q for q in QUERIES if q not in NAMED_OUTPUT and copy[q] != source[q]] == []
    assert copy[10] != source[10]  # it does output names and phones: they are tokens now
    names = pg_exec(pg_url, f"SELECT c_name, c_phone FROM {target}.customer LIMIT 5")
    assert all(not n.startswith("Customer#") and "-" not in p for n, p in names)
