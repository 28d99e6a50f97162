"""``etl-express status`` and ``etl.status()`` over stores filled by real pipeline runs: exit
codes for fresh, stale and failed stores, freshness declared and checked, availability."""

# detect_pii="off" below: these tests load made-up people raw on purpose (not what they
# test); the personal-data detector has its own tests (tests/anonymizers/test_detection.py)

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

import etl_express as etl
from etl_express._durations import format_duration, parse_duration
from etl_express._status import availability
from tests.conftest import pg_exec
from tests.reliability_sources import CUSTOMER_SCHEMA, ListSource, customers
from tests.status.stores import (
    CANARY_ERROR,
    age_back,
    fresh_database,
    run_failed,
    run_ok,
    run_stale,
)


@pytest.fixture
def store(pg_url):
    with fresh_database(pg_url) as url:
        yield url


@pytest.fixture
def data_schema() -> str:
    return "data_" + uuid.uuid4().hex[:6]


def status_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a fresh process, as cron or a monitor runs it."""
    env = {k: v for k, v in os.environ.items() if k != "ETL_EXPRESS_DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "etl_express.cli", "status", "--url", url, *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def by_name(records: list[dict]) -> dict[str, dict]:
    return {r["pipeline"]: r for r in records}


def test_fresh_store_exits_0_and_reports_the_last_run(store, data_schema):
    run_ok(store, data_schema)

    out = status_cli(store)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "orders_ok" in out.stdout and "fresh (age" in out.stdout and "limit 26h" in out.stdout

    js = status_cli(store, "--json")
    assert js.returncode == 0
    (record,) = json.loads(js.stdout)
    assert record["pipeline"] == "orders_ok"
    assert (record["status"], record["fresh"], record["ok"]) == ("succeeded", True, True)
    assert (record["rows"], record["rows_read"], record["freshness"]) == (300, 300, "26h")
    assert record["duration_s"] > 0 and record["rows_per_s"] > 0
    assert record["last_success_at"] == record["finished_at"]
    assert 0 < record["availability_24h"] <= 1 and 0 < record["availability_7d"] <= 1
    moving = ("age_s", "availability_24h", "availability_7d")  # change as time passes
    (python,) = etl.status(store)  # the same figures in Python
    assert {k: v for k, v in python.items() if k not in moving} == {
        k: v for k, v in record.items() if k not in moving
    }


def test_stale_store_exits_1(store, data_schema):
    run_ok(store, data_schema)
    run_stale(store, data_schema, freshness="1h", hours_back=3)

    out = status_cli(store)
    assert out.returncode == 1, out.stdout + out.stderr
    stale_line = next(line for line in out.stdout.splitlines() if "legacy_stale" in line)
    assert "STALE" in stale_line and "limit 1h" in stale_line and stale_line.startswith("FAIL")

    js = status_cli(store, "--json")
    assert js.returncode == 1
    records = by_name(json.loads(js.stdout))
    stale = records["legacy_stale"]
    assert (stale["status"], stale["fresh"], stale["ok"]) == ("succeeded", False, False)
    assert stale["age_s"] == pytest.approx(3 * 3600, abs=120)
    # fresh for the first of the three hours since its load: a third of the time
    assert stale["availability_24h"] == pytest.approx(1 / 3, abs=0.02)
    assert records["orders_ok"]["ok"] is True


def test_tiny_freshness_goes_stale_without_editing_the_store(store, data_schema):
    run_ok(store, data_schema, freshness="1s")
    time.sleep(1.5)
    out = status_cli(store, "--json")
    assert out.returncode == 1
    assert json.loads(out.stdout)[0]["fresh"] is False


def test_failed_store_exits_1_and_shows_the_error(store, data_schema):
    run_failed(store, data_schema)

    out = status_cli(store)
    assert out.returncode == 1
    assert "failed" in out.stdout and CANARY_ERROR in out.stdout

    js = status_cli(store, "--json")
    assert js.returncode == 1
    (record,) = json.loads(js.stdout)
    # its earlier run loaded recently, so the data is fresh, but the last run failed
    assert (record["status"], record["fresh"], record["ok"]) == ("failed", True, False)
    assert CANARY_ERROR in record["error"]


def test_a_pipeline_without_freshness_is_judged_on_its_last_run(store, data_schema):
    run_ok(store, data_schema, freshness=None, name="no_sla")
    (record,) = etl.status(store)
    assert (record["fresh"], record["freshness"], record["availability_24h"]) == (None, None, None)
    assert record["ok"] is True
    assert status_cli(store).returncode == 0

    age_back(store, "no_sla", 24 * 30)  # a month old: still not stale without a declaration
    assert status_cli(store).returncode == 0
    assert "no freshness declared" in status_cli(store).stdout


def test_a_database_without_a_store_exits_2(store):
    out = status_cli(store)
    assert out.returncode == 2
    assert "no etl-express store" in out.stderr and "etl_express" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_unreachable_store_exits_2_without_a_traceback():
    out = status_cli("postgresql://nobody:s3cretpass@127.0.0.1:1/none")
    assert out.returncode == 2
    assert "cannot read the store" in out.stderr and "s3cretpass" not in out.stderr
    assert "Traceback" not in out.stderr


def test_an_empty_store_exits_0_and_a_pipeline_that_never_ran_exits_1(store, data_schema):
    from etl_express.store.checkpoints import CheckpointStore

    CheckpointStore(store).ensure_schema()
    out = status_cli(store)
    assert out.returncode == 0 and "no pipeline has run" in out.stdout

    etl.Pipeline(
        "never",
        ListSource([], schema=CUSTOMER_SCHEMA),
        sink=etl.sinks.PostgresSink(f"{data_schema}.e", url=store),
        progress=False,
        detect_pii="off",
    ).reset()  # opens the store, which declares the pipeline; no run
    out = status_cli(store)
    assert out.returncode == 1 and "never run" in out.stdout


def test_freshness_is_declared_in_the_store_and_checked_with_every_run(store, data_schema):
    def pipeline():
        return etl.Pipeline(
            "declared",
            ListSource(customers(10), schema=CUSTOMER_SCHEMA),
            sink=etl.sinks.PostgresSink(f"{data_schema}.d", url=store),
            freshness=dt.timedelta(hours=2),
            progress=False,
            detect_pii="off",
        )

    first = pipeline().run()
    check = next(c for c in first.checks if c.name == "freshness")
    assert (check.status, check.details["freshness"]) == ("passed", "2h")
    assert pg_exec(
        store, "SELECT freshness_s FROM etl_express.pipelines WHERE pipeline = 'declared'"
    ) == [(7200.0,)]

    age_back(store, "declared", 5)  # the last load was 5 h ago: stale before this run
    second = pipeline().run(reset=True)
    check = next(c for c in second.checks if c.name == "freshness")
    assert check.status == "warned" and check.details["gap_s"] > 4 * 3600
    stored = pg_exec(
        store,
        "SELECT status FROM etl_express.quality_checks WHERE run_id = %s AND name = 'freshness'",
        (second.run_id,),
    )
    assert stored == [("warned",)]


@pytest.mark.parametrize(
    "text, seconds",
    [("90m", 5400), ("26h", 93600), ("7d", 604800), ("1h30m", 5400), ("45s", 45), ("2w", 1209600)],
)
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds
    assert parse_duration(format_duration(seconds)).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["26", "abc", "0h", "-5m", "5x", "1h soon", 26, 1.5])
def test_a_bad_freshness_is_refused_naming_the_pipeline(bad):
    with pytest.raises(etl.ETLConfigError) as info:
        etl.Pipeline("crm", ListSource([]), freshness=bad, detect_pii="off")
    assert "freshness" in str(info.value) and "pipeline=crm" in str(info.value)
    assert '"26h"' in str(info.value)


def test_availability_is_the_covered_share_of_the_window():
    at = dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)
    h = dt.timedelta(hours=1)
    # loads 24 h, 12 h and 2 h ago with a 4 h freshness: fresh 4 + 4 + 2 hours of 24
    loads = [at - 24 * h, at - 12 * h, at - 2 * h]
    assert availability(loads, 4 * 3600, 86400, at) == pytest.approx(10 / 24)
    # overlapping intervals count once
    assert availability([at - 3 * h, at - 2 * h], 4 * 3600, 86400, at) == pytest.approx(3 / 24)
    # a load before the window still covers its start
    assert availability([at - 25 * h], 2 * 3600, 86400, at) == pytest.approx(1 / 24)
    # the window starts at the pipeline's first run
    assert availability([at - 2 * h], 3600, 86400, at, since=at - 4 * h) == pytest.approx(1 / 4)
    assert availability([], 3600, 86400, at) == 0.0


def test_the_documented_prometheus_recipe_writes_valid_metrics(store, data_schema, tmp_path):
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "dashboard.md").read_text()
    section = doc[doc.index("### Prometheus") :]
    script = section[section.index("```python") + len("```python") : section.index("```\n", 10)]
    run_ok(store, data_schema)
    run_stale(store, data_schema, freshness="1h", hours_back=3)
    out = tmp_path / "etl_express.prom"
    recipe = tmp_path / "recipe.py"
    recipe.write_text(script)
    env = {**os.environ, "ETL_EXPRESS_DATABASE_URL": store, "ETL_EXPRESS_PROM_FILE": str(out)}
    subprocess.run([sys.executable, str(recipe)], check=True, env=env, timeout=120)

    samples = {}
    for line in out.read_text().splitlines():
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    assert samples["etl_express_up"] == 1
    assert samples['etl_express_pipeline_ok{pipeline="orders_ok"}'] == 1
    assert samples['etl_express_pipeline_ok{pipeline="legacy_stale"}'] == 0
    assert samples['etl_express_pipeline_fresh{pipeline="legacy_stale"}'] == 0
    assert samples['etl_express_freshness_seconds{pipeline="legacy_stale"}'] == 3600
    assert samples['etl_express_last_run_rows{pipeline="orders_ok"}'] == 300
    ratio = samples['etl_express_availability_ratio{pipeline="legacy_stale",window="24h"}']
    assert ratio == pytest.approx(1 / 3, abs=0.02)
    assert samples['etl_express_last_success_timestamp_seconds{pipeline="orders_ok"}'] > 0
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_a_running_pipeline_is_judged_on_its_last_completed_run(store, data_schema):
    import threading

    from tests.reliability_sources import SlowDown

    run_ok(store, data_schema, name="busy")
    slow = etl.Pipeline(
        "busy",
        ListSource(customers(60), batch_size=20, schema=CUSTOMER_SCHEMA),
        transformers=[SlowDown(1.0)],
        sink=etl.sinks.PostgresSink(f"{data_schema}.orders", url=store),
        freshness="26h",
        progress=False,
        detect_pii="off",
    )
    worker = threading.Thread(target=slow.run, kwargs={"reset": True})
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while etl.status(store)[0]["status"] != "running":
            assert time.monotonic() < deadline, "the run never showed as running"
            time.sleep(0.1)
        (record,) = etl.status(store)
        assert record["last_completed_status"] == "succeeded" and record["ok"] is True
        assert record["duration_s"] is None and record["finished_at"] is None
        assert status_cli(store).returncode == 0
    finally:
        worker.join()
    assert etl.status(store)[0]["status"] == "succeeded"


def test_the_dashboards_connection_and_the_commands_read_the_same_records(store, data_schema):
    """``etl-express status`` reads on a plain psycopg connection, the dashboard on its
    SQLAlchemy one (in its read-only transaction): the same records, value for value."""
    from etl_express._status import pipeline_records
    from etl_express.logs import flush_logs
    from etl_express.store.checkpoints import open_store, read_only
    from etl_express.store.database import connect

    run_ok(store, data_schema)
    run_stale(store, data_schema, freshness="1h", hours_back=3)
    assert flush_logs()  # the runs' log lines are in before the database goes
    at = dt.datetime.now(dt.timezone.utc)
    with connect(store, read_only=True) as conn:
        light = pipeline_records(conn, at)
    with read_only(open_store(store, create=False).engine) as conn:
        full = pipeline_records(conn, at)
    assert [r["pipeline"] for r in light] == ["legacy_stale", "orders_ok"]
    assert light == full
