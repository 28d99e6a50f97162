"""Finding 6 of issue 14: the keyset statement's values are safe whatever the source server's
``standard_conforming_strings``: a resumed read after a text key full of backslashes and quotes
reads exactly the rows after it, on both PostgreSQL reader paths."""

from __future__ import annotations

import uuid

import pytest

from etl_express import Pipeline
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource
from tests.conftest import pg_exec

NASTY = "\\') OR TRUE --"


@pytest.mark.parametrize("fast_path", [True, False], ids=["binary", "adbc"])
def test_resume_after_a_backslash_key_with_standard_strings_off(
    pg_url: str, schema: str, pipeline_name: str, fast_path: bool
) -> None:
    table = f"{schema}.src_{uuid.uuid4().hex[:6]}"
    pg_exec(pg_url, f'CREATE TABLE {table} (k text COLLATE "C" PRIMARY KEY, v int NOT NULL)')
    pg_exec(pg_url, f"INSERT INTO {table} VALUES ('A', 1), (%s, 1)", (NASTY,))
    # the source server's default: backslashes escape inside ordinary literals
    source_url = pg_url + "?options=-cstandard_conforming_strings%3Doff"
    assert pg_exec(source_url, "SHOW standard_conforming_strings") == [("off",)]

    def run() -> int:
        source = SQLSource(source_url, table, primary_key="k", cursor="v", fast_path=fast_path)
        sink = PostgresSink(f"{schema}.target")
        return Pipeline(pipeline_name, source, sink=sink, progress=False).run().rows_read

    assert run() == 2
    pg_exec(pg_url, f"INSERT INTO {table} VALUES ('B', 1), ('c', 2)")
    assert run() == 1  # only 'c': (1, 'B') sorts before the checkpoint (1, NASTY)
    assert run() == 0
    assert sorted(r[0] for r in pg_exec(pg_url, f"SELECT k FROM {schema}.target")) == sorted(
        ["A", NASTY, "c"]
    )
