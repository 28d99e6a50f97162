"""Tables made from records on PostgreSQL, SQLite and MariaDB (unique names, dropped after)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from etl_express.store.database import engine_for

MakeTable = Callable[[list[dict[str, Any]]], str]


def _column_type(values: list[Any]) -> sa.types.TypeEngine:
    sample = [v for v in values if v is not None]
    if sample and all(isinstance(v, bool) for v in sample):
        return sa.Boolean()
    if sample and all(isinstance(v, int) and not isinstance(v, bool) for v in sample):
        return sa.BigInteger()
    if sample and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in sample):
        return sa.Double()
    return sa.Text()


def create_table(url: str, records: list[dict[str, Any]], schema: str | None = None) -> str:
    """A new table holding ``records`` (lists stored as JSON text); returns its name."""
    name = "t_" + uuid.uuid4().hex[:12]
    columns = list(dict.fromkeys(k for r in records for k in r)) or ["id"]
    table = sa.Table(
        name,
        sa.MetaData(schema=schema),
        *[
            sa.Column(
                c,
                sa.BigInteger() if c == "id" else _column_type([r.get(c) for r in records]),
                primary_key=c == "id",
                autoincrement=False,
            )
            for c in columns
        ],
    )
    rows = [
        {c: json.dumps(r[c]) if isinstance(r.get(c), list) else r.get(c) for c in columns}
        for r in records
    ]
    engine = engine_for(url)
    with engine.begin() as conn:
        table.create(conn)
        if rows:
            conn.execute(table.insert(), rows)
    return f"{schema}.{name}" if schema else name


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'source.db'}"


@pytest.fixture
def mysql_tables(mysql_url: str) -> Iterator[MakeTable]:
    names: list[str] = []

    def make(records: list[dict[str, Any]]) -> str:
        names.append(create_table(mysql_url, records))
        return names[-1]

    yield make
    with engine_for(mysql_url).begin() as conn:
        for name in names:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
