"""Cast(on_error=...) and Derive(on_error=...) against real PostgreSQL: unconvertible records go to quarantine one by
one (anonymized, counted in the error budget), or stop the run."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import etl_express as etl
from etl_express.sinks.postgres import PostgresSink
from etl_express.transformers import Cast, Derive
from tests.conftest import pg_exec
from tests.reliability_sources import HashEmail, ListSource

SCHEMA = pa.schema([("id", pa.int64()), ("email", pa.string()), ("amount", pa.string())])


def _rows(bad: set[int], n: int = 1000) -> list[dict]:
    return [
        {"id": i, "email": f"user{i}@example.com", "amount": "n/a" if i in bad else str(i)}
        for i in range(n)
    ]


def _pipeline(name, schema, rows, **kwargs):
    return etl.Pipeline(
        name,
        ListSource(rows, batch_size=250, schema=SCHEMA),
        transformers=[Cast({"amount": "float64", "id": "int64"}, **kwargs.pop("cast", {}))],
        anonymizers=[HashEmail()],
        sink=PostgresSink(f"{schema}.dst"),
        progress=False,
        **kwargs,
    )


def test_unconvertible_records_are_quarantined_one_by_one(pg_url, schema, pipeline_name):
    result = _pipeline(pipeline_name, schema, _rows({7, 500}), max_error_rate=0.01).run()
    assert result.ok
    assert (result.rows_read, result.rows_written, result.rows_quarantined) == (1000, 998, 2)
    assert result.rows_filtered == 0
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.dst")[0][0] == 998
    stored = pg_exec(
        pg_url,
        "SELECT record->>'id', record->>'email', stage, reason FROM etl_express.quarantine "
        "WHERE pipeline = %s ORDER BY 1",
        (pipeline_name,),
    )
    assert [r[0] for r in stored] == ["500", "7"]
    for _, email, stage, reason in stored:
        assert email.startswith("h_")  # anonymized before it was stored
        assert stage == "convert"
        assert "column 'amount'" in reason and "to double" in reason and "n/a" not in reason


def test_quarantined_casts_count_in_the_error_budget(pg_url, schema, pipeline_name):
    with pytest.raises(etl.QualityError) as info:
        _pipeline(pipeline_name, schema, _rows({1, 2, 3})).run()  # 0.3 % > 0.01 %
    assert "error rate" in str(info.value)
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.dst")[0][0] == 997  # committed


def test_on_error_fail_stops_the_run_naming_the_column(pg_url, schema, pipeline_name):
    pipeline = _pipeline(pipeline_name, schema, _rows({300}), cast={"on_error": "fail"})
    with pytest.raises(etl.ETLConfigError) as info:
        pipeline.run()
    assert "'amount'" in str(info.value) and "n/a" not in str(info.value)
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.dst")[0][0] == 250  # batch 0 only


def test_cast_rejects_an_unknown_policy():
    with pytest.raises(etl.ETLConfigError, match="on_error"):
        Cast({"a": "int64"}, on_error="skip")


def _derive_pipeline(name, schema, rows, **derive_kwargs):
    """amount_x2 = amount parsed as int64 times 2: "n/a" does not parse."""
    return etl.Pipeline(
        name,
        ListSource(rows, batch_size=250, schema=SCHEMA),
        transformers=[
            Derive(
                "amount_x2",
                lambda b: pc.multiply(pc.cast(b["amount"], pa.int64()), 2),
                **derive_kwargs,
            )
        ],
        anonymizers=[HashEmail()],
        sink=PostgresSink(f"{schema}.dst"),
        progress=False,
        max_error_rate=0.01,
    )


def test_derive_quarantines_the_records_its_expression_fails_on(pg_url, schema, pipeline_name):
    result = _derive_pipeline(pipeline_name, schema, _rows({3, 640, 999})).run()
    assert result.ok
    assert (result.rows_read, result.rows_written, result.rows_quarantined) == (1000, 997, 3)
    assert pg_exec(pg_url, f"SELECT sum(amount_x2) FROM {schema}.dst")[0][0] == 2 * (
        sum(range(1000)) - 3 - 640 - 999
    )
    stored = pg_exec(
        pg_url,
        "SELECT record->>'id', record->>'email', stage, reason FROM etl_express.quarantine "
        "WHERE pipeline = %s ORDER BY (record->>'id')::int",
        (pipeline_name,),
    )
    assert [r[0] for r in stored] == ["3", "640", "999"]
    for _, email, stage, reason in stored:
        assert email.startswith("h_") and stage == "convert"
        assert "column 'amount_x2'" in reason and "n/a" not in reason


def test_derive_on_error_fail_stops_naming_the_column_not_the_value(pg_url, schema, pipeline_name):
    with pytest.raises(etl.ETLError) as info:
        _derive_pipeline(pipeline_name, schema, _rows({10}), on_error="fail").run()
    assert "'amount_x2'" in str(info.value) and "n/a" not in str(info.value)
    with pytest.raises(etl.ETLConfigError, match="on_error"):
        Derive("x", lambda b: b["amount"], on_error="skip")
