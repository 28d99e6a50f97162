"""Pipeline(deletes=...) against real PostgreSQL and MariaDB sources.

A source of 200,000 rows loses 1 % of its rows, has 1 % updated (half of them without moving
the cursor) and gains 0.5 %; one run must leave the target's live rows equal to the source,
with ``_etl_deleted_at`` on exactly the deleted keys (``"soft"``) or without them (``"hard"``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
import sqlalchemy as sa

import etl_express as etl
from etl_express.anonymizers import Pseudonymize
from etl_express.errors import ETLConfigError, QualityError
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource
from tests.conftest import pg_exec

ROOT = Path(__file__).resolve().parents[2]
# a secret reference (worker processes get the name, never the key), the same in the children
os.environ.setdefault(
    "ETL_EXPRESS_RECONCILE_TEST_KEY", hashlib.sha256(b"tests.reconcile").hexdigest()
)
KEY = etl.secret("RECONCILE_TEST_KEY")
BASE = dt.datetime(2024, 1, 1)


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=sa.pool.NullPool
    )


def make_source(url: str, table: str, rows: int) -> None:
    """``rows`` rows: id, name, email, amount, updated_at (distinct, increasing with id)."""
    with _engine(url).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
            conn.execute(
                sa.text(
                    f"CREATE TABLE {table} (id bigint PRIMARY KEY, name text, email text, "
                    "amount numeric(12,2), updated_at timestamptz NOT NULL)"
                )
            )
            conn.execute(
                sa.text(
                    f"INSERT INTO {table} SELECT g, 'name ' || g, 'user' || g || '@mail.ru', "
                    "g * 1.25, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' "
                    "FROM generate_series(1, :n) g"
                ),
                {"n": rows},
            )
        else:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
            conn.execute(
                sa.text(
                    f"CREATE TABLE {table} (id bigint PRIMARY KEY, name varchar(100), "
                    "email varchar(100), amount decimal(12,2), updated_at datetime(6) NOT NULL)"
                )
            )
            conn.execute(
                sa.text(
                    f"INSERT INTO {table} SELECT seq, CONCAT('name ', seq), "
                    "CONCAT('user', seq, '@mail.ru'), seq * 1.25, "
                    f"TIMESTAMPADD(SECOND, seq, '2024-01-01') FROM seq_1_to_{int(rows)}"
                )
            )


def mutate(url: str, table: str, rows: int) -> set[int]:
    """Delete 1 %, update 1 % (half without moving the cursor), insert 0.5 %; the deleted ids."""
    with _engine(url).begin() as conn:
        deleted = {
            r[0] for r in conn.execute(sa.text(f"SELECT id FROM {table} WHERE id % 100 = 3"))
        }
        conn.execute(sa.text(f"DELETE FROM {table} WHERE id % 100 = 3"))
        later = dt.datetime(2030, 1, 1)
        conn.execute(
            sa.text(
                f"UPDATE {table} SET name = CONCAT(name, ' moved'), updated_at = :t "
                "WHERE id % 200 = 5"
            ),
            {"t": later},
        )
        conn.execute(  # the application forgot updated_at
            sa.text(
                f"UPDATE {table} SET amount = amount + 1, email = CONCAT('x', email) "
                "WHERE id % 200 = 7"
            )
        )
        new = [
            {
                "id": rows + i,
                "name": f"new {i}",
                "email": f"new{i}@mail.ru",
                "amount": i,
                "updated_at": later + dt.timedelta(seconds=i),
            }
            for i in range(1, rows // 200 + 1)
        ]
        conn.execute(
            sa.text(f"INSERT INTO {table} VALUES (:id, :name, :email, :amount, :updated_at)"), new
        )
    return deleted


def _token(emails: list[str | None]) -> list[str | None]:
    batch = pa.record_batch({"email": pa.array(emails, pa.string())})
    return Pseudonymize(["email"], key=KEY).anonymize(batch).column(0).to_pylist()


def _utc(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.isoformat()


def source_rows(url: str, table: str) -> dict[int, tuple[Any, ...]]:
    """The source as the target should hold it (emails pseudonymized)."""
    with _engine(url).connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT id, name, email, amount, updated_at FROM {table}")
        ).all()
    tokens = _token([r[2] for r in rows])
    return {int(r[0]): (r[1], t, str(r[3]), _utc(r[4])) for r, t in zip(rows, tokens, strict=True)}


def target_rows(pg_url: str, table: str, where: str = "_etl_deleted_at IS NULL") -> dict:
    rows = pg_exec(
        pg_url, f"SELECT id, name, email, amount::text, updated_at FROM {table} WHERE {where}"
    )
    return {int(r[0]): (r[1], r[2], r[3], _utc(r[4])) for r in rows}


def assert_equal(got: dict, want: dict) -> None:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    differ = sorted(k for k in set(got) & set(want) if got[k] != want[k])
    assert not (missing or extra or differ), (
        f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} extra (e.g. {extra[:3]}), "
        f"{len(differ)} differ (e.g. {[(k, got[k], want[k]) for k in differ[:2]]})"
    )


def pipeline(
    url: str, table: str, target: str, name: str, deletes: str, key: Any = KEY, **kw: Any
) -> etl.Pipeline:
    return etl.Pipeline(
        name,
        SQLSource(url, table, primary_key="id", cursor="updated_at", batch_size=20_000),
        anonymizers=[Pseudonymize(["email"], key=key)],
        sink=PostgresSink(target),
        deletes=deletes,
        progress=False,
        **kw,
    )


def deletes_check(result: etl.RunResult) -> dict[str, Any]:
    (check,) = [c for c in result.checks if c.name == "deletes"]
    assert check.status == "passed", check
    return check.details


ROWS = 200_000


@pytest.fixture(params=["postgresql", "mariadb"])
def source_url(request, pg_url: str) -> str:
    if request.param == "postgresql":
        return pg_url
    return request.getfixturevalue("mysql_url")


def test_soft_deletes_and_silent_updates_of_200k_rows(source_url, pg_url, schema, pipeline_name):
    src = f"{schema}.src" if source_url == pg_url else f"src_{pipeline_name}"
    target = f"{schema}.dst"
    make_source(source_url, src, ROWS)
    p = pipeline(source_url, src, target, pipeline_name, "soft")
    first = p.run()
    assert first.rows_written == ROWS
    assert deletes_check(first)["deletes_applied"] == 0

    deleted = mutate(source_url, src, ROWS)
    assert len(deleted) == ROWS // 100
    second = p.run()
    counts = deletes_check(second)
    assert counts["deletes_applied"] == len(deleted)
    # the 1,000 rows updated without their cursor were re-read by the reconciliation
    assert counts["rows_reread"] >= ROWS // 200
    expected = source_rows(source_url, src)
    assert_equal(target_rows(pg_url, target), expected)
    marked = pg_exec(pg_url, f"SELECT id FROM {target} WHERE _etl_deleted_at IS NOT NULL")
    assert {r[0] for r in marked} == deleted
    assert {c.name: c.status for c in second.checks}["reconciliation"] == "passed"

    # nothing changed: only checksums move
    third = p.run()
    counts = deletes_check(third)
    assert third.rows_read == 0
    assert counts["keys_fetched"] == 0 and counts["rows_reread"] == 0
    assert counts["deletes_applied"] == 0 and counts["segments_compared"] > 0

    # a deleted key comes back without its cursor moving: its mark is cleared
    with _engine(source_url).begin() as conn:
        conn.execute(
            sa.text(f"INSERT INTO {src} VALUES (3, 'back', 'b@mail.ru', 1, :t)"),
            {"t": BASE},
        )
    fourth = p.run()
    assert deletes_check(fourth)["rows_reread"] == 1
    assert target_rows(pg_url, target, "id = 3 AND _etl_deleted_at IS NULL")[3][0] == "back"
    marked = pg_exec(pg_url, f"SELECT count(*) FROM {target} WHERE _etl_deleted_at IS NOT NULL")
    assert marked == [(len(deleted) - 1,)]
    if source_url != pg_url:
        with _engine(source_url).begin() as conn:
            conn.execute(sa.text(f"DROP TABLE {src}"))


def test_a_few_differences_are_narrowed_down_to_their_keys(pg_url, schema, pipeline_name):
    src, target = f"{schema}.src", f"{schema}.dst"
    make_source(pg_url, src, 50_000)
    p = pipeline(pg_url, src, target, pipeline_name, "soft")
    p.run()
    pg_exec(pg_url, f"DELETE FROM {src} WHERE id IN (10, 20000, 49999)")
    pg_exec(pg_url, f"UPDATE {src} SET name = 'quiet' WHERE id = 31000")
    counts = deletes_check(p.run())
    assert counts["deletes_applied"] == 3 and counts["rows_reread"] == 1
    # four leaves of at most 64 rows on each side, not 50,000 keys
    assert 0 < counts["keys_fetched"] <= 4 * 2 * 64
    assert_equal(target_rows(pg_url, target), source_rows(pg_url, src))


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_hard_deletes_remove_the_rows(backend, pg_url, schema, pipeline_name, request):
    url = pg_url if backend == "postgresql" else request.getfixturevalue("mysql_url")
    src = f"{schema}.src" if backend == "postgresql" else f"src_{pipeline_name}"
    target = f"{schema}.dst"
    make_source(url, src, 20_000)
    p = pipeline(url, src, target, pipeline_name, "hard")
    p.run()
    deleted = mutate(url, src, 20_000)
    counts = deletes_check(p.run())
    assert counts["deletes_applied"] == len(deleted) == 200
    got = target_rows(pg_url, target, "true")
    assert not set(got) & deleted
    assert_equal(got, source_rows(url, src))
    if backend == "mariadb":
        with _engine(url).begin() as conn:
            conn.execute(sa.text(f"DROP TABLE {src}"))


KILL_SCRIPT = """
import sys
import etl_express.reconcile.ranges as ranges
from tests.reconcile.test_deletes import pipeline

ranges.STEP_RANGES = 1  # many small steps, so the kill lands in the middle
url, src, target, name = sys.argv[1:]
pipeline(url, src, target, name, "soft").run()
"""


def test_a_killed_reconciliation_resumes_and_ends_equal(pg_url, schema, pipeline_name, tmp_path):
    src, target = f"{schema}.src", f"{schema}.dst"
    make_source(pg_url, src, 20_000)
    pipeline(pg_url, src, target, pipeline_name, "soft").run()
    deleted = mutate(pg_url, src, 20_000)
    script = tmp_path / "reconcile.py"
    script.write_text(KILL_SCRIPT)
    log = tmp_path / "stderr.txt"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(script), pg_url, src, target, pipeline_name],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"},
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    applied = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            rows = (
                pg_exec(
                    pg_url,
                    "SELECT (counts->>'deletes_applied')::int FROM etl_express.reconcile_state "
                    "WHERE pipeline = %s AND finished_at IS NULL AND plan IS NOT NULL",
                    (pipeline_name,),
                )
                if pg_exec(pg_url, "SELECT to_regclass('etl_express.reconcile_state')")[0][0]
                else []
            )
            applied = rows[0][0] if rows else 0
            if applied >= 20:
                break
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, log.read_text()
    assert 20 <= applied < len(deleted)

    resumed = pipeline(pg_url, src, target, pipeline_name, "soft").run()
    counts = deletes_check(resumed)
    assert counts["resumed"] is True
    assert counts["deletes_applied"] == len(deleted)  # counted across the killed run and this
    assert_equal(target_rows(pg_url, target), source_rows(pg_url, src))
    marked = pg_exec(pg_url, f"SELECT id FROM {target} WHERE _etl_deleted_at IS NOT NULL")
    assert {r[0] for r in marked} == deleted


def test_an_emptied_source_does_not_empty_the_target(pg_url, schema, pipeline_name):
    src, target = f"{schema}.src", f"{schema}.dst"
    make_source(pg_url, src, 1000)
    p = pipeline(pg_url, src, target, pipeline_name, "hard")
    p.run()
    pg_exec(pg_url, f"DELETE FROM {src} WHERE id > 300")
    with pytest.raises(QualityError, match="would delete more than 50%"):
        p.run()
    assert pg_exec(pg_url, f"SELECT count(*) FROM {target}")[0][0] == 1000
    p = pipeline(pg_url, src, target, pipeline_name, "hard", checks={"deletes": "warn"})
    result = p.run()
    (check,) = [c for c in result.checks if c.name == "deletes"]
    assert check.status == "warned" and check.details["deletes_applied"] == 700
    assert pg_exec(pg_url, f"SELECT count(*) FROM {target}")[0][0] == 300


def test_reconcile_every_spaces_reconciliations_out(pg_url, schema, pipeline_name):
    src, target = f"{schema}.src", f"{schema}.dst"
    make_source(pg_url, src, 500)
    p = pipeline(pg_url, src, target, pipeline_name, "soft", reconcile_every="1h")
    assert deletes_check(p.run())["segments_compared"] > 0
    pg_exec(pg_url, f"DELETE FROM {src} WHERE id = 7")
    (check,) = [c for c in p.run().checks if c.name == "deletes"]
    assert check.status == "skipped" and "next due" in check.details["skipped"]
    assert pg_exec(pg_url, f"SELECT count(*) FROM {target} WHERE _etl_deleted_at IS NOT NULL") == [
        (0,)
    ]
    p = pipeline(pg_url, src, target, pipeline_name, "soft", reconcile_every=0)
    assert deletes_check(p.run())["deletes_applied"] == 1


def test_configuration_errors_are_raised_before_anything_runs(pg_url, schema, pipeline_name):
    src = SQLSource(pg_url, f"{schema}.src", primary_key="id")
    with pytest.raises(ETLConfigError, match="deletes='maybe'"):
        etl.Pipeline(pipeline_name, src, deletes="maybe")
    with pytest.raises(ETLConfigError, match="not a duration"):
        etl.Pipeline(pipeline_name, src, deletes="soft", reconcile_every="often")
    with pytest.raises(ETLConfigError, match="without deletes="):
        etl.Pipeline(pipeline_name, src, reconcile_every="1h")
    make_source(pg_url, f"{schema}.src", 10)
    p = etl.Pipeline(
        pipeline_name,
        src,
        anonymizers=[Pseudonymize(["id"], key=KEY)],
        sink=PostgresSink(f"{schema}.dst"),
        deletes="soft",
        progress=False,
    )
    with pytest.raises(ETLConfigError, match="primary key column"):
        p.run()
    assert pg_exec(pg_url, f"SELECT to_regclass('{schema}.dst')") == [(None,)]


def test_the_source_is_never_written(pg_url, schema, pipeline_name):
    """The reconciliation reads through a read-only session: a source user without any write
    privilege is enough."""
    src, target = f"{schema}.src", f"{schema}.dst"
    make_source(pg_url, src, 3000)
    role = f"ro_{pipeline_name}"
    pg_exec(pg_url, f"CREATE ROLE {role} LOGIN")
    try:
        pg_exec(pg_url, f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        pg_exec(pg_url, f"GRANT SELECT ON {src} TO {role}")
        ro_url = pg_url.replace("postgres@", f"{role}@", 1)
        with psycopg.connect(pg_url) as conn:
            before = conn.execute(f"SELECT count(*), sum(amount) FROM {src}").fetchone()
        p = pipeline(ro_url, src, target, pipeline_name, "soft")
        p.sink = PostgresSink(target, url=pg_url)
        p.sink.state_url = pg_url
        p.run()
        pg_exec(pg_url, f"DELETE FROM {src} WHERE id < 10")
        assert deletes_check(p.run())["deletes_applied"] == 9
    finally:
        pg_exec(pg_url, f"DROP OWNED BY {role}")
        pg_exec(pg_url, f"DROP ROLE {role}")
    assert before[0] == 3000


def test_partitions_by_the_key_reconcile_their_own_ranges(
    pg_url, schema, pipeline_name, monkeypatch
):
    src, target = f"{schema}.src", f"{schema}.dst"
    make_source(pg_url, src, 6000)
    # worker processes resolve the key themselves: KEY is a secret reference, not a value
    p = pipeline(pg_url, src, target, pipeline_name, "soft", key=KEY)
    first = p.run(workers=2)
    assert first.ok and len(first.partitions) == 2
    deleted = mutate(pg_url, src, 6000)
    second = p.run(workers=2)
    applied = sum(deletes_check(part)["deletes_applied"] for part in second.partitions)
    assert applied == len(deleted) == 60
    assert deletes_check(second)["deletes_applied"] == 60  # summed in the combined result
    assert_equal(target_rows(pg_url, target), source_rows(pg_url, src))
    by_time = pipeline(pg_url, src, target, pipeline_name + "_t", "soft")
    spec = by_time.source.partitions(2, column="updated_at")[0]
    with pytest.raises(ETLConfigError, match="integer primary key"):
        by_time.run(partition=spec)


def test_a_failing_reconciliation_names_itself_without_its_parameters(
    pg_url, schema, pipeline_name, monkeypatch
):
    from etl_express.errors import ETLError
    from etl_express.sources.sql.checksums import SQLChecksums

    src, target = f"{schema}.src", f"{schema}.dst"
    make_source(pg_url, src, 100)

    def broken(self):
        raise sa.exc.OperationalError(
            "SELECT md5(%(k)s || ...)",
            {"k": "the-row-hash-key"},
            Exception("server closed the connection unexpectedly"),
        )

    monkeypatch.setattr(SQLChecksums, "bounds", broken)
    with pytest.raises(
        ETLError, match="delete reconciliation \\(range_checksums\\) failed"
    ) as info:
        pipeline(pg_url, src, target, pipeline_name, "soft").run()
    assert "the-row-hash-key" not in str(info.value) and info.value.transient
    assert pg_exec(pg_url, f"SELECT count(*) FROM {target}") == [(100,)]  # the pass committed
