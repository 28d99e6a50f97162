"""A first load leaves the lineage columns out of its rows: the table it creates has none
until its primary key is built, when they are added holding the run's values for every row
already there (``sinks/pglineage.py``). Every row must still carry exactly the lineage of
the run that wrote it, no default may outlive the load, no row is rewritten for it, and a
batch whose lineage differs is sent whole."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pyarrow as pa
import pytest
from psycopg import sql

from etl_express import Pipeline
from etl_express.format import LINEAGE_COLUMNS, TIMESTAMP
from etl_express.sinks import PostgresSink, pgwrite, postgres
from etl_express.store.database import engine_for
from tests.conftest import pg_exec
from tests.sinks.test_postgres_bulk_key import Failing, stopped_after_two_batches

LOADED = dt.datetime(2026, 12, 7, 11, 0, 0, 123456, tzinfo=dt.timezone.utc)


def lineage_batch(ids: range, run: str, loaded: dt.datetime = LOADED) -> pa.RecordBatch:
    n = len(ids)
    return pa.RecordBatch.from_pydict(
        {
            "id": pa.array(list(ids), pa.int64()),
            "name": [f"n{i}" for i in ids],
            "_etl_run_id": [run] * n,
            "_etl_source": ["crm.customers"] * n,
            "_etl_loaded_at": pa.array([loaded] * n, TIMESTAMP),
        }
    )


def defaults(url: str, table: str) -> dict[str, str]:
    return dict(
        pg_exec(
            url,
            "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d"
            " JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum"
            f" WHERE d.adrelid = '{table}'::regclass",
        )
    )


@pytest.fixture
def copied_columns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The column lists of the COPY statements the sink sends (the real COPY still runs)."""
    seen: list[str] = []
    original = pgwrite.copy_rows

    def recording(cur: Any, target: Any, cols: sql.Composable, payload: Any) -> int:
        seen.append(cols.as_string(cur))
        return original(cur, target, cols, payload)

    monkeypatch.setattr(postgres, "copy_rows", recording)
    monkeypatch.setattr(pgwrite, "copy_rows", recording)
    return seen


def lineage_columns(url: str, table: str) -> list[str]:
    return [
        name
        for (name,) in pg_exec(
            url,
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped AND attname LIKE '\\_etl\\_%%' ORDER BY attnum",
            (table,),
        )
    ]


def comment(url: str, table: str) -> str | None:
    return pg_exec(url, "SELECT obj_description(%s::regclass, 'pg_class')", (table,))[0][0]


def heap_file(url: str, table: str) -> str:
    return pg_exec(url, "SELECT pg_relation_filenode(%s::regclass)", (table,))[0][0]


def finish(url: str, sink: PostgresSink) -> None:
    with engine_for(url).begin() as conn:
        sink.finish_load(conn, ["id"])


def write(url: str, sink: PostgresSink, data: pa.RecordBatch) -> None:
    with engine_for(url).begin() as conn:
        sink.write(conn, data, ["id"])


def test_a_first_load_sends_no_lineage_and_every_row_still_has_it(
    pg_url: str, schema: str, copied_columns: list[str]
) -> None:
    table = f"{schema}.customers"
    sink = PostgresSink(table=table)
    write(pg_url, sink, lineage_batch(range(1, 11), "run-a"))
    write(pg_url, sink, lineage_batch(range(11, 21), "run-a"))
    assert all("_etl_" not in cols for cols in copied_columns), copied_columns
    # while the load goes on, readers see its committed rows without the lineage columns;
    # the table's comment records the values those rows hold
    assert lineage_columns(pg_url, table) == []
    assert "run-a" in (comment(pg_url, table) or "")
    assert pg_exec(pg_url, f"SELECT count(*) FROM {table}") == [(20,)]
    heap = heap_file(pg_url, table)
    finish(pg_url, sink)
    assert lineage_columns(pg_url, table) == list(LINEAGE_COLUMNS)  # at the end, as created
    assert heap_file(pg_url, table) == heap  # added without rewriting a row
    assert defaults(pg_url, table) == {} and comment(pg_url, table) is None
    rows = pg_exec(
        pg_url,
        f"SELECT _etl_run_id, _etl_source, _etl_loaded_at, count(*) FROM {table} GROUP BY 1, 2, 3",
    )
    assert rows == [("run-a", "crm.customers", LOADED, 20)]
    # a row written by anything else afterwards gets no lineage from a leftover default
    pg_exec(pg_url, f"INSERT INTO {table} (id, name) VALUES (100, 'x')")
    assert pg_exec(pg_url, f"SELECT _etl_run_id, _etl_loaded_at FROM {table} WHERE id = 100") == [
        (None, None)
    ]
    assert sink.known_target()[0] == {
        "id": "bigint",
        "name": "text",
        "_etl_run_id": "text",
        "_etl_source": "text",
        "_etl_loaded_at": "timestamp with time zone",
    }


def test_a_sink_that_forgot_its_load_still_adds_the_recorded_lineage(
    pg_url: str, schema: str
) -> None:
    """A retry after a failure rolls the sink's state back: the key build still adds the
    lineage columns with the values the table's comment recorded."""
    table = f"{schema}.customers"
    sink = PostgresSink(table=table)
    write(pg_url, sink, lineage_batch(range(1, 11), "run-a"))
    sink.rollback()
    finish(pg_url, sink)
    assert pg_exec(pg_url, f"SELECT DISTINCT _etl_run_id FROM {table}") == [("run-a",)]
    assert comment(pg_url, table) is None


def test_a_batch_with_other_lineage_is_sent_whole(
    pg_url: str, schema: str, copied_columns: list[str]
) -> None:
    table = f"{schema}.customers"
    sink = PostgresSink(table=table)
    write(pg_url, sink, lineage_batch(range(1, 11), "run-a"))
    later = dt.datetime(2026, 12, 8, tzinfo=dt.timezone.utc)
    write(pg_url, sink, lineage_batch(range(11, 21), "run-b", later))
    mixed = pa.concat_batches(
        [lineage_batch(range(21, 26), "run-a"), lineage_batch(range(26, 31), "run-c")]
    )
    write(pg_url, sink, mixed)
    assert ["_etl_" in cols for cols in copied_columns] == [False, True, True]
    finish(pg_url, sink)
    got = dict(pg_exec(pg_url, f"SELECT id, _etl_run_id FROM {table}"))
    assert {got[i] for i in range(1, 11)} == {"run-a"}
    assert {got[i] for i in range(11, 21)} == {"run-b"}
    assert [got[i] for i in (21, 25, 26, 30)] == ["run-a", "run-a", "run-c", "run-c"]
    loaded = dict(pg_exec(pg_url, f"SELECT id, _etl_loaded_at FROM {table}"))
    assert loaded[1] == LOADED and loaded[11] == later


def test_a_batch_without_lineage_columns_records_none(pg_url: str, schema: str) -> None:
    table = f"{schema}.plain"
    sink = PostgresSink(table=table)
    write(pg_url, sink, pa.RecordBatch.from_pydict({"id": pa.array([1, 2], pa.int64())}))
    assert defaults(pg_url, table) == {} and comment(pg_url, table) is None


def test_a_first_batch_of_mixed_lineage_creates_the_columns_empty(
    pg_url: str, schema: str, copied_columns: list[str]
) -> None:
    table = f"{schema}.customers"
    sink = PostgresSink(table=table)
    mixed = pa.concat_batches(
        [lineage_batch(range(1, 6), "run-a"), lineage_batch(range(6, 11), "run-b")]
    )
    write(pg_url, sink, mixed)
    assert "_etl_" in copied_columns[0] and comment(pg_url, table) is None
    finish(pg_url, sink)
    assert pg_exec(pg_url, f"SELECT _etl_run_id, count(*) FROM {table} GROUP BY 1 ORDER BY 1") == [
        ("run-a", 5),
        ("run-b", 5),
    ]


def test_a_pipeline_run_stamps_its_own_lineage_and_leaves_no_default(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    table = f"{schema}.customers"
    result = Pipeline(
        pipeline_name, Failing(fail_after=None), sink=PostgresSink(table=table), progress=False
    ).run()
    assert pg_exec(pg_url, f"SELECT DISTINCT _etl_run_id, _etl_source FROM {table}") == [
        (result.run_id, "customers")
    ]
    assert pg_exec(pg_url, f"SELECT count(*) FROM {table} WHERE _etl_loaded_at IS NULL") == [(0,)]
    assert defaults(pg_url, table) == {} and comment(pg_url, table) is None


def test_a_load_that_stops_early_keeps_each_runs_lineage(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    table = f"{schema}.customers"
    source = stopped_after_two_batches(pipeline_name, table)
    # its two batches are there, without lineage columns, their run recorded on the table
    assert lineage_columns(pg_url, table) == []
    assert pg_exec(pg_url, f"SELECT count(*) FROM {table}") == [(20,)]
    stopped = pg_exec(
        pg_url, "SELECT run_id FROM etl_express.runs WHERE pipeline = %s", (pipeline_name,)
    )
    assert len(stopped) == 1 and stopped[0][0] in (comment(pg_url, table) or "")
    result = Pipeline(pipeline_name, source, sink=PostgresSink(table=table), progress=False).run()
    got = dict(pg_exec(pg_url, f"SELECT id, _etl_run_id FROM {table}"))
    assert {got[i] for i in range(1, 21)} == {stopped[0][0]}  # the stopped run's rows
    assert {got[i] for i in range(21, 51)} == {result.run_id}  # the resuming run's
    assert defaults(pg_url, table) == {} and comment(pg_url, table) is None


def test_another_writer_building_the_key_makes_the_loader_send_lineage_again(
    pg_url: str, schema: str, copied_columns: list[str]
) -> None:
    """Two partitions of one load: the second writer finds the table keyless and without
    lineage columns, adds them (with the values the first recorded) and builds the key
    while the first goes on COPying straight in."""
    table = f"{schema}.customers"
    creator, other = PostgresSink(table=table), PostgresSink(table=table)
    write(pg_url, creator, lineage_batch(range(1, 11), "run-a"))
    write(pg_url, other, lineage_batch(range(1000, 1010), "run-b"))  # adds them, builds the key
    assert defaults(pg_url, table) == {} and comment(pg_url, table) is None
    assert pg_exec(
        pg_url, f"SELECT id, _etl_run_id FROM {table} WHERE id IN (1, 1000) ORDER BY id"
    ) == [
        (1, "run-a"),
        (1000, "run-b"),
    ]
    write(pg_url, creator, lineage_batch(range(11, 21), "run-a"))
    assert pg_exec(pg_url, f"SELECT count(*) FROM {table} WHERE _etl_run_id IS NULL") == [(0,)]
    assert pg_exec(
        pg_url, f"SELECT count(*) FROM {table} WHERE _etl_loaded_at = %s", (LOADED,)
    ) == [(30,)]
    assert "_etl_" not in copied_columns[0] and "_etl_" in copied_columns[-1]


def test_a_writer_adding_the_columns_waits_for_the_batch_recording_their_values(
    pg_url: str, schema: str
) -> None:
    """The other writer reads what is pending only once the creator's first batch (its
    rows without lineage columns, and the comment recording their values) has committed:
    read before, it would find nothing recorded and add the columns empty for those rows."""
    table = f"{schema}.customers"
    creator, other = PostgresSink(table=table), PostgresSink(table=table)
    first = lineage_batch(range(1, 11), "run-a")
    with engine_for(pg_url).begin() as conn:  # the table is created in a transaction of its own
        creator.prepare(conn, first.schema, ["id"])
    with engine_for(pg_url).connect() as conn:
        with conn.begin():
            creator.write(conn, first, ["id"])
            done = threading.Event()
            second = threading.Thread(
                target=lambda: (
                    write(pg_url, other, lineage_batch(range(1000, 1010), "run-b")),
                    done.set(),
                )
            )
            second.start()
            assert not done.wait(0.5)  # waiting for the creator's batch
        second.join(30)
    assert done.is_set()
    assert pg_exec(pg_url, f"SELECT _etl_run_id, count(*) FROM {table} GROUP BY 1 ORDER BY 1") == [
        ("run-a", 10),
        ("run-b", 10),
    ]
