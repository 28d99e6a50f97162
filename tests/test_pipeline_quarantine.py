"""Quarantine and the error budget, against a real PostgreSQL."""

from __future__ import annotations

import pytest

import etl_express as etl
from etl_express._engine import quarantine
from etl_express.sinks.postgres import PostgresSink
from etl_express.store import quarantine as stored_quarantine
from tests.conftest import pg_exec
from tests.reliability_sources import CUSTOMER_SCHEMA, HashEmail, ListSource, customers


def _pipeline(name: str, schema: str, rows: list[dict], **kw) -> etl.Pipeline:
    source = ListSource(rows, batch_size=kw.pop("batch_size", 5000), schema=CUSTOMER_SCHEMA)
    return etl.Pipeline(
        name, source, anonymizers=[HashEmail()], sink=PostgresSink(f"{schema}.customers"), **kw
    )


def _ids(pg_url: str, sql: str) -> set[int]:
    return {int(r[0]) for r in pg_exec(pg_url, sql)}


def test_half_a_percent_malformed_is_quarantined_and_fails_the_budget(
    pg_url, schema, pipeline_name
):
    rows = customers(20_000)
    bad = set(range(7, 20_000, 200))  # 100 rows = 0.5 %
    for i in bad:
        rows[i]["amount"] = f"not a number {i}"
    pipeline = _pipeline(pipeline_name, schema, rows)

    with pytest.raises(etl.QualityError) as err:
        pipeline.run()

    message = str(err.value)
    assert (
        "error rate 0.5000%" in message
        and "100 of 20000" in message
        and "max_error_rate 0.0100%" in message
    )
    result = err.value.result
    assert (result.status, result.rows_read, result.rows_written, result.rows_quarantined) == (
        "failed",
        20_000,
        19_900,
        100,
    )
    landed = _ids(pg_url, f"SELECT id FROM {schema}.customers")
    assert landed == set(range(20_000)) - bad  # every valid row committed despite the failure
    quarantined = pg_exec(
        pg_url,
        "SELECT record->>'id', stage, reason, run_id FROM etl_express.quarantine "
        "WHERE pipeline = %s",
        (pipeline_name,),
    )
    assert {int(r[0]) for r in quarantined} == bad
    assert {r[1] for r in quarantined} == {"convert"}
    assert all("amount" in r[2] and "not a number" not in r[2] for r in quarantined)
    assert {r[3] for r in quarantined} == {result.run_id}
    status, n_read, n_q = pg_exec(
        pg_url,
        "SELECT status, rows_read, rows_quarantined FROM etl_express.runs WHERE run_id = %s",
        (result.run_id,),
    )[0]
    assert (status, n_read, n_q) == ("failed", 20_000, 100)
    rate = pg_exec(
        pg_url,
        "SELECT status, details->>'error_rate' FROM etl_express.quality_checks "
        "WHERE run_id = %s AND name = 'error_rate'",
        (result.run_id,),
    )
    assert rate == [("failed", "0.005")]


def test_a_tiny_error_rate_stays_within_the_budget(pg_url, schema, pipeline_name):
    rows = customers(20_000)
    rows[12_345]["amount"] = "oops"  # 0.005 %
    result = _pipeline(pipeline_name, schema, rows).run()

    assert result.ok and result.rows_quarantined == 1 and result.rows_written == 19_999
    assert result.error_rate == pytest.approx(0.00005)
    assert _ids(
        pg_url,
        f"SELECT record->>'id' FROM etl_express.quarantine WHERE pipeline = '{pipeline_name}'",
    ) == {12_345}


def test_rows_the_target_refuses_are_isolated_and_the_rest_lands(pg_url, schema, pipeline_name):
    pg_exec(
        pg_url,
        f"CREATE TABLE {schema}.customers (id bigint PRIMARY KEY, name text NOT NULL, "
        f"email text UNIQUE, amount bigint CHECK (amount >= 0))",
    )
    rows = customers(3000)
    rows[10]["name"] = None  # NOT NULL
    rows[1500]["amount"] = -1  # CHECK
    rows[2999]["email"] = rows[5]["email"]  # UNIQUE on a non-key column
    pipeline = _pipeline(pipeline_name, schema, rows, batch_size=1000, max_error_rate=0.01)

    result = pipeline.run()

    assert (result.rows_written, result.rows_quarantined) == (2997, 3)
    assert _ids(pg_url, f"SELECT id FROM {schema}.customers") == set(range(3000)) - {10, 1500, 2999}
    items = {
        int(q["record"]["id"]): q for q in stored_quarantine.records(pipeline.store, pipeline_name)
    }
    assert set(items) == {10, 1500, 2999}
    assert (
        "not-null" in items[10]["reason"]
        and f'"{schema}' not in items[10]["reason"].split("relation")[0]
    )
    assert "customers_amount_check" in items[1500]["reason"]
    assert "customers_email_key" in items[2999]["reason"]
    assert all(q["stage"] == "sink" and q["run_id"] == result.run_id for q in items.values())
    # anonymized before being stored, and no raw value in any reason
    stored = pg_exec(
        pg_url,
        "SELECT record::text, reason FROM etl_express.quarantine WHERE pipeline = %s",
        (pipeline_name,),
    )
    assert not any(
        "@example.com" in record or "@example.com" in reason for record, reason in stored
    )
    assert not any("-1" in reason or "name 10" in reason for _, reason in stored)
    assert items[2999]["record"]["email"].startswith("h_")


def test_replay_resubmits_fixed_records_and_marks_them(pg_url, schema, pipeline_name):
    pg_exec(
        pg_url,
        f"CREATE TABLE {schema}.customers (id bigint PRIMARY KEY, name text, email text, "
        f"amount bigint CONSTRAINT small CHECK (amount < 990))",
    )
    rows = customers(1000)  # amounts 990..999 violate the check
    pipeline = _pipeline(pipeline_name, schema, rows, max_error_rate=0.05)
    assert pipeline.run().rows_quarantined == 10

    still = pipeline.replay_quarantine()
    assert (still.replayed, still.still_failing) == (0, 10)  # cause not fixed yet: nothing moves

    pg_exec(pg_url, f"ALTER TABLE {schema}.customers DROP CONSTRAINT small")
    done = pipeline.replay_quarantine()

    assert (done.replayed, done.still_failing) == (10, 0)
    assert pg_exec(
        pg_url, f"SELECT count(*), count(*) FILTER (WHERE amount >= 990) FROM {schema}.customers"
    ) == [(1000, 10)]
    marked = pg_exec(
        pg_url,
        "SELECT count(*) FILTER (WHERE replayed_at IS NOT NULL) FROM etl_express.quarantine "
        "WHERE pipeline = %s",
        (pipeline_name,),
    )
    assert marked == [(10,)]
    assert stored_quarantine.records(pipeline.store, pipeline_name) == []
    lineage = pg_exec(
        pg_url, f"SELECT DISTINCT _etl_run_id FROM {schema}.customers WHERE amount >= 990"
    )
    assert lineage == [(done.run_id,)]


def test_a_batch_refused_wholesale_fails_instead_of_bisecting_forever(
    pg_url, schema, pipeline_name, monkeypatch
):
    monkeypatch.setattr(quarantine, "BISECT_LIMIT", 20)
    pg_exec(
        pg_url,
        f"CREATE TABLE {schema}.customers (id bigint PRIMARY KEY, name text, email text, "
        f"amount bigint CHECK (amount < 0))",
    )
    pipeline = _pipeline(pipeline_name, schema, customers(500), batch_size=500, max_error_rate=1.0)
    with pytest.raises(etl.SinkError, match="more than 20 rows of one batch were refused"):
        pipeline.run()
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.customers") == [(0,)]
