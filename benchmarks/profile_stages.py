"""Where the CPU of a PostgreSQL -> PostgreSQL load goes: per process, per phase, per thread.

Usage::

    python benchmarks/profile_stages.py [--rows 1000000] [--cases etl,etl_anon] [--repeat 3]

Each case of ``pg_to_pg.py`` runs as a fresh process (``--child``) that times, with
``time.process_time()`` and ``time.thread_time()`` in the thread doing the work:

* ``imports``: interpreter start and the script's imports;
* ``checks before the run``: ``Pipeline.run`` up to the batch loop (the source's schema, the PII
  plan, the state tables, the run ledger; pyarrow imports pandas on its first conversion here);
* ``read``: the source's thread (binary COPY drained from libpq and decoded, or ADBC);
* ``prepare``: the thread converting, transforming and anonymizing (each anonymizer apart);
* ``load``: the main thread's batch loop: encoding (``pgcopy``), COPY, checkpoint, commit;
* ``after the batches``: the key index (``finish_load``), the run's checks, the ledger (their
  wall times too: there the client mostly waits for the target);
* ``exit``: the interpreter's end;

while the parent polls the CPU of the source's and the target's PostgreSQL backends
(``_pgbench_meter.BackendMeter``). The raw ``psql | psql`` pipe runs in the same rounds for scale.

``--server`` measures the target server's side alone instead: the raw rows and the rows an
``etl`` load writes (with the lineage columns) are each saved once as a binary COPY file on
the server, then loaded by ``COPY ... FROM '<file>'`` into a fresh table with the key
maintained row by row, or without it and ``ADD PRIMARY KEY`` afterwards, then counted: the
CPU of that one backend (``/proc``) per statement (the key built without parallel workers, so
that all of its work is counted). Needs the server on this host.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CPU: collections.Counter[str] = collections.Counter()
#: wall seconds of the serial steps after the last batch (the target server works, the client waits)
WALL: collections.Counter[str] = collections.Counter()
_lock = threading.Lock()


def _add(label: str, seconds: float) -> None:
    with _lock:
        CPU[label] += seconds


def _timed(owner: Any, name: str, label: str) -> None:
    """Add the thread CPU of each call of ``owner.name`` under ``label``."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        c0 = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            _add(label, time.thread_time() - c0)

    setattr(owner, name, wrapper)


def _timed_wall(owner: Any, name: str, label: str) -> None:
    """Add the wall time of each call of ``owner.name`` under ``label`` (in :data:`WALL`)."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            with _lock:
                WALL[label] += time.perf_counter() - t0

    setattr(owner, name, wrapper)


def _timed_generator(owner: Any, name: str, label: str) -> None:
    """Add the thread CPU spent producing each item of a generator method."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        items = original(*args, **kwargs)
        while True:
            c0 = time.thread_time()
            try:
                item = next(items)
            except StopIteration:
                _add(label, time.thread_time() - c0)
                return
            _add(label, time.thread_time() - c0)
            yield item

    setattr(owner, name, wrapper)


def child(case: str, table: str) -> None:
    """One load in this process, instrumented; prints a JSON line of CPU seconds."""
    import etl_express as etl
    from etl_express import prefetch
    from etl_express._engine import batches
    from etl_express._engine import run as engine_run
    from etl_express.anonymizers import Pseudonymize, ScrubPII
    from etl_express.sinks import PostgresSink, pgcopy
    from etl_express.sources import SQLSource

    CPU["imports"] = time.process_time()  # since the process started: interpreter start too
    _timed_generator(pgcopy, "_binary_chunks", "load: binary COPY encoding")
    _timed(Pseudonymize, "anonymize", "prepare: Pseudonymize")
    _timed(ScrubPII, "anonymize", "prepare: ScrubPII")
    _timed_wall(PostgresSink, "finish_load", "after the batches: the key index (finish_load)")
    _timed_wall(engine_run, "end_of_run_checks", "after the batches: the run's checks")
    produce = prefetch.ReadAhead._produce

    def timed_produce(self: Any) -> None:
        c0 = time.thread_time()
        try:
            produce(self)
        finally:  # the outer read-ahead prepares batches, the inner one reads the source
            label = "prepare (whole thread)" if self._depth_label else "read (whole thread)"
            _add(label, time.thread_time() - c0)

    original_init = prefetch.ReadAhead.__init__

    def init(self: Any, iterable: Any, *args: Any, **kwargs: Any) -> None:
        self._depth_label = getattr(iterable, "__name__", "") == "_prepared"
        original_init(self, iterable, *args, **kwargs)

    prefetch.ReadAhead.__init__ = init  # type: ignore[method-assign]
    prefetch.ReadAhead._produce = timed_produce  # type: ignore[method-assign]
    run_loop = batches.PartitionRunner.run
    marks: dict[str, float] = {}

    def timed_run(self: Any) -> None:
        marks["loop"] = time.process_time()
        c0 = time.thread_time()
        try:
            run_loop(self)
        finally:
            _add("load (whole main thread loop)", time.thread_time() - c0)
            marks["loop_end"] = time.process_time()

    batches.PartitionRunner.run = timed_run  # type: ignore[method-assign]
    anonymizers = [
        Pseudonymize(["email", "phone", "full_name"], key=etl.secret("ETL_EXPRESS_BENCH_ANON_KEY")),
        ScrubPII(["notes"]),
    ]
    pipeline = etl.Pipeline(
        name="bench_" + table,
        source=SQLSource(url=etl.secret("BENCH_SOURCE_URL"), table="customers", primary_key="id"),
        anonymizers=anonymizers if case == "etl_anon" else [],
        sink=PostgresSink(table="public." + table, url=etl.secret("BENCH_TARGET_URL")),
        progress=False,
        detect_pii="refuse" if case == "etl_anon" else "off",  # as pg_to_pg.SCRIPT
        # the anonymized case is 3 x Pseudonymize + ScrubPII: the synthetic birth dates
        # are declared, not generalized, so the case stays the one measured before
        not_pii={"birth_date": "synthetic benchmark dates; the measured case leaves them as is"},
    )
    start = time.process_time()
    pipeline.run()
    end = time.process_time()
    CPU["checks before the run"] = marks["loop"] - start
    CPU["after the batches"] = end - marks["loop_end"]
    print(json.dumps({"cpu": dict(CPU), "wall": dict(WALL), "process": end}))


def main(argv: list[str] | None = None) -> None:
    import _pgbench_db as db
    import pg_to_pg as bench
    from _pgbench_meter import timed_process
    from _pgbench_runs import ANON_KEY_ENV

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", default="etl,etl_anon")
    parser.add_argument("--url", default=db.default_url())
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    parser.add_argument("--server", action="store_true", help="the target server's work alone")
    args = parser.parse_args(argv)
    os.environ.setdefault(ANON_KEY_ENV, __import__("secrets").token_urlsafe(48))
    if args.child:
        return child(args.child, args.table)
    if args.server:
        return server(args)
    cases = [c for c in args.cases.split(",") if c]
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in ["raw_copy", *cases]}
    with db.scratch_databases(args.url) as (src, dst), tempfile.TemporaryDirectory() as tmp:
        db.make_source(src, args.rows)
        runner = bench.Cases(args_for(args), src, dst, Path(tmp))
        env = {**runner.env}
        for i in range(args.repeat):
            runs["raw_copy"].append(runner.run("raw_copy"))
            for case in cases:
                table = db.CASE_TABLES[case]
                db.reset_target(dst, table)
                argv = [sys.executable, __file__, "--child", case, "--table", table]
                measured = timed_process(argv, env, args.url, src, dst, True)
                runs[case].append(measured)
                print(f"round {i + 1} {case}: {measured['seconds']:.2f} s", file=sys.stderr)
    report(runs)


#: (what, the etl rows with lineage, the key maintained while loading)
SERVER_CASES = [
    ("raw rows, key maintained (the raw pipe's target)", False, True),
    ("raw rows, no key, ADD PRIMARY KEY after", False, False),
    ("etl rows (lineage), no key, ADD PRIMARY KEY after (a first load)", True, False),
    ("etl rows (lineage), key maintained", True, True),
]


def server(args: argparse.Namespace) -> None:
    import _pgbench_db as db
    import psycopg
    from _pgbench_runs import run_etl

    with db.scratch_databases(args.url) as (src, dst):
        db.make_source(src, args.rows)
        run_etl(src, dst, False, None)  # the rows as a plain load writes them
        tag = os.urandom(4).hex()
        files = {False: f"/tmp/etlx_raw_{tag}.bin", True: f"/tmp/etlx_etl_{tag}.bin"}
        with psycopg.connect(src, autocommit=True) as conn:
            conn.execute(
                f"COPY (SELECT * FROM customers ORDER BY id) TO '{files[False]}' (FORMAT binary)"
            )
        table = db.CASE_TABLES["etl"]
        with psycopg.connect(dst, autocommit=True) as conn:
            conn.execute(
                f"COPY (SELECT * FROM {table} ORDER BY id) TO '{files[True]}' (FORMAT binary)"
            )
        try:
            for i in range(args.repeat):
                for what, etl_rows, keyed in SERVER_CASES:
                    cpu = _server_case(dst, files[etl_rows], etl_rows, keyed)
                    parts = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
                    print(
                        f"round {i + 1} {what}: {sum(cpu.values()):.2f} s ({parts}); "
                        f"load {os.getloadavg()[0]:.1f}"
                    )
        finally:
            for path in files.values():  # written by the server, on this host
                with contextlib.suppress(OSError):
                    os.remove(path)


def _server_case(dst: str, path: str, etl_rows: bool, keyed: bool) -> dict[str, float]:
    import psycopg
    from _pgbench_db import DDL
    from _pgbench_meter import cpu_seconds

    ddl = DDL.format(table="server_case")
    if etl_rows:
        ddl = ddl.rstrip().removesuffix(")") + (
            ", _etl_run_id text, _etl_source text, _etl_loaded_at timestamptz)"
        )
    if not keyed:
        ddl = ddl.replace("PRIMARY KEY", "NOT NULL")
    statements = [("COPY", f"COPY server_case FROM '{path}' (FORMAT binary)")]
    if not keyed:
        statements.append(("ADD PRIMARY KEY", "ALTER TABLE server_case ADD PRIMARY KEY (id)"))
    statements.append(("count(*)", "SELECT count(*) FROM server_case"))
    with psycopg.connect(dst, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS server_case")
        conn.execute("CHECKPOINT")
        conn.execute(ddl)
        conn.execute("SET maintenance_work_mem = '256MB'")  # as PostgresSink.finish_load
        # the whole key build in this backend, so that /proc counts all of it
        conn.execute("SET max_parallel_maintenance_workers = 0")
        pid = conn.info.backend_pid
        out = {}
        for label, statement in statements:
            before = cpu_seconds(pid) or 0.0
            conn.execute(statement)
            out[label] = (cpu_seconds(pid) or 0.0) - before
        conn.execute("DROP TABLE server_case")
    return out


def args_for(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(url=args.url, no_cpu=False, batch_size=None, compare_python=None)


def report(runs: dict[str, list[dict[str, Any]]]) -> None:
    def med(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    raw = runs.pop("raw_copy")
    print(
        f"raw_copy: {med([r['seconds'] for r in raw]):.2f} s; CPU: psql {med([r['client_cpu'] for r in raw]):.2f}, "
        f"source {med([r['source_backends'] for r in raw]):.2f}, "
        f"target {med([r['target_backends'] for r in raw]):.2f}; load {med([r['load_1min'] for r in raw]):.1f}"
    )
    for case, rs in runs.items():
        print(
            f"\n{case}: {med([r['seconds'] for r in rs]):.2f} s; CPU: process "
            f"{med([r['client_cpu'] for r in rs]):.2f}, source {med([r['source_backends'] for r in rs]):.2f}, "
            f"target {med([r['target_backends'] for r in rs]):.2f}; load {med([r['load_1min'] for r in rs]):.1f}"
        )
        labels = sorted({k for r in rs for k in r.get("cpu", {})})
        for label in labels:
            values = [r["cpu"].get(label, 0.0) for r in rs if "cpu" in r]
            print(f"    {med(values):6.2f} s  {label}")
        exit_cpu = [r["client_cpu"] - r["process"] for r in rs if "process" in r]
        print(f"    {med(exit_cpu):6.2f} s  exit (the process's CPU after the run)")
        for label in sorted({k for r in rs for k in r.get("wall", {})}):
            values = [r["wall"].get(label, 0.0) for r in rs if "wall" in r]
            print(f"    {med(values):6.2f} s  wall: {label}")


if __name__ == "__main__":
    main()
