"""The commands that only read the store stay light: each runs in a fresh process (the console
entry point, as a user or a monitor runs it) and must answer without loading SQLAlchemy,
pyarrow, the engine, the sinks or the logging machinery, and without writing to the store (no
schema created, no migration of a current store). How long they take is measured in
benchmarks/cli_time.py; this checks what they load and what they write, not how fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from etl_express.logs import flush_logs
from etl_express.store.database import SCHEMA_VERSION
from etl_express.store.schema import MIGRATIONS
from tests.conftest import pg_exec
from tests.status.stores import fresh_database, run_quarantining

#: modules a store-reading command must not load (a prefix covers its submodules)
HEAVY = (
    "sqlalchemy",
    "pyarrow",
    "pandas",
    "httpx",
    "etl_express.pipeline",
    "etl_express._engine",
    "etl_express.sinks",
    "etl_express.sources",
    "etl_express.format",
    "etl_express.logs",
    "etl_express.store.runlog",
    "etl_express.store.checkpoints",
    "etl_express.retry",
    "etl_express.secrets",
)

PIPELINE = "people_quarantine"

#: (the command line, a text its answer holds)
COMMANDS = [
    (["runs"], PIPELINE),
    (["runs", PIPELINE, "--json"], '"status": "succeeded"'),
    (["status"], PIPELINE),
    (["status", "--json"], '"pipeline": "people_quarantine"'),
    (["logs", "show"], "run succeeded"),
    (["logs", "tail", PIPELINE, "-n", "3"], PIPELINE),
    (["quarantine", "list", PIPELINE], "cannot convert a str value"),
]

PROBE = """
import atexit, json, sys
atexit.register(lambda: print("\\nMODULES " + json.dumps(sorted(sys.modules))))
sys.argv = ["etl-express", *sys.argv[1:]]
from etl_express.cli import main
main()
"""


def cli(url: str, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """``etl-express ARGS --url URL`` in a fresh process, and the modules it had loaded."""
    env = {k: v for k, v in os.environ.items() if k != "ETL_EXPRESS_DATABASE_URL"}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args, "--url", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    out, _, modules = proc.stdout.rpartition("\nMODULES ")
    proc.stdout = out
    return proc, set(json.loads(modules))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def schema_state(url: str) -> list[tuple]:
    """Every object of the store's schema and its recorded version (what a write changes)."""
    objects = pg_exec(
        url,
        "SELECT c.relname, c.relkind, a.attname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE n.nspname = 'etl_express' ORDER BY 1, 3",
    )
    if not objects:
        return []
    return objects + pg_exec(url, "SELECT key, value FROM etl_express.meta ORDER BY key")


@pytest.fixture(scope="module")
def store(pg_url: str) -> Iterator[str]:
    """A store with one pipeline's run, its log lines and two quarantined records."""
    with fresh_database(pg_url) as url:
        run_quarantining(url, "data_light")
        assert flush_logs()  # its log lines are in the store before the commands read them
        yield url


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c, _ in COMMANDS])
def test_a_reading_command_loads_nothing_heavy_and_writes_nothing(
    store: str, command: tuple[list[str], str]
) -> None:
    args, expected = command
    before = schema_state(store)
    proc, modules = cli(store, *args)
    assert proc.returncode in (0, 1), proc.stderr  # status exits 1 for a stale pipeline
    assert expected in proc.stdout, proc.stdout
    assert heavy_in(modules) == []
    assert "psycopg" in modules  # the one driver it reads with
    assert schema_state(store) == before


def test_a_database_without_a_store_reads_as_empty_and_is_left_without_one(pg_url: str) -> None:
    with fresh_database(pg_url) as url:
        runs, modules = cli(url, "runs")
        logs, _ = cli(url, "logs", "show")
        unknown, _ = cli(url, "quarantine", "list", "nope")
        assert (runs.returncode, runs.stdout.strip()) == (0, "no runs yet")
        assert logs.stdout.strip().startswith("no log lines for any run in the store")
        assert unknown.returncode == 1 and "unknown pipeline 'nope'" in unknown.stderr
        assert "none yet" in unknown.stderr
        assert heavy_in(modules) == []
        assert schema_state(url) == []  # no schema, no table: reading created nothing


def test_the_version_check_compares_with_what_the_migrations_reach() -> None:
    assert MIGRATIONS[-1][0] == SCHEMA_VERSION


def test_a_store_of_an_older_version_is_migrated_once_then_read(store: str) -> None:
    pg_exec(store, "ALTER TABLE etl_express.quarantine DROP COLUMN stage")
    pg_exec(store, "DROP TABLE etl_express.pipelines")
    pg_exec(store, "DROP INDEX etl_express.ix_logs_run")
    pg_exec(store, "UPDATE etl_express.meta SET value = '1' WHERE key = 'schema_version'")
    listed, modules = cli(store, "quarantine", "list", PIPELINE, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["stage"] for line in listed.stdout.splitlines()] == ["sink"] * 2
    assert "sqlalchemy" in modules  # the migration is the full store's
    version = pg_exec(store, "SELECT value FROM etl_express.meta WHERE key = 'schema_version'")
    assert version == [(str(SCHEMA_VERSION),)]
    restored = "SELECT to_regclass('etl_express.pipelines'), to_regclass('etl_express.ix_logs_run')"
    assert pg_exec(store, restored) == [("etl_express.pipelines", "etl_express.ix_logs_run")]
    again, modules = cli(store, "runs", PIPELINE)
    assert again.returncode == 0 and PIPELINE in again.stdout
    assert heavy_in(modules) == []  # migrated once: the next command reads light again
