"""Where a load's wall time goes, statement by statement, and how busy the host's cores are.

Runs one case of ``pg_to_pg.py`` (the script a user writes, a fresh process) with the target
database's statements logged (``ALTER DATABASE ... SET log_min_duration_statement = 0``, reset
afterwards) while it samples the host's CPU every 0.1 s (``/proc/stat``), then prints:

* the phases of the run from the target's log: the process start until the first statement
  (interpreter start and imports), until the first ``COPY`` into the target (the run's start),
  the batches (their ``COPY``, ``COMMIT`` and the gaps between them), the key build, anything
  else after the last batch, and the process's end;
* any statement the target refused, and every ``ROLLBACK`` once the batches began;
* the cores in use per phase (2.0 = both cores of a 2-core host busy).

Usage::

    python benchmarks/timeline.py [--rows 1000000] [--case etl|etl_anon] [--repeat 2]
        [--server-log /var/log/postgresql/postgresql-15-main.log]

Needs the server on this host and its log file readable (a Debian cluster logs to
``/var/log/postgresql/postgresql-<version>-main.log``; with ``logging_collector`` on, pass the
file ``SELECT pg_current_logfile()`` names, under the data directory). This is how session 33
found the last batch of every first load refused and done again (docs/performance.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).parent))
import _pgbench_db as db
import pg_to_pg
from _pgbench_runs import ANON_KEY_ENV

LINE = re.compile(
    r"^(\S+ \S+) \S+ \[\d+\] \S+@(\S+) (LOG|ERROR):  "
    r"(?:duration: ([\d.]+) ms  (?:statement|(?:parse|bind|execute) [^:]*): )?(.*)"
)


class CoreSampler:
    """The host's busy cores, sampled from ``/proc/stat`` every ``interval`` seconds."""

    def __init__(self, interval: float = 0.1):
        self.interval, self.samples = interval, []  # (perf_counter, busy cores)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    @staticmethod
    def _jiffies() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # all, idle + iowait

    def _poll(self) -> None:
        cores = os.cpu_count() or 1
        total, idle = self._jiffies()
        while not self._stop.wait(self.interval):
            t2, i2 = self._jiffies()
            busy = 1 - (i2 - idle) / max(t2 - total, 1)
            self.samples.append((time.perf_counter(), busy * cores))
            total, idle = t2, i2

    def __enter__(self) -> CoreSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def mean(self, start: float, end: float) -> float | None:
        inside = [c for t, c in self.samples if start < t <= end + self.interval]
        return sum(inside) / len(inside) if inside else None


def statements(log: Path, offset: int, database: str) -> list[dict[str, Any]]:
    """The target database's log lines after byte ``offset``: start and end (epoch seconds),
    the statement's first words, and whether it was an error."""
    out = []
    with open(log, errors="replace") as f:
        f.seek(offset)
        for line in f:
            m = LINE.match(line)
            if not m or m.group(2) != database:
                continue
            end = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            ms = float(m.group(4) or 0)
            out.append(
                {"start": end - ms / 1000, "end": end, "text": m.group(5), "error": m.group(3)}
            )
    return out


def phases(stmts: list[dict[str, Any]], t0: float, t1: float) -> list[tuple[str, float, float]]:
    """(name, start, end) in seconds from the process start, from the target's statements."""
    copies = [s for s in stmts if s["text"].startswith("COPY ") and "FROM STDIN" in s["text"]]
    keys = [s for s in stmts if "ADD PRIMARY KEY" in s["text"]]
    first = min((s["start"] for s in stmts), default=t1)
    out = [("interpreter start and imports, building the pipeline", t0, first)]
    if copies:
        out.append(
            ("the run's start, until the first COPY into the target", first, copies[0]["start"])
        )
        out.append(
            (
                "the batches (first COPY to the last one's end)",
                copies[0]["start"],
                copies[-1]["end"],
            )
        )
        last = copies[-1]["end"]
        if keys and keys[-1]["start"] > copies[-1]["start"]:
            out.append(("after the batches, before the key build", last, keys[-1]["start"]))
            out.append(("the key build (ADD PRIMARY KEY)", keys[-1]["start"], keys[-1]["end"]))
            last = keys[-1]["end"]
        end = max(s["end"] for s in stmts)
        out.append(("the run's checks and records", last, end))
        out.append(("the process's end", end, t1))
    return [(name, a - t0, b - t0) for name, a, b in out]


def run_once(args: argparse.Namespace, src: str, dst: str, script: Path) -> None:
    table = db.CASE_TABLES[args.case]
    db.reset_target(dst, table)
    dbname = db.database_name(dst)
    with psycopg.connect(args.url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET log_min_duration_statement = 0").format(
                sql.Identifier(dbname)
            )
        )
    offset = args.server_log.stat().st_size
    env = {**os.environ, "BENCH_SOURCE_URL": src, "BENCH_TARGET_URL": dst}
    mode = "anon" if args.case == "etl_anon" else "plain"
    try:
        with CoreSampler() as cores:
            t0 = time.time()
            p0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, str(script), table, mode], env=env, capture_output=True
            )
            t1 = time.time()
    finally:
        with psycopg.connect(args.url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} RESET log_min_duration_statement").format(
                    sql.Identifier(dbname)
                )
            )
    if proc.returncode:
        raise SystemExit(proc.stderr.decode()[-3000:])
    time.sleep(0.2)  # the server's last lines reach the file
    stmts = statements(args.server_log, offset, dbname)
    copies = [s for s in stmts if s["text"].startswith("COPY ") and "FROM STDIN" in s["text"]]
    commits = [s for s in stmts if s["text"].startswith("COMMIT")]
    print(f"\n{args.case}: {t1 - t0:.2f} s, {len(copies)} COPY into the target")
    for name, a, b in phases(stmts, t0, t1):
        busy = cores.mean(p0 + a, p0 + b)
        print(
            f"  {a:6.2f} - {b:6.2f}  {b - a:5.2f} s  cores {busy if busy is not None else float('nan'):3.1f}  {name}"
        )
    if copies:
        busy_copy = sum(s["end"] - s["start"] for s in copies)
        span = copies[-1]["end"] - copies[0]["start"]
        print(
            f"  in the batches: COPY {busy_copy:.2f} s of {span:.2f} s, COMMIT {sum(s['end'] - s['start'] for s in commits):.2f} s"
        )
    first_copy = copies[0]["start"] if copies else t1
    refused = [  # an error anywhere; a rollback once the batches began (reads end in one too)
        s
        for s in stmts
        if s["error"] == "ERROR" or (s["text"].startswith("ROLLBACK") and s["start"] > first_copy)
    ]
    for s in refused:
        print(f"  {s['start'] - t0:6.2f}  {s['error']}: {s['text'][:90]}")
    if not any(s["error"] == "ERROR" for s in stmts):
        print("  no statement refused")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=db.default_url())
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--case", choices=["etl", "etl_anon"], default="etl")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--server-log", type=Path, default=Path("/var/log/postgresql/postgresql-15-main.log")
    )
    args = parser.parse_args()
    if args.case == "etl_anon":
        os.environ.setdefault(ANON_KEY_ENV, secrets.token_urlsafe(48))
    if not os.access(args.server_log, os.R_OK):
        raise SystemExit(f"cannot read the server's log {args.server_log}: pass --server-log")
    with db.scratch_databases(args.url) as (src, dst), tempfile.TemporaryDirectory() as tmp:
        mb = db.make_source(src, args.rows)
        print(f"{args.rows:,} rows, {mb:.0f} MB source heap")
        script = Path(tmp) / "load.py"
        script.write_text(pg_to_pg.SCRIPT)
        for _ in range(args.repeat):
            run_once(args, src, dst, script)


if __name__ == "__main__":
    main()
