"""What a replication's table costs in statements and transactions (the fixed cost that
decides how fast many small tables move), and the bookkeeping that keeps it small: the run's
start reads its checkpoint and its checks' history with its lease, the checks are stored with
the run's final status (a failed run's too), the target's columns are recorded in one
statement, and a small table is created with its primary key.

Statements are counted at the driver (every ``execute``, ``executemany`` and ``copy`` of a
psycopg cursor, a string of statements sent as one simple query counting once), round trips
on the wire (a TCP proxy in front of the real PostgreSQL counts each time the server answers
after the client sent: an upper bound, see FIRST_LOAD)."""

from __future__ import annotations

import itertools
import re
import selectors
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

import etl_express as etl
from etl_express.errors import ETLError
from etl_express.logs import configure_logging, shutdown_logging
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLDatabase
from etl_express.store import declarations
from etl_express.store.database import engine_for
from etl_express.store.tables import TableName
from tests.conftest import pg_exec

DDL = (
    "CREATE TABLE {s}.{t} (id int PRIMARY KEY, name varchar(40), amount numeric(12,2), "
    "created timestamptz, flag boolean)"
)
ROWS = (
    "INSERT INTO {s}.{t} SELECT g, 'name ' || g, g * 1.25, "
    "timestamptz '2024-01-01' + g * interval '1 minute', g % 2 = 0 FROM generate_series(1, {n}) g"
)

#: the budget per table of a first load (statements / transactions / round trips, source
#: and target together, the run log's lines not stored) and of a run that finds nothing new;
#: measured 11 / 4 / 19.5 and 7 / 2 / 10.25 (before the work that set it: 34 / 12 / 60.5 and
#: 14 / 9 / 33.5). Round trips are counted on the wire,
#: an upper bound: statements pipelined together may count more than once when the server
#: answers the first before the client sent the last.
FIRST_LOAD = (12.5, 4.5, 22)
NOTHING_NEW = (8, 2.5, 12)


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)
    transactions: int = 0
    round_trips: int = 0


class RoundTrips:
    """A TCP proxy in front of the PostgreSQL server that counts round trips: each time the
    server sends after the client did (the client waited for that answer)."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.listener = socket.create_server(("127.0.0.1", 0))
        port = self.listener.getsockname()[1]
        self.url = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}"))
        self.count = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ)
        selector.register(server, selectors.EVENT_READ)
        client_spoke = False
        try:
            while True:
                for key, _ in selector.select():
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    data = sock.recv(1 << 16)
                    if not data:
                        return
                    if sock is client:
                        server.sendall(data)
                        client_spoke = True
                    else:
                        client.sendall(data)
                        if client_spoke:
                            with self.lock:
                                self.count += 1
                        client_spoke = False
        except OSError:
            return
        finally:
            selector.close()
            client.close()
            server.close()

    def close(self) -> None:
        self.listener.close()


@contextmanager
def counting() -> Iterator[Counted]:
    """Count what every psycopg connection of this process sends: statements (one per
    round trip) and transactions (each COMMIT or ROLLBACK of an open one)."""
    counted = Counted()
    lock = threading.Lock()
    saved = {}

    def wrap(cls: type, name: str) -> None:
        original = getattr(cls, name)
        saved[(cls, name)] = original

        def counted_call(self, query, *args, **kwargs):  # type: ignore[no-untyped-def]
            text = query.as_string(None) if hasattr(query, "as_string") else str(query)
            with lock:
                counted.statements.append(re.sub(r"\s+", " ", text))
            return original(self, query, *args, **kwargs)

        setattr(cls, name, counted_call)

    def wrap_end(name: str) -> None:
        original = getattr(psycopg.Connection, name)
        saved[(psycopg.Connection, name)] = original

        def ended(self):  # type: ignore[no-untyped-def]
            if self.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                with lock:
                    counted.transactions += 1
            return original(self)

        setattr(psycopg.Connection, name, ended)

    for method in ("execute", "executemany", "copy"):
        wrap(psycopg.Cursor, method)
    wrap_end("commit")
    wrap_end("rollback")
    try:
        yield counted
    finally:
        for (cls, name), original in saved.items():
            setattr(cls, name, original)


def source_tables(url: str, schema: str, n: int, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(n):
            conn.execute(DDL.format(s=schema, t=f"t{i}"))
            conn.execute(ROWS.format(s=schema, t=f"t{i}", n=rows))
        conn.execute(f"ANALYZE {', '.join(f'{schema}.t{i}' for i in range(n))}")


@pytest.fixture
def targets(pg_url: str) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        pg_exec(pg_url, f"DROP SCHEMA IF EXISTS {name} CASCADE")


def replication(
    url: str, schema: str, targets: list[str], *, via: str | None = None, **options
) -> etl.Replication:
    """A replication of ``schema``; ``via``: the URL it reaches the server by, source and
    target (the round-trip counting proxy)."""
    target = "rs_" + uuid.uuid4().hex[:10]
    targets.append(target)
    source_options = {"batch_size": options.pop("batch_size", 50_000)}
    return etl.Replication(
        target,
        SQLDatabase(via or url, schema=schema, **source_options),
        sink=PostgresSink(schema=target, url=via),
        detect_pii="off",
        **options,
    )


def run_counted(rep: etl.Replication, proxy: RoundTrips | None = None) -> Counted:
    before = proxy.count if proxy is not None else 0
    with counting() as counted:
        rep.run()
    if proxy is not None:
        counted.round_trips = proxy.count - before
    return counted


def per_table(small: Counted, big: Counted, extra_tables: int) -> tuple[float, float, float]:
    """Statements, transactions and round trips per table: the difference of two runs over
    different numbers of tables, so what a run pays once (discovery, the store's checks)
    drops out."""
    return (
        (len(big.statements) - len(small.statements)) / extra_tables,
        (big.transactions - small.transactions) / extra_tables,
        (big.round_trips - small.round_trips) / extra_tables,
    )


@pytest.fixture
def no_stored_log_lines(tmp_path: Path) -> Iterator[None]:
    """Runs' log lines not stored in the database: its writer flushes them every half
    second from a thread of its own, in batches across tables, so what it sends depends on
    the clock, not on the tables (and would make the counts vary with the machine's load)."""
    configure_logging(log_dir=tmp_path, console=False, database=False)
    yield
    shutdown_logging()


def test_a_tables_statements_and_transactions_stay_within_budget(
    pg_url: str, targets: list[str], no_stored_log_lines: None
) -> None:
    schemas = []
    for n in (2, 6):
        schema = "rsrc_" + uuid.uuid4().hex[:8]
        pg_exec(pg_url, f"CREATE SCHEMA {schema}")
        source_tables(pg_url, schema, n, 100)
        schemas.append(schema)
    proxy = RoundTrips(pg_url)
    try:
        reps = [replication(pg_url, s, targets, via=proxy.url) for s in schemas]
        reps[0].run()  # the store exists before anything is counted
        reps[0] = replication(pg_url, schemas[0], targets, via=proxy.url)
        first = [run_counted(rep, proxy) for rep in reps]
        again = [run_counted(rep, proxy) for rep in reps]
    finally:
        proxy.close()
        for schema in schemas:
            pg_exec(pg_url, f"DROP SCHEMA {schema} CASCADE")
    statements, transactions, round_trips = per_table(first[0], first[1], 4)
    assert statements <= FIRST_LOAD[0], first[1].statements
    assert transactions <= FIRST_LOAD[1], transactions
    assert round_trips <= FIRST_LOAD[2], round_trips
    statements, transactions, round_trips = per_table(again[0], again[1], 4)
    assert statements <= NOTHING_NEW[0], again[1].statements
    assert transactions <= NOTHING_NEW[1], transactions
    assert round_trips <= NOTHING_NEW[2], round_trips
    # what the budget is made of: no per-table key build, no re-read of the checkpoint,
    # one closing statement per run with its checks
    done = first[1].statements
    assert not any("ADD PRIMARY KEY" in s for s in done)
    assert not any(s.startswith("SELECT etl_express.checkpoints.position") for s in done)
    assert sum("INSERT INTO etl_express.quality_checks" in s for s in done) == 6


def test_a_big_table_still_builds_its_key_after_the_load(
    pg_url: str, schema: str, targets: list[str]
) -> None:
    source_tables(pg_url, schema, 2, 30)
    pg_exec(pg_url, f"DROP TABLE {schema}.t1")
    rep = replication(pg_url, schema, targets, batch_size=7)  # 30 rows: more than a batch
    counted = run_counted(rep)
    assert sum("ADD PRIMARY KEY" in s for s in counted.statements) == 1
    small = replication(pg_url, schema, targets)  # the same 30 rows fit in one batch
    counted = run_counted(small)
    assert not any("ADD PRIMARY KEY" in s for s in counted.statements)
    create = [s for s in counted.statements if "CREATE TABLE IF NOT EXISTS" in s]
    assert len(create) == 1 and 'PRIMARY KEY ("id")' in create[0]
    for target in targets:
        key = pg_exec(
            pg_url,
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
            (f"{target}.t0",),
        )
        assert key == [("id",)]
        assert pg_exec(pg_url, f"SELECT count(*) FROM {target}.t0") == [(30,)]


def stored_checks(url: str, pipeline: str) -> dict[str, list[tuple]]:
    rows = pg_exec(
        url,
        "SELECT r.run_id, r.status, c.name, c.status, c.details FROM etl_express.runs r "
        "LEFT JOIN etl_express.quality_checks c ON c.run_id = r.run_id "
        "WHERE r.pipeline = %s ORDER BY r.started_at, c.id",
        (pipeline,),
    )
    out: dict[str, list[tuple]] = {}
    for run_id, status, name, check_status, details in rows:
        out.setdefault(run_id, []).append((status, name, check_status, details))
    return out


def test_a_failed_runs_checks_are_stored_with_its_failure(
    pg_url: str, schema: str, targets: list[str]
) -> None:
    source_tables(pg_url, schema, 1, 10)
    pg_exec(pg_url, f"UPDATE {schema}.t0 SET name = NULL WHERE id = 3")
    rep = replication(pg_url, schema, targets, required=["name"])
    with pytest.raises(ETLError) as failed:
        rep.run()
    result = failed.value.result  # type: ignore[attr-defined]
    run = result.tables["t0"]
    assert run.status == "failed"
    stored = stored_checks(pg_url, rep.pipeline_name("t0"))
    assert list(stored) == [run.run_id]
    rows = stored[run.run_id]
    assert {status for status, *_ in rows} == {"failed"}  # the run's row
    by_name = {name: check_status for _, name, check_status, _ in rows}
    assert by_name["required_columns"] == "failed"
    assert by_name["reconciliation"] == "passed"
    assert len(by_name) == len(run.checks) >= 8


def test_the_checks_history_is_what_the_run_started_from(
    pg_url: str, schema: str, targets: list[str]
) -> None:
    source_tables(pg_url, schema, 1, 10)
    rep = replication(pg_url, schema, targets, freshness="1h")
    name = rep.pipeline_name("t0")
    firsts = []
    for _ in range(5):
        firsts.append(rep.run().tables["t0"])
        pg_exec(
            pg_url, f"INSERT INTO {schema}.t0 VALUES ({100 + len(firsts)}, 'x', 1, now(), true)"
        )
    stored = stored_checks(pg_url, name)
    finished = dict(
        pg_exec(
            pg_url, "SELECT run_id, finished_at FROM etl_express.runs WHERE pipeline = %s", (name,)
        )
    )
    for before, run in itertools.pairwise(firsts):
        details = {n: d for _, n, _, d in stored[run.run_id]}
        # freshness compares with the run before, as the store held it when this one began
        assert details["freshness"]["previous_success_at"] == finished[before.run_id].isoformat()
    # the row count is judged against the runs before (three at least): the fourth run
    # compares with three, the fifth with four
    judged = [{n: d for _, n, _, d in stored[run.run_id]}["row_count_range"] for run in firsts]
    assert [d["judged"] for d in judged] == [False, False, False, True, True]
    assert [d.get("compared_runs") for d in judged[3:]] == [3, 4]
    assert [d["rows"] for d in judged] == [10, 1, 1, 1, 1]


def test_target_columns_are_recorded_when_they_change(pg_url: str, schema: str) -> None:
    target = TableName(schema, "t")
    pipeline = "cols_" + uuid.uuid4().hex[:8]
    engine = engine_for(pg_url)
    run_id = str(uuid.uuid4())

    def record() -> bool:
        with engine.begin() as conn:
            return declarations.record_catalog_columns(conn, pipeline, target, run_id)

    assert record() is False  # no such table: nothing
    pg_exec(pg_url, f"CREATE TABLE {schema}.t (id int, name varchar(5))")
    assert record() is True
    assert record() is False  # unchanged
    pg_exec(pg_url, f"ALTER TABLE {schema}.t ADD COLUMN at timestamptz")
    assert record() is True
    stored = pg_exec(
        pg_url,
        "SELECT columns FROM etl_express.table_schemas WHERE pipeline = %s ORDER BY id",
        (pipeline,),
    )
    assert [r[0] for r in stored] == [
        {"id": "integer", "name": "character varying"},
        {"id": "integer", "name": "character varying", "at": "timestamp with time zone"},
    ]
    pg_exec(pg_url, "DELETE FROM etl_express.table_schemas WHERE pipeline = %s", (pipeline,))


def test_a_batch_without_savepoints_is_redone_with_them_when_a_row_is_refused(
    pg_url: str, schema: str, targets: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batch into a table created in the run is written without savepoints; when
    another writer's row meets one of its keys, the batch's transaction rolls back whole and
    the batch is written again under savepoints (an upsert): nothing lost or doubled."""
    source_tables(pg_url, schema, 1, 20)
    rep = replication(pg_url, schema, targets)
    target = targets[-1]
    original = PostgresSink.write_unguarded
    attempts: list[int | None] = []

    def another_writer_first(self, conn, batch, primary_key):  # type: ignore[no-untyped-def]
        if not attempts:  # the table is created and committed: another writer takes key 7
            pg_exec(pg_url, f"INSERT INTO {target}.t0 (id, name) VALUES (7, 'other')")
        try:
            attempts.append(original(self, conn, batch, primary_key))
        except Exception:
            attempts.append(None)
            raise
        return attempts[-1]

    monkeypatch.setattr(PostgresSink, "write_unguarded", another_writer_first)
    with counting() as counted:
        result = rep.run()
    assert attempts == [None]  # refused once, then written under savepoints
    assert any(s.startswith("SAVEPOINT sa_savepoint") for s in counted.statements)
    assert result.tables["t0"].rows_written == 20
    assert pg_exec(pg_url, f"SELECT count(*), count(DISTINCT id) FROM {target}.t0") == [(20, 20)]
    assert pg_exec(pg_url, f"SELECT name FROM {target}.t0 WHERE id = 7") == [("name 7",)]
    assert pg_exec(
        pg_url,
        "SELECT position FROM etl_express.checkpoints WHERE pipeline = %s",
        (rep.pipeline_name("t0"),),
    ) == [({"key": [20]},)]


def test_each_tables_coverage_is_checked_once_before_any_table_runs(
    pg_url: str, schema: str, targets: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source_tables(pg_url, schema, 3, 5)
    rep = replication(pg_url, schema, targets)
    checked: list[str] = []
    original = etl.Pipeline.check_pii_coverage
    written_before: list[int] = []

    def counted(self):  # type: ignore[no-untyped-def]
        checked.append(self.name)
        written_before.append(
            pg_exec(
                pg_url,
                "SELECT count(*) FROM etl_express.runs WHERE pipeline LIKE %s",
                (rep.name + ".%",),
            )[0][0]
        )
        return original(self)

    monkeypatch.setattr(etl.Pipeline, "check_pii_coverage", counted)
    rep.run()
    assert sorted(checked) == [rep.pipeline_name(f"t{i}") for i in range(3)]
    assert written_before == [0, 0, 0]  # all of them before any table's run began
