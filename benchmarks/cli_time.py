"""How long the store-reading commands take, as a user meets them: each a fresh process.

``etl-express runs``, ``status`` and ``logs show`` (target: under 0.5 s each on a quiet machine)
are timed against a store holding a few pipelines' runs, beside ``python -c pass`` and
``etl-express --help`` for reference. Each case runs ``--runs`` times; the script prints the
median and best wall time and the median CPU time (user + system, which load inflates less
than wall time), and exits 1 when a target is missed by the median.

``--breakdown`` then shows where one ``etl-express runs`` spends its time, in a fresh process:
the imports (``-X importtime``: the heaviest packages) and each step after them — resolving the
store (``--embedded``: finding the embedded server), creating the engine, the schema check or
migration, the first connection and the query.

    python benchmarks/cli_time.py [--url URL | --embedded] [--runs 15] [--breakdown]
                                  [--json benchmarks/results/cli_time.json]

Without ``--url`` the store is ``ETL_EXPRESS_DATABASE_URL``; ``--embedded`` uses an embedded
server in a temporary ETL_EXPRESS_HOME (started before the timing; its start is timed apart).
Run it on a quiet machine: under load every figure grows alike.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "etl-express"
CLI = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "etl_express.cli"]
TARGET_S = 0.5
CASES: dict[str, tuple[list[str], float | None]] = {
    "python -c pass (interpreter start)": ([sys.executable, "-c", "pass"], None),
    "etl-express --help": ([*CLI, "--help"], None),
    "etl-express runs": ([*CLI, "runs", "-n", "20"], TARGET_S),
    "etl-express status": ([*CLI, "status"], TARGET_S),
    "etl-express logs show": ([*CLI, "logs", "show"], TARGET_S),
}

FILL = """
import etl_express as etl
from etl_express.sinks import PostgresSink


class Numbers(etl.Source):
    name, primary_key = "numbers", ["id"]

    def read(self, position=None, partition=None):
        yield etl.Batch([{"id": i, "n": i * i} for i in range(100)], position=100)


for name in ("bench_cli_a", "bench_cli_b", "bench_cli_c"):
    etl.Pipeline(name, Numbers(), sink=PostgresSink(f"bench_cli.{name}"), freshness="1d",
                 progress=False).run(reset=True)
"""

BREAKDOWN = """
import sys, time
t0 = time.perf_counter()
steps = []
def step(what):
    global t0
    t = time.perf_counter(); steps.append((what, t - t0)); t0 = t
from etl_express.cli import _register, app; _register(); step("import the CLI (typer, its commands)")
from etl_express.cli._pipelines import open_store
import sqlalchemy, sqlalchemy.dialects.postgresql.psycopg, psycopg; step("import SQLAlchemy and psycopg")
from etl_express.store.checkpoints import CheckpointStore; step("import the store modules")
from etl_express.store.database import resolve_url
url = resolve_url(None); step("resolve the store URL (embedded: find or start the server)")
store = CheckpointStore(url); step("create the engine")
with store.engine.connect(): pass
step("first connection")
store.ensure_schema(); step("schema check / migrations")
from etl_express.cli.runs import run_rows
run_rows(store, None, 20); step("the runs query")
for what, seconds in steps:
    print(f"  {seconds:7.3f} s  {what}")
"""


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one fresh process running ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    if proc.returncode not in (0, 1):  # status exits 1 for a stale or failed pipeline
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr.decode()[-2000:]}")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def heaviest_imports(env: dict[str, str], n: int = 8) -> list[tuple[float, str]]:
    """The top-level packages ``etl-express runs`` imports, by cumulative import time."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "etl_express.cli", "runs", "-n", "20"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if match and len(match.group(2)) <= 2:  # a package imported at the top level
            name = match.group(3).split(".")[0]
            found[name] = max(found.get(name, 0.0), int(match.group(1)) / 1e6)
    return sorted(((s, name) for name, s in found.items()), reverse=True)[:n]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="the store (default: ETL_EXPRESS_DATABASE_URL)")
    parser.add_argument("--embedded", action="store_true", help="use an embedded server")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--breakdown", action="store_true", help="where `runs` spends its time")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    env = dict(os.environ)
    home = None
    report: dict[str, object] = {}
    if args.embedded:
        home = Path(tempfile.mkdtemp(prefix="etl-cli-bench-", dir="/tmp"))
        home.chmod(0o755)  # the server runs as another user under root
        env.pop("ETL_EXPRESS_DATABASE_URL", None)
        env["ETL_EXPRESS_HOME"] = str(home)
        start = time.perf_counter()
        subprocess.run([*CLI, "server", "status"], env=env, stdout=subprocess.DEVNULL)
        subprocess.run(
            [sys.executable, "-c", "from etl_express.store.embedded import embedded_url as u; u()"],
            env=env,
            check=True,
        )
        report["embedded server start_s"] = round(time.perf_counter() - start, 3)
        print(
            f"{'embedded server start (first use, excluded below)':50} {report['embedded server start_s']:.3f} s"
        )
    elif args.url:
        env["ETL_EXPRESS_DATABASE_URL"] = args.url
    elif not env.get("ETL_EXPRESS_DATABASE_URL"):
        parser.error("name a store: --url, ETL_EXPRESS_DATABASE_URL or --embedded")
    failed = False
    try:
        subprocess.run([sys.executable, "-c", FILL], env=env, check=True, stderr=subprocess.DEVNULL)
        for name, (command, target) in CASES.items():
            timed(command, env)  # warm the file cache and the .pyc files
            samples = [timed(command, env) for _ in range(args.runs)]
            times = [wall for wall, _ in samples]
            median, best = statistics.median(times), min(times)
            cpu = statistics.median(c for _, c in samples)
            verdict = ""
            if target is not None:
                ok = median < target
                failed |= not ok
                verdict = f"  target < {target:.1f} s: {'met' if ok else 'MISSED'}"
            print(f"{name:50} median {median:.3f} s  best {best:.3f} s  cpu {cpu:.3f} s{verdict}")
            report[name] = {
                "median_s": round(median, 4),
                "best_s": round(best, 4),
                "cpu_median_s": round(cpu, 4),
                "runs": args.runs,
                "target_s": target,
            }
        if args.breakdown:
            print("where `etl-express runs` spends its time (one fresh process):")
            subprocess.run([sys.executable, "-c", BREAKDOWN], env=env, check=True)
            print("heaviest imports (cumulative, -X importtime):")
            for seconds, package in heaviest_imports(env):
                print(f"  {seconds:7.3f} s  {package}")
    finally:
        if home is not None:
            subprocess.run([*CLI, "server", "stop"], env=env, stdout=subprocess.DEVNULL)
            shutil.rmtree(home, ignore_errors=True)
    report["load_average_1m"] = os.getloadavg()[0]
    report["store"] = "embedded" if args.embedded else "server"
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
