"""JSON-like output for real: nested values (REST ``tags`` lists, ``address`` dicts) are
stored as ``jsonb`` and come back from ``etl.read`` as lists and dicts; ISO timestamps become
timestamps where a schema says so (a REST source declares one)."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa

import etl_express as etl
from etl_express.format import is_json_field, records_to_batch
from etl_express.sinks import PostgresSink
from etl_express.sources import RESTSource
from etl_express.testing import HTTPResponse, LocalHTTPServer
from tests.conftest import pg_exec

RECORDS = [
    {"id": 1, "tags": ["vip", "b2b"], "address": {"city": "Казань", "zip": "420000"}},
    {"id": 2, "tags": [], "address": {"city": "Омск", "lines": ["ул. Ленина, 1", None]}},
    {"id": 3, "tags": None, "address": None},
]


class Records(etl.Source):
    name, primary_key = "records", ["id"]

    def read(self, position=None, partition=None):
        if position is None:
            yield etl.Batch(RECORDS, position=1)


def test_nested_values_are_tagged_json_and_records_give_them_back() -> None:
    batch, rejected = records_to_batch(RECORDS)
    assert not rejected
    assert is_json_field(batch.schema.field("tags")) and is_json_field(
        batch.schema.field("address")
    )
    assert not is_json_field(batch.schema.field("id"))
    assert etl.Batch(RECORDS).to_records() == RECORDS


def test_nested_values_are_stored_as_jsonb_and_read_back_as_lists_and_dicts(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    target = f"{schema}.records"
    result = etl.Pipeline(
        pipeline_name,
        Records(),
        sink=PostgresSink(target),
        progress=False,
        not_pii={"address": "the made-up address of a JSON round trip"},
    ).run()
    assert result.rows_written == 3
    types = dict(
        pg_exec(
            pg_url,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'records'",
            (schema,),
        )
    )
    assert types["tags"] == "jsonb" and types["address"] == "jsonb"
    assert pg_exec(pg_url, f"SELECT tags -> 0, address ->> 'city' FROM {target} WHERE id = 1") == [
        ("vip", "Казань")
    ]
    got = [
        {k: r[k] for k in ("id", "tags", "address")}
        for r in etl.read(target, url=pg_url, order_by=["id"])
    ]
    assert got == RECORDS
    json.dumps(got)  # still JSON-like


def test_a_rest_source_declares_iso_timestamps(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    orders = [
        {"id": 1, "created_at": "2024-03-01T10:15:00Z", "items": [{"sku": "A", "qty": 2}]},
        {"id": 2, "created_at": "2024-03-01T13:15:00+03:00", "items": []},
        {"id": 3, "created_at": "yesterday", "items": []},
    ]
    server = LocalHTTPServer(lambda request: HTTPResponse(200, orders)).start()
    try:
        source = RESTSource(
            server.url,
            "orders",
            primary_key="id",
            schema=pa.schema([("created_at", pa.timestamp("us", tz="UTC"))]),  # the rest inferred
        )
        pipeline = etl.Pipeline(
            pipeline_name,
            source,
            sink=PostgresSink(f"{schema}.orders"),
            max_error_rate=0.5,
            progress=False,
        )
        result = pipeline.run()
    finally:
        server.stop()
    assert (result.rows_written, result.rows_quarantined) == (2, 1)  # "yesterday" set aside
    assert pg_exec(
        pg_url,
        "SELECT data_type FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = 'orders' AND column_name IN ('created_at', 'items') ORDER BY 1",
        (schema,),
    ) == [("jsonb",), ("timestamp with time zone",)]
    rows = pg_exec(pg_url, f"SELECT id, created_at FROM {schema}.orders ORDER BY id")
    moment = dt.datetime(2024, 3, 1, 10, 15, tzinfo=dt.timezone.utc)
    assert [(i, t.astimezone(dt.timezone.utc)) for i, t in rows] == [(1, moment), (2, moment)]
    back = list(etl.read(f"{schema}.orders", url=pg_url, order_by=["id"]))
    assert back[0]["created_at"] == "2024-03-01T10:15:00+00:00"
    assert back[0]["items"] == [{"sku": "A", "qty": 2}]
