"""Delete reconciliation against a full reload of the same table.

Usage::

    python benchmarks/reconcile.py [--rows 1000000 2000000] [--json benchmarks/results/reconcile.json]

For each size: two throw-away databases on the server named by ``--url`` (default as in
``pg_to_pg.py``), the 11-column CRM ``customers`` table of ``pg_to_pg.py`` in the source, and
an initial load with ``Pipeline(deletes="soft")``. Then, each in a fresh ``python`` process
(interpreter start and imports included, as users run it):

* ``unchanged``   — a run when nothing changed: the incremental pass reads nothing, the
  reconciliation compares range checksums only;
* ``changed_1pct`` — after 0.5 % of the rows are deleted and 0.5 % updated without moving
  their ``updated_at`` (changes an incremental read never sees);
* ``full_reload`` — the alternative: load the whole table again into an empty target.

Reported: wall seconds of each process and the reconciliation's own counts and seconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pgbench_db import default_url, make_source, scratch_databases


def child(case: str, src: str, dst: str) -> dict[str, Any]:
    from etl_express import Pipeline
    from etl_express.sinks import PostgresSink
    from etl_express.sources import SQLSource

    reload = case == "full_reload"
    pipeline = Pipeline(
        name="bench_reload" if reload else "bench_reconcile",
        source=SQLSource(url=src, table="customers", primary_key="id", cursor="updated_at"),
        sink=PostgresSink(table="public.reloaded" if reload else "public.customers", url=dst),
        deletes=None if reload else "soft",
        progress=False,
    )
    result = pipeline.run(reset=reload)
    assert result.ok, result
    details = {c.name: c.details for c in result.checks}.get("deletes", {})
    return {"rows_read": result.rows_read, "rows_written": result.rows_written, **details}


def timed(case: str, src: str, dst: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", case, src, dst],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return {
        "case": case,
        "wall_seconds": round(wall, 2),
        **json.loads(proc.stdout.splitlines()[-1]),
    }


def mutate(src: str, rows: int) -> None:
    with psycopg.connect(src, autocommit=True) as conn:
        conn.execute("DELETE FROM customers WHERE id % 200 = 3")
        conn.execute("UPDATE customers SET balance = balance + 1 WHERE id % 200 = 7")
        conn.execute("VACUUM ANALYZE customers")


def run_size(url: str, rows: int) -> list[dict[str, Any]]:
    with scratch_databases(url) as (src, dst):
        mb = make_source(src, rows)
        initial = timed("initial", src, dst)
        out = [{"rows": rows, "source_mb": round(mb, 1), **initial}]
        out.append({"rows": rows, **timed("unchanged", src, dst)})
        mutate(src, rows)
        out.append({"rows": rows, **timed("changed_1pct", src, dst)})
        out.append({"rows": rows, **timed("full_reload", src, dst)})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 2_000_000])
    parser.add_argument("--url", default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", nargs=3, metavar=("CASE", "SRC", "DST"))
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child), default=str))
        return
    url = args.url or default_url()
    results = [r for rows in args.rows for r in run_size(url, rows)]
    keys = ["rows", "case", "wall_seconds", "rows_read", "seconds", "segments_compared"]
    keys += ["keys_fetched", "rows_reread", "deletes_applied"]
    print(" | ".join(keys))
    for r in results:
        print(" | ".join(str(r.get(k, "")) for k in keys))
    if args.json:
        report = {
            "machine": platform.platform(),
            "cpus": _cpus(),
            "load_average": _load(),
            "results": results,
        }
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def _load() -> list[float]:
    import os

    return [round(x, 1) for x in os.getloadavg()]


if __name__ == "__main__":
    main()
