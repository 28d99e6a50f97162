"""Schema drift between runs: a new column is added, a widened type is widened, an
incompatible change stops the run naming the column before that batch writes anything."""

from __future__ import annotations

import pytest

import etl_express as etl
from etl_express.sinks.postgres import PostgresSink
from tests.conftest import pg_exec
from tests.reliability_sources import ListSource


def _run(name: str, schema: str, rows: list[dict], batch_size: int = 100) -> etl.RunResult:
    return etl.Pipeline(
        name, ListSource(rows, batch_size=batch_size), sink=PostgresSink(f"{schema}.t")
    ).run()


def _columns(pg_url: str, schema: str) -> dict[str, str]:
    return dict(
        pg_exec(
            pg_url,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 't'",
            (schema,),
        )
    )


def test_a_new_source_column_is_added_to_the_target(pg_url, schema, pipeline_name):
    rows = [{"id": i, "name": f"n{i}"} for i in range(10)]
    _run(pipeline_name, schema, rows)
    rows += [{"id": i, "name": f"n{i}", "city": "Kazan"} for i in range(10, 15)]

    assert _run(pipeline_name, schema, rows).rows_written == 5

    assert _columns(pg_url, schema)["city"] == "text"
    assert pg_exec(
        pg_url, f"SELECT count(*) FILTER (WHERE city IS NULL), count(city) FROM {schema}.t"
    ) == [(10, 5)]


def test_a_widened_type_is_widened_in_place(pg_url, schema, pipeline_name):
    pg_exec(
        pg_url, f"CREATE TABLE {schema}.t (id bigint PRIMARY KEY, amount integer, code varchar(3))"
    )
    rows = [{"id": 1, "amount": 3_000_000_000, "code": "a much longer code"}]
    _run(pipeline_name, schema, rows)
    assert (
        _columns(pg_url, schema)["amount"] == "bigint"
        and _columns(pg_url, schema)["code"] == "text"
    )

    rows.append({"id": 2, "amount": 2.5, "code": "x"})  # integers become fractional
    _run(pipeline_name, schema, rows)

    assert _columns(pg_url, schema)["amount"] == "double precision"
    assert pg_exec(pg_url, f"SELECT id, amount, code FROM {schema}.t ORDER BY id") == [
        (1, 3_000_000_000.0, "a much longer code"),
        (2, 2.5, "x"),
    ]


def test_an_incompatible_change_stops_the_run_naming_the_column(pg_url, schema, pipeline_name):
    rows = [{"id": i, "amount": i} for i in range(10)]
    _run(pipeline_name, schema, rows)
    rows += [{"id": i, "amount": f"{i} roubles"} for i in range(10, 20)]

    with pytest.raises(etl.SinkError) as err:
        _run(pipeline_name, schema, rows, batch_size=10)

    message = str(err.value)
    assert "column 'amount' is bigint" in message and "now sends string" in message
    assert "roubles" not in message and err.value.result.retries == 0
    assert pg_exec(pg_url, f"SELECT count(*), max(id) FROM {schema}.t") == [
        (10, 9)
    ]  # nothing of that batch
    assert _columns(pg_url, schema)["amount"] == "bigint"
    checkpoint = pg_exec(
        pg_url, "SELECT position FROM etl_express.checkpoints WHERE pipeline = %s", (pipeline_name,)
    )
    assert checkpoint == [(10,)]  # the next run retries the same batch once the target is migrated
