"""Do loads keep the target answering its readers? (docs/reliability.md, "Availability")

A reader queries the target table every 50 ms — on a schedule, each query on its own
connection from a pool, so a blocked query does not hide the ones due after it — while a
pipeline runs cycles of

1. upserts: half the source rows change (their cursor moves), the pipeline upserts them;
2. a schema change: the source grows a column, and while the pipeline adds it to the target
   a *long reader* holds a lock on the target (a 5 s analytical query) — the classic way an
   ``ALTER TABLE`` waits in the lock queue and makes every reader after it wait too.

It reports the share of the reader's queries answered within 1 s (the target: 99.9 %), their
latency percentiles, and the load's own time. Run it against any PostgreSQL you may write to::

    ETL_EXPRESS_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        python3 benchmarks/reader_availability.py --rows 200000 --cycles 3
    # the same without the lock timeout, to see what it prevents:
    ... python3 benchmarks/reader_availability.py --ddl-lock-timeout none

Results are appended to benchmarks/results/reader_availability.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

import etl_express as etl
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources.sql import SQLSource

RESULTS = Path(__file__).resolve().parent / "results" / "reader_availability.jsonl"


class Reader:
    """Queries ``table`` every ``interval`` seconds on a schedule; records each latency."""

    def __init__(self, url: str, table: str, interval: float = 0.05, pool: int = 64):
        self.url, self.table, self.interval = url, table, interval
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=pool)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._schedule, daemon=True)
        self._lock = threading.Lock()

    def _conn(self) -> psycopg.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = psycopg.connect(self.url, autocommit=True)
        return conn

    def _query(self, due: float, k: int) -> None:
        try:
            lo = (k * 7919) % 100_000
            self._conn().execute(
                f"SELECT count(*), sum(amount) FROM {self.table} WHERE id BETWEEN %s AND %s",
                (lo, lo + 1000),
            ).fetchone()
        except Exception as exc:  # counted as not answered
            with self._lock:
                self.failures.append(type(exc).__name__)
            return
        with self._lock:
            self.latencies.append(time.monotonic() - due)

    def _schedule(self) -> None:
        start, k = time.monotonic(), 0
        while not self._stop.is_set():
            due = start + k * self.interval
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._pool.submit(self._query, due, k)
            k += 1

    def __enter__(self) -> Reader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)


def long_reader(url: str, table: str, seconds: float, started: threading.Event) -> None:
    """An analytical query holding ACCESS SHARE on the target for ``seconds``."""
    with psycopg.connect(url) as conn:
        conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        started.set()
        conn.execute("SELECT pg_sleep(%s)", (seconds,))
        conn.commit()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--long-reader", type=float, default=5.0, help="seconds; 0: none")
    ap.add_argument("--ddl-lock-timeout", default="0.5", help="seconds, or 'none'")
    args = ap.parse_args()
    url = os.environ["ETL_EXPRESS_TEST_DATABASE_URL"]
    os.environ.setdefault("ETL_EXPRESS_DATABASE_URL", url)
    timeout = None if args.ddl_lock_timeout == "none" else float(args.ddl_lock_timeout)
    schema = "bench_avail_" + uuid.uuid4().hex[:8]
    target = f"{schema}.dst"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(
            f"CREATE TABLE {schema}.src AS SELECT g AS id, 'name ' || g AS name, "
            "g %% 1000 AS amount, now() AS updated_at FROM generate_series(1, %s) g",
            (args.rows,),
        )
        conn.execute(f"ALTER TABLE {schema}.src ADD PRIMARY KEY (id)")
    pipeline = etl.Pipeline(
        "bench_avail_" + schema,
        SQLSource(url, table=f"{schema}.src", primary_key="id", cursor="updated_at"),
        sink=PostgresSink(target, ddl_lock_timeout=timeout),
        progress=False,
    )
    pipeline.run()  # the initial load, before the reader starts
    load_seconds = 0.0
    retries = 0
    try:
        with Reader(url, target) as reader:
            time.sleep(1)
            for cycle in range(args.cycles):
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(
                        f"UPDATE {schema}.src SET amount = amount + 1, updated_at = now() "
                        "WHERE id %% 2 = %s",
                        (cycle % 2,),
                    )
                t = time.monotonic()
                retries += pipeline.run().retries
                load_seconds += time.monotonic() - t
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"ALTER TABLE {schema}.src ADD COLUMN extra_{cycle} text")
                    conn.execute(
                        f"UPDATE {schema}.src SET extra_{cycle} = 'x', updated_at = now() "
                        "WHERE id % 10 = 0"
                    )
                blocker = None
                if args.long_reader > 0:
                    started = threading.Event()
                    blocker = threading.Thread(
                        target=long_reader, args=(url, target, args.long_reader, started)
                    )
                    blocker.start()
                    started.wait()
                t = time.monotonic()
                retries += pipeline.run().retries
                load_seconds += time.monotonic() - t
                if blocker is not None:
                    blocker.join()
            time.sleep(1)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    answered = [x for x in reader.latencies if x <= 1.0]
    total = len(reader.latencies) + len(reader.failures)
    figures = {
        "ddl_lock_timeout_s": timeout,
        "rows": args.rows,
        "cycles": args.cycles,
        "long_reader_s": args.long_reader,
        "queries": total,
        "within_1s_share": round(len(answered) / total, 5) if total else None,
        "failed_queries": len(reader.failures),
        "p50_ms": round(percentile(reader.latencies, 0.5) * 1000, 1),
        "p99_ms": round(percentile(reader.latencies, 0.99) * 1000, 1),
        "max_ms": round(max(reader.latencies) * 1000, 1),
        "load_seconds": round(load_seconds, 1),
        "load_retries": retries,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(figures, indent=2))
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(figures) + "\n")


if __name__ == "__main__":
    main()
