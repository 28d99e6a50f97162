"""Finding 1 and 7 of issue 14: names never merge, never get cut silently, never escape quoting.

Keys that collide after snake_casing are refused on the dict path (one record, several records,
several batches), on the Arrow path, from REST and from JSONL files; identifiers over
PostgreSQL's 63 bytes are shortened by the documented hash rule (columns) or refused (tables);
a table name holding quotes works exactly, quality checks included.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from etl_express import Batch, ETLConfigError, Pipeline, Source
from etl_express.format import (
    ColumnCollisionError,
    canonicalize,
    normalize_name,
    records_to_batch,
    shorten_identifier,
)
from etl_express.sinks import PostgresSink
from etl_express.sources import FileSource, RESTSource
from etl_express.testing import HTTPRequest, HTTPResponse, LocalHTTPServer
from tests.conftest import pg_exec


class Pages(Source):
    def __init__(self, pages: list[list[dict[str, Any]]]):
        self.pages, self.name, self.primary_key = pages, "pages", ["id"]

    def read(self, position: Any = None, partition: Any = None) -> Iterator[Batch]:
        for i, page in enumerate(self.pages[position or 0 :], start=position or 0):
            yield Batch(page, position=i + 1)


@pytest.mark.parametrize(
    ("first", "second"),
    [("UserId", "user_id"), ("a.b", "a_b"), ("v", "V"), ("Full Name", "full_name")],
)
def test_colliding_keys_in_one_record_are_refused_naming_both(first: str, second: str) -> None:
    with pytest.raises(ColumnCollisionError) as info:
        records_to_batch([{"id": 1, first: "x", second: "y"}], source="crm")
    message = str(info.value)
    assert repr(first) in message and repr(second) in message and "crm" in message
    assert "'x'" not in message and "'y'" not in message  # names, never values


def test_colliding_keys_across_records_and_batches_are_refused() -> None:
    with pytest.raises(ColumnCollisionError):
        records_to_batch([{"id": 1, "UserId": 5}, {"id": 2, "user_id": 6}])
    origins: dict[str, str] = {}
    records_to_batch([{"id": 1, "UserId": 5}], origins=origins)
    records_to_batch([{"id": 2, "UserId": 7}], origins=origins)  # same spelling: fine
    with pytest.raises(ColumnCollisionError):
        records_to_batch([{"id": 3, "user_id": 6}], origins=origins)


def test_arrow_batches_refuse_colliding_names_too() -> None:
    batch = pa.record_batch({"UserId": [1], "user_id": [2]})
    with pytest.raises(ColumnCollisionError):
        canonicalize(batch)


def test_pipeline_run_over_pages_with_two_spellings_fails_and_writes_nothing(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    source = Pages([[{"id": 1, "UserId": 10}], [{"id": 2, "user_id": 20}]])
    with pytest.raises(ETLConfigError, match="'UserId' and 'user_id'"):
        Pipeline(pipeline_name, source, sink=PostgresSink(f"{schema}.t"), progress=False).run()
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.t") == [(1,)]  # page 1 only


def test_rest_records_with_colliding_keys_fail_the_run(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    def api(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(200, [{"id": 1, "userId": 1, "user_id": 2}])

    with LocalHTTPServer(api) as server:
        source = RESTSource(server.url, "items", primary_key="id")
        with pytest.raises(ETLConfigError, match="'userId' and 'user_id'"):
            Pipeline(pipeline_name, source, sink=PostgresSink(f"{schema}.t"), progress=False).run()
    assert pg_exec(pg_url, "SELECT to_regclass(%s)", (f"{schema}.t",)) == [(None,)]


def test_jsonl_records_with_colliding_keys_fail_the_run(
    tmp_path: Path, schema: str, pipeline_name: str
) -> None:
    (tmp_path / "a.jsonl").write_text(json.dumps({"id": 1, "v": 1, "V": 2}) + "\n")
    source = FileSource(tmp_path, "*.jsonl", primary_key="id")
    with pytest.raises(ETLConfigError, match="'v' and 'V'"):
        Pipeline(pipeline_name, source, sink=PostgresSink(f"{schema}.t"), progress=False).run()


def test_long_names_are_shortened_by_a_hash_and_land_distinct(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    # 40 Cyrillic letters = 80 bytes; two names sharing their first 62 bytes
    a, b = "Наименование" * 3 + "Полное", "Наименование" * 3 + "Краткое"
    assert len(normalize_name(a).encode()) <= 63
    assert normalize_name(a) != normalize_name(b)
    assert normalize_name(a) == shorten_identifier(normalize_name(a))  # stable
    source = Pages([[{"id": 1, a: "x", b: "y"}]])
    Pipeline(pipeline_name, source, sink=PostgresSink(f"{schema}.t"), progress=False).run()
    rows = pg_exec(
        pg_url,
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = 't' AND column_name NOT LIKE '\\_etl%%' ORDER BY 1",
        (schema,),
    )
    assert sorted(r[0] for r in rows) == sorted(["id", normalize_name(a), normalize_name(b)])
    got = pg_exec(pg_url, f'SELECT "{normalize_name(a)}", "{normalize_name(b)}" FROM {schema}.t')
    assert got == [("x", "y")]


def test_a_table_name_over_63_bytes_is_refused_before_anything_is_written(schema: str) -> None:
    with pytest.raises(ETLConfigError, match="63"):
        PostgresSink(f"{schema}." + "т" * 32)  # 64 bytes
    with pytest.raises(ETLConfigError, match="63"):
        PostgresSink(f"{schema}." + "t" * 70)
    PostgresSink(f"{schema}." + "т" * 31)  # 62 bytes: fine


def test_an_arrow_column_over_63_bytes_from_a_transformer_is_refused_by_the_sink(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    class Wide(Source):
        name, primary_key = "wide", ["id"]

        def read(self, position: Any = None, partition: Any = None) -> Iterator[Batch]:
            yield Batch([{"id": 1}], position=1)

    from etl_express.transformers import Transformer

    class AddLong(Transformer):
        def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
            return batch.append_column("x" * 70, pa.array([1]))

    with pytest.raises(Exception, match="63"):
        Pipeline(
            pipeline_name,
            Wide(),
            transformers=[AddLong()],
            sink=PostgresSink(f"{schema}.t"),
            progress=False,
        ).run()
    assert pg_exec(pg_url, "SELECT to_regclass(%s)", (f"{schema}.t",)) == [(None,)]


def test_a_table_name_with_quotes_works_exactly_quality_checks_included(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    source = Pages([[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]])
    result = Pipeline(
        pipeline_name, source, sink=PostgresSink(f'{schema}."evil"'), progress=False
    ).run()
    assert result.status == "succeeded"
    statuses = {c.name: c.status for c in result.checks}
    assert statuses["duplicate_keys"] == "passed" and statuses["target_count"] == "passed"
    assert pg_exec(pg_url, f'SELECT count(*) FROM {schema}."""evil"""') == [(2,)]
