"""Key-set reconciliation: text and composite keys, a database that cannot hash (SQLite), and
REST sources with a key listing or a deleted-records endpoint."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

import etl_express as etl
from etl_express.errors import ETLConfigError
from etl_express.sinks import PostgresSink
from etl_express.sources import RESTSource, SQLSource
from etl_express.testing import HTTPResponse, LocalHTTPServer
from tests.conftest import pg_exec
from tests.reconcile.test_deletes import deletes_check


def _run(p: etl.Pipeline) -> dict[str, Any]:
    return deletes_check(p.run())


def test_text_keys_on_postgresql(pg_url, schema, pipeline_name):
    src, target = f"{schema}.src", f"{schema}.dst"
    pg_exec(pg_url, f"CREATE TABLE {src} (code text PRIMARY KEY, name text, n int)")
    pg_exec(
        pg_url,
        f"INSERT INTO {src} SELECT 'c-' || lpad(g::text, 5, '0'), 'name ' || g, g "
        "FROM generate_series(1, 3000) g",
    )
    p = etl.Pipeline(
        pipeline_name,
        SQLSource(pg_url, src, primary_key="code"),
        sink=PostgresSink(target),
        deletes="soft",
        progress=False,
    )
    first = _run(p)
    assert first["strategy"] == "key_set" and first["deletes_applied"] == 0
    assert first["rows_reread"] == 0  # the rows were just loaded with their hashes
    pg_exec(pg_url, f"DELETE FROM {src} WHERE n % 100 = 0")
    pg_exec(pg_url, f"UPDATE {src} SET name = 'changed' WHERE n = 7")
    second = _run(p)
    assert second["deletes_applied"] == 30 and second["rows_reread"] == 1
    marked = pg_exec(pg_url, f"SELECT count(*) FROM {target} WHERE _etl_deleted_at IS NOT NULL")
    assert marked == [(30,)]
    assert pg_exec(pg_url, f"SELECT name FROM {target} WHERE n = 7") == [("changed",)]


def test_composite_keys_hard(pg_url, schema, pipeline_name):
    src, target = f"{schema}.src", f"{schema}.dst"
    pg_exec(pg_url, f"CREATE TABLE {src} (a int, b text, v int, PRIMARY KEY (a, b))")
    pg_exec(
        pg_url,
        f"INSERT INTO {src} SELECT g % 50, 'k' || (g / 50), g FROM generate_series(0, 999) g",
    )
    p = etl.Pipeline(
        pipeline_name,
        SQLSource(pg_url, src, primary_key=["a", "b"]),
        sink=PostgresSink(target),
        deletes="hard",
        progress=False,
    )
    p.run()
    pg_exec(pg_url, f"DELETE FROM {src} WHERE a = 3")
    assert _run(p)["deletes_applied"] == 20
    assert pg_exec(pg_url, f"SELECT count(*), count(*) FILTER (WHERE a = 3) FROM {target}") == [
        (980, 0)
    ]


def test_a_database_that_cannot_hash_still_gets_its_deletes(
    pg_url, schema, pipeline_name, tmp_path
):
    path = tmp_path / "src.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (id integer PRIMARY KEY, name text)")
        conn.executemany("INSERT INTO items VALUES (?, ?)", [(i, f"n{i}") for i in range(1, 201)])
    conn.close()
    p = etl.Pipeline(
        pipeline_name,
        SQLSource(f"sqlite:///{path}", "items", primary_key="id"),
        sink=PostgresSink(f"{schema}.dst"),
        deletes="soft",
        progress=False,
    )
    p.run()
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM items WHERE id > 190")
    conn.close()
    counts = _run(p)
    assert counts["strategy"] == "key_set" and counts["deletes_applied"] == 10
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.dst WHERE _etl_deleted_at IS NULL") == [
        (190,)
    ]


class _API:
    def __init__(self, n: int):
        self.rows = [{"id": i, "name": f"r{i}"} for i in range(1, n + 1)]
        self.deleted: list[int] = []

    def __call__(self, request) -> HTTPResponse:
        page = int(request.query.get("page", 1))
        if request.path.endswith("/items"):
            data = self.rows
        elif request.path.endswith("/items/ids"):
            data = [{"id": r["id"]} for r in self.rows]
        elif request.path.endswith("/items/deleted"):
            data = [{"id": i} for i in self.deleted]
        else:
            return HTTPResponse(404, {"error": "no"})
        return HTTPResponse(200, {"items": data[(page - 1) * 50 : page * 50]})


@pytest.mark.parametrize("endpoint", ["keys_path", "deleted_path"])
def test_rest_sources_declare_a_key_listing_or_a_deleted_records_endpoint(
    endpoint, pg_url, schema, pipeline_name
):
    from etl_express.sources.rest import PageNumberPaginator

    api = _API(230)
    with LocalHTTPServer(api) as server:
        kw = {endpoint: "items/ids" if endpoint == "keys_path" else "items/deleted"}
        source = RESTSource(
            server.url,
            "items",
            paginator=PageNumberPaginator(),
            records_path="items",
            primary_key="id",
            **kw,
        )
        p = etl.Pipeline(
            pipeline_name,
            source,
            sink=PostgresSink(f"{schema}.dst"),
            deletes="soft",
            progress=False,
        )
        p.run()
        gone = [5, 77, 230]
        api.rows = [r for r in api.rows if r["id"] not in gone]
        api.deleted = gone
        counts = _run(p)
    assert counts["strategy"] == ("key_listing" if endpoint == "keys_path" else "deleted_records")
    assert counts["deletes_applied"] == 3
    marked = pg_exec(pg_url, f"SELECT id FROM {schema}.dst WHERE _etl_deleted_at IS NOT NULL")
    assert sorted(r[0] for r in marked) == gone


def test_a_rest_source_without_an_endpoint_is_refused(pg_url, schema, pipeline_name):
    source = RESTSource("http://127.0.0.1:9", "items", primary_key="id")
    p = etl.Pipeline(
        pipeline_name, source, sink=PostgresSink(f"{schema}.dst"), deletes="soft", progress=False
    )
    with pytest.raises(ETLConfigError, match="keys_path= or deleted_path="):
        p.run()
