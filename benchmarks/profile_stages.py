"""Where the CPU of a PostgreSQL -> PostgreSQL load goes: per stage, per thread, per process.

Usage::

    python benchmarks/profile_stages.py [--rows 1000000] [--cases raw_copy,etl,etl_anon] [--repeat 2]

Runs the cases of ``pg_to_pg.py`` on freshly generated data and prints, for each run, the wall
time, the CPU time of this process (all its threads), the CPU time of everything else on the
machine (the PostgreSQL server processes, from ``/proc/stat``) and, for the etl cases, the CPU
time of each pipeline stage measured with ``time.thread_time()`` in the thread that runs it.
A stage's wall time above its CPU time is time spent waiting: for the GIL, for a core, or for
the server.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import resource
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("ETL_EXPRESS_BENCH_ANON_KEY", secrets.token_hex(32))

import pg_to_pg as bench

CPU: collections.Counter[str] = collections.Counter()
WALL: collections.Counter[str] = collections.Counter()


def _timed(owner: Any, name: str, label: str) -> None:
    """Wrap ``owner.name`` to add its thread CPU and wall time under ``label``."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        c0, w0 = time.thread_time(), time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            CPU[label] += time.thread_time() - c0
            WALL[label] += time.perf_counter() - w0

    setattr(owner, name, wrapper)


def _timed_generator(owner: Any, name: str, label: str) -> None:
    """Wrap a generator method: count the thread CPU spent producing each item."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        items = original(*args, **kwargs)
        while True:
            c0 = time.thread_time()
            try:
                item = next(items)
            except StopIteration:
                CPU[label] += time.thread_time() - c0
                return
            CPU[label] += time.thread_time() - c0
            yield item

    setattr(owner, name, wrapper)


def instrument() -> None:
    from etl_express._engine import batches as runner
    from etl_express.anonymizers import Pseudonymize, ScrubPII
    from etl_express.sinks import pgcopy, postgres
    from etl_express.sources.sql import source

    _timed_generator(
        source.SQLSource, "_read_postgres", "read: binary COPY drained and decoded (or ADBC)"
    )
    _timed(runner.PartitionRunner, "_prepare", "anonymize thread: convert, transform, anonymize")
    _timed(Pseudonymize, "anonymize", "  Pseudonymize")
    _timed(ScrubPII, "anonymize", "  ScrubPII")
    _timed(runner.PartitionRunner, "_commit", "load thread: COPY + checkpoint transaction")
    _timed(postgres.PostgresSink, "write", "  PostgresSink.write")
    _timed_generator(pgcopy, "_binary_chunks", "  binary COPY encoding")


def machine_busy_seconds() -> float:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(case: str, run: Callable[[], float]) -> None:
    CPU.clear()
    WALL.clear()
    busy0, own0 = machine_busy_seconds(), own_cpu_seconds()
    wall = run()
    own = own_cpu_seconds() - own0
    others = machine_busy_seconds() - busy0 - own
    print(
        f"{case:10s} wall {wall:5.2f} s | this process {own:5.2f} s CPU | servers and the rest {others:5.2f} s CPU"
        f" | machine {100 * (own + others) / (wall * (os.cpu_count() or 1)):.0f}% busy"
    )
    for label, cpu in CPU.items():
        wall_text = (
            f"{WALL[label]:6.2f} s wall" if label in WALL else "     - s wall"
        )  # a generator's waits are not its own
        print(f"    {cpu:5.2f} s CPU {wall_text}  {label}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--cases", default="raw_copy,etl,etl_anon")
    parser.add_argument("--url", default=bench.default_url())
    args = parser.parse_args(argv)
    instrument()
    with bench.scratch_databases(args.url) as (src, dst):
        bench.make_source(src, args.rows)
        for _ in range(args.repeat):
            for case in args.cases.split(","):
                measure(case, bench.case_runner(case, src, dst, args.batch_size))


if __name__ == "__main__":
    main()
