"""SQLSource on MariaDB and SQLite: full and incremental loads, row for row."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from etl_express import Pipeline
from etl_express.errors import SourceError
from etl_express.sources import SQLSource
from etl_express.store.database import engine_for
from etl_express.testing import MemorySink, assert_same_records, common_records, records_of

T0 = dt.datetime(2024, 1, 1, 8, 0, 0)


def _rows(first: int, n: int, start: dt.datetime = T0) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "name": f"Покупатель {i}" if i % 4 else None,
            "amount": decimal.Decimal(f"{i}.{i % 100:02d}"),
            "score": i / 4,
            "born": dt.date(1990, 1 + i % 12, 1 + i % 28),
            "updated_at": start + dt.timedelta(minutes=i // 3),
        }  # several rows share a cursor value
        for i in range(first, first + n)
    ]


def _table(name: str) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(100)),
        sa.Column("amount", sa.Numeric(12, 2)),
        sa.Column("score", sa.Double),
        sa.Column("born", sa.Date),
        sa.Column("updated_at", sa.DateTime),
    )


def _db_rows(url: str, table: sa.Table) -> list[dict[str, Any]]:
    """The source's content as the database itself returns it."""
    with engine_for(url).connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mysql)])
def database(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[str, sa.Table]]:
    url = (
        f"sqlite:///{tmp_path / 'src.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("mysql_url")
    )
    table = _table("t_" + uuid.uuid4().hex[:12])
    engine = engine_for(url)
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), _rows(1, 20))
    yield url, table
    with engine.begin() as conn:
        table.drop(conn)


def test_full_load_row_for_row(database: tuple[str, sa.Table]) -> None:
    url, table = database
    source = SQLSource(url, table.name, primary_key="id", batch_size=6)
    batches = list(source.read())
    assert [b.num_rows for b in batches] == [6, 6, 6, 2]
    assert_same_records(records_of(batches), common_records(_db_rows(url, table)), "full load")
    row = next(r for r in records_of(batches) if r["id"] == 5)
    assert row == {
        "id": 5,
        "name": "Покупатель 5",
        "amount": "5.05",
        "score": 1.25,
        "born": "1990-06-06",
        "updated_at": "2024-01-01T08:01:00+00:00",
    }


def test_incremental_load_row_for_row(database: tuple[str, sa.Table]) -> None:
    url, table = database
    source = SQLSource(url, table.name, primary_key="id", cursor="updated_at", batch_size=4)
    first = list(source.read())
    assert_same_records(records_of(first), common_records(_db_rows(url, table)), "first run")
    position = first[-1].position
    assert records_of(list(source.read(position))) == []

    later = T0 + dt.timedelta(days=1)
    with engine_for(url).begin() as conn:
        conn.execute(table.insert(), _rows(21, 7, start=later))
        conn.execute(
            table.update().where(table.c.id.in_([2, 3])).values(name="изменён", updated_at=later)
        )
    second = records_of(list(source.read(position)))
    changed = [r for r in _db_rows(url, table) if r["updated_at"] >= later]
    assert len(changed) == 9
    assert_same_records(second, common_records(changed), "incremental run")


def test_resume_inside_equal_cursor_values(database: tuple[str, sa.Table]) -> None:
    url, table = database
    source = SQLSource(url, table.name, primary_key="id", cursor="updated_at", batch_size=4)
    batches = list(source.read())
    for k in range(len(batches) - 1):  # batches end in the middle of rows sharing updated_at
        rest = records_of(list(source.read(batches[k].position)))
        assert_same_records(
            records_of(batches[: k + 1]) + rest, common_records(_db_rows(url, table)), f"after {k}"
        )


def test_query_source(database: tuple[str, sa.Table]) -> None:
    url, table = database
    source = SQLSource(
        url,
        query=f"SELECT id, name FROM {table.name} WHERE id > 10",
        primary_key="id",
        batch_size=3,
    )
    rows = records_of(list(source.read()))
    assert sorted(r["id"] for r in rows) == list(range(11, 21)) and set(rows[0]) == {"id", "name"}


def test_pipeline_into_memory(
    database: tuple[str, sa.Table], pg_url: str, pipeline_name: str
) -> None:
    url, table = database
    sink = MemorySink(pg_url)
    pipeline = Pipeline(
        pipeline_name,
        SQLSource(url, table.name, primary_key="id", cursor="updated_at", batch_size=5),
        sink=sink,
        progress=False,
        not_pii={"born": "the fixture's made-up dates"},  # a birth date the detector refuses
    )
    assert pipeline.run().rows_written == 20
    assert pipeline.run().rows_read == 0
    assert_same_records(sink.records(), common_records(_db_rows(url, table)), "pipeline")


def test_missing_table_is_reported(database: tuple[str, sa.Table]) -> None:
    url, _ = database
    with pytest.raises(SourceError, match="does not exist"):
        list(SQLSource(url, "no_such_table_here", primary_key="id").read())
