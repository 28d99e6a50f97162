"""PostgresSink(history=True) and etl.read(table, as_of=...): every version of every row, and
the table exactly as it stood after each run."""

from __future__ import annotations

import datetime as dt
import time

import pytest

import etl_express as etl
from etl_express.anonymizers import Pseudonymize
from etl_express.errors import ETLConfigError, SinkError
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource
from tests.conftest import pg_exec
from tests.reconcile.test_deletes import (
    KEY,
    _utc,
    assert_equal,
    deletes_check,
    make_source,
    source_rows,
)


def _pipeline(pg_url: str, src: str, target: str, name: str, **kw) -> etl.Pipeline:
    return etl.Pipeline(
        name,
        SQLSource(pg_url, src, primary_key="id", cursor="updated_at", batch_size=700),
        anonymizers=[Pseudonymize(["email"], key=KEY)],
        sink=PostgresSink(target, history=True),
        deletes="soft",
        progress=False,
        **kw,
    )


def _as_of(table: str, moment) -> dict:
    """The live rows as of ``moment``: its current versions, not deleted then."""
    rows = [
        r
        for r in etl.read(table, as_of=moment)
        if r["_etl_valid_to"] is None and r["_etl_deleted_at"] is None
    ]
    return {
        r["id"]: (
            r["name"],
            r["email"],
            r["amount"],
            _utc(dt.datetime.fromisoformat(r["updated_at"])),
        )
        for r in rows
    }


def _versions(pg_url: str, table: str) -> int:
    return pg_exec(pg_url, f"SELECT count(*) FROM {table}")[0][0]


def test_as_of_reproduces_the_source_after_each_of_three_runs(pg_url, schema, pipeline_name):
    src, target = f"{schema}.src", f"{schema}.hist"
    make_source(pg_url, src, 3000)
    p = _pipeline(pg_url, src, target, pipeline_name)
    snapshots = []

    def run_and_snapshot() -> etl.RunResult:
        result = p.run()
        time.sleep(0.01)
        moment = dt.datetime.now(dt.timezone.utc)
        snapshots.append((moment, source_rows(pg_url, src)))
        time.sleep(0.01)
        return result

    run_and_snapshot()
    assert _versions(pg_url, target) == 3000

    # run 2: updates with and without the cursor, deletes, inserts
    pg_exec(pg_url, f"UPDATE {src} SET name = name || ' v2', updated_at = now() WHERE id % 10 = 1")
    pg_exec(pg_url, f"UPDATE {src} SET amount = amount + 1 WHERE id % 10 = 2")  # cursor unmoved
    pg_exec(pg_url, f"DELETE FROM {src} WHERE id % 10 = 3")
    pg_exec(
        pg_url,
        f"INSERT INTO {src} SELECT g, 'new', 'n@mail.ru', 1, now() FROM generate_series(3001, 3100) g",
    )
    second = run_and_snapshot()
    assert deletes_check(second)["deletes_applied"] == 300
    # 300 changed + 300 silently changed: closed and re-versioned; 100 new rows
    assert _versions(pg_url, target) == 3000 + 300 + 300 + 100

    # run 3: a row changes again, a deleted key comes back, another is deleted
    pg_exec(pg_url, f"UPDATE {src} SET name = 'third', updated_at = now() WHERE id = 11")
    pg_exec(
        pg_url,
        f"INSERT INTO {src} VALUES (13, 'back', 'b@mail.ru', 2, timestamptz '2024-01-01')",
    )
    pg_exec(pg_url, f"DELETE FROM {src} WHERE id = 14")
    run_and_snapshot()

    for moment, expected in snapshots:
        assert_equal(_as_of(target, moment), expected)
    # before the first load there was nothing
    assert _as_of(target, snapshots[0][0] - dt.timedelta(hours=1)) == {}
    # an ISO string works as well, and so do the Arrow and pandas readers
    moment, expected = snapshots[1]
    assert len(_as_of(target, moment.isoformat())) == len(expected)
    table = etl.read_arrow(target, as_of=moment)
    assert table.num_rows == 3700 and "_etl_valid_from" in table.column_names  # all versions
    frame = etl.read_pandas(target, as_of=moment.isoformat(), columns=["id", "_etl_valid_to"])
    assert sorted(frame[frame["_etl_valid_to"].isna()]["id"]) == sorted(expected)
    # key 11 has three versions; the current one is the latest
    versions = pg_exec(
        pg_url,
        f"SELECT name, _etl_valid_to IS NULL FROM {target} WHERE id = 11 ORDER BY _etl_valid_from",
    )
    assert versions == [("name 11", False), ("name 11 v2", False), ("third", True)]
    # the deleted key 13's version was closed by the delete, then it came back
    closed = pg_exec(
        pg_url,
        f"SELECT _etl_deleted_at IS NOT NULL, _etl_valid_to IS NULL FROM {target} "
        "WHERE id = 13 ORDER BY _etl_valid_from",
    )
    assert closed == [(True, False), (False, True)]


def test_replays_and_unchanged_rows_create_no_version(pg_url, schema, pipeline_name):
    src, target = f"{schema}.src", f"{schema}.hist"
    make_source(pg_url, src, 2000)
    p = _pipeline(pg_url, src, target, pipeline_name)
    p.run()
    before = _versions(pg_url, target)
    p.reset()  # every batch is read and written again: a replay of the whole load
    replay = p.run()
    assert replay.rows_written == 2000
    assert _versions(pg_url, target) == before == 2000
    assert (
        pg_exec(pg_url, f"SELECT count(*) FROM {target} WHERE _etl_valid_to IS NULL")[0][0] == 2000
    )
    checks = {c.name: c.status for c in replay.checks}
    assert checks["duplicate_keys"] == "passed"


def test_history_refuses_what_it_cannot_keep(pg_url, schema, pipeline_name):
    pg_exec(pg_url, f"CREATE TABLE {schema}.plain (id bigint PRIMARY KEY, name text)")
    with pytest.raises(ETLConfigError, match="keeps no history"):
        list(etl.read(f"{schema}.plain", as_of="2024-01-01"))
    with pytest.raises(ETLConfigError, match="not an ISO 8601"):
        list(etl.read(f"{schema}.plain", as_of="yesterday"))
    with pytest.raises(ETLConfigError, match="write_mode='upsert'"):
        PostgresSink(f"{schema}.x", history=True, write_mode="append")
    make_source(pg_url, f"{schema}.src", 10)
    p = etl.Pipeline(
        pipeline_name,
        SQLSource(pg_url, f"{schema}.src", primary_key="id"),
        sink=PostgresSink(f"{schema}.plain", history=True),
        progress=False,
        anonymizers=[Pseudonymize(["email"], key=KEY)],
    )
    with pytest.raises(SinkError, match="without history columns"):
        p.run()
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.plain") == [(0,)]


def test_as_of_returns_what_etl_read_returned_at_that_moment(pg_url, schema, pipeline_name):
    """Snapshots of etl.read taken after each run equal etl.read(as_of=) of their moment later,
    through inserts, updates, a soft delete, a key coming back and a hard delete (which erases
    the key's versions from every moment)."""
    src, target = f"{schema}.src", f"{schema}.hist"
    make_source(pg_url, src, 6)
    snapshots = []

    def run_and_snapshot(deletes: str = "soft") -> None:
        p = _pipeline(pg_url, src, target, pipeline_name)
        p.deletes = deletes
        p.run()
        time.sleep(0.01)
        moment = dt.datetime.now(dt.timezone.utc)
        snapshots.append((moment, _sorted(etl.read(target))))
        time.sleep(0.01)

    run_and_snapshot()
    pg_exec(pg_url, f"UPDATE {src} SET name = 'second', updated_at = now() WHERE id = 2")
    pg_exec(pg_url, f"INSERT INTO {src} VALUES (7, 'new', 'n@mail.ru', 1, now())")
    run_and_snapshot()
    pg_exec(pg_url, f"DELETE FROM {src} WHERE id IN (3, 4)")
    run_and_snapshot()  # soft: 3 and 4 marked deleted
    pg_exec(pg_url, f"INSERT INTO {src} VALUES (3, 'back', 'b@mail.ru', 2, now())")
    pg_exec(pg_url, f"UPDATE {src} SET name = 'third', updated_at = now() WHERE id = 2")
    run_and_snapshot()
    pg_exec(pg_url, f"DELETE FROM {src} WHERE id = 5")
    run_and_snapshot("hard")  # key 5 erased
    deleted_at = [r["_etl_deleted_at"] for r in snapshots[2][1] if r["id"] == 4]
    assert deleted_at[0] is not None and len(snapshots[-1][1]) == 9  # 6 + 2 + 2 versions - 1

    for moment, seen in snapshots:
        assert _sorted(etl.read(target, as_of=moment)) == [r for r in seen if r["id"] != 5]
    # as of the first moment, keys 3 and 4 were live: no delete mark, no end of validity
    first = {r["id"]: r for r in etl.read(target, as_of=snapshots[0][0])}
    assert first[4]["_etl_deleted_at"] is None and first[4]["_etl_valid_to"] is None


def _sorted(rows) -> list[dict]:
    return sorted(rows, key=lambda r: (r["id"], r["_etl_valid_from"]))
