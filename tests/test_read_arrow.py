"""etl.read_arrow and etl.read_pandas over a loaded table."""

from __future__ import annotations

import pyarrow as pa

import etl_express as etl
from etl_express.sinks import PostgresSink
from etl_express.testing import default_records
from tests.sinks.test_files import ListSource


def test_read_arrow_and_pandas(pg_url: str, schema: str, pipeline_name: str) -> None:
    rows = default_records(12)
    etl.Pipeline(
        pipeline_name, ListSource(rows), sink=PostgresSink(f"{schema}.clients"), progress=False
    ).run()
    table = etl.read_arrow(f"{schema}.clients", order_by=["id"])
    assert isinstance(table, pa.Table) and table.num_rows == 12
    assert table.column("id").to_pylist() == list(range(1, 13))
    assert table.schema.field("_etl_loaded_at").type.tz is not None
    frame = etl.read_pandas(f"{schema}.clients", columns=["id", "name"], limit=5, order_by=["id"])
    assert list(frame.columns) == ["id", "name"] and frame["name"].tolist()[0] == "Клиент 1"
    empty = etl.read_arrow(f"{schema}.clients", limit=0)
    assert empty.num_rows == 0 and "name" in empty.schema.names
