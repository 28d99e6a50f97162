"""How long the store-reading commands take, as a user meets them: each a fresh process.

``etl-express runs``, ``status`` (and ``--json``), ``logs show``, ``logs tail`` and
``quarantine list`` (target: under 0.5 s each) are timed against a store with a realistic
history — by default 50 pipelines x 30 daily runs, five of them parallel runs of four
partitions, 20 log lines a run, three quality checks a run, a few quarantined records and
every pipeline's declaration (freshness) — beside the floor no such command can go under:
``python -c pass``, ``python -c "import psycopg"``, ``etl-express --help`` and what every one of
them imports before it can answer (``import etl_express, typer._adapters, psycopg``: the
package and loguru, typer and the pydantic it checks options with, the driver). Each case runs
``--runs`` times after one warm-up; the script prints the median, the 90th percentile and the
best wall time and the median CPU time (user + system, which load inflates far less than wall
time), ``uptime`` before and after, and exits 1 when a target is missed by the median.

``--baseline-src DIR`` also times another version's commands (``PYTHONPATH=DIR``: the ``src``
folder of its checkout), each of its runs interleaved with one of this version's so that a
change of load touches both alike. ``--breakdown`` then shows where one ``etl-express runs``
and one ``status`` spend their time: the packages they import (``-X importtime``, own time by
package) and a cProfile of each (the top functions by cumulative time).

    python benchmarks/cli_time.py [--url URL | --embedded] [--runs 15] [--breakdown]
        [--baseline-src /tmp/main/src] [--pipelines 50] [--history 30] [--log-lines 20]
        [--only TEXT] [--label after] [--json benchmarks/results/cli_time.json]

Without ``--url`` the store is ``ETL_EXPRESS_DATABASE_URL``; ``--embedded`` uses an embedded
server in a temporary ETL_EXPRESS_HOME (started before the timing; its start is timed apart).
The history is written straight into the store's tables (pipelines named ``bench_cli_*``,
replaced on each start), so use a scratch database. ``--json`` writes the figures under
``--label`` (and ``--baseline-label``) into the file, keeping its other labels.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

SCRIPT = Path(sys.executable).parent / "etl-express"
CLI = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "etl_express.cli"]
TARGET_S = 0.5
PREFIX = "bench_cli_"
#: the pipeline the per-pipeline cases name (it has quarantined records and log lines)
NAMED = PREFIX + "07"


def cases() -> dict[str, tuple[list[str], float | None]]:
    return {
        "python -c pass (interpreter start)": ([sys.executable, "-c", "pass"], None),
        'python -c "import psycopg" (the driver)': (
            [sys.executable, "-c", "import psycopg"],
            None,
        ),
        "etl-express --help": ([*CLI, "--help"], None),
        # what every store-reading command imports whatever it does: the interpreter, the
        # package (loguru), typer (which checks each option through pydantic) and the driver
        'floor: python -c "import etl_express, typer._adapters, psycopg"': (
            [sys.executable, "-c", "import etl_express, typer._adapters, psycopg"],
            None,
        ),
        "etl-express runs": ([*CLI, "runs"], TARGET_S),
        f"etl-express runs {NAMED}": ([*CLI, "runs", NAMED], TARGET_S),
        "etl-express runs --json -n 200": ([*CLI, "runs", "--json", "-n", "200"], TARGET_S),
        "etl-express status": ([*CLI, "status"], TARGET_S),
        "etl-express status --json": ([*CLI, "status", "--json"], TARGET_S),
        "etl-express logs show": ([*CLI, "logs", "show"], TARGET_S),
        f"etl-express logs show {NAMED}": ([*CLI, "logs", "show", NAMED], TARGET_S),
        f"etl-express logs tail {NAMED}": ([*CLI, "logs", "tail", NAMED], TARGET_S),
        f"etl-express quarantine list {NAMED}": ([*CLI, "quarantine", "list", NAMED], TARGET_S),
    }


# -- the history ---------------------------------------------------------------------------


def fill(url: str, pipelines: int, history: int, log_lines: int) -> dict[str, int]:
    """Write a realistic history of ``pipelines`` x ``history`` daily runs into the store at
    ``url`` (created first, as a run would); the rows written a table."""
    import psycopg

    from etl_express.store.checkpoints import CheckpointStore
    from etl_express.store.database import libpq_url

    CheckpointStore(url).ensure_schema()
    rnd = random.Random(25)
    at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    runs: list[tuple[Any, ...]] = []
    logs: list[tuple[Any, ...]] = []
    checks: list[tuple[Any, ...]] = []
    quarantined: list[tuple[Any, ...]] = []
    declared: list[tuple[Any, ...]] = []
    for p in range(pipelines):
        name = f"{PREFIX}{p:02d}"
        freshness = None if p % 5 == 4 else [3600.0, 6 * 3600.0, 93600.0][p % 3]
        declared.append((name, freshness, json.dumps(["email"]), f"bench.{name}", at))
        parallel = p % 10 == 3  # a parallel run of four partitions each day
        for day in range(history):
            started = at - dt.timedelta(days=day, minutes=rnd.randrange(600))
            failed = rnd.random() < 0.05 or (p == 11 and day == 0)
            seconds = rnd.uniform(2, 300)
            rows = rnd.randrange(1_000, 2_000_000)
            parts = [("*", None)]
            if parallel:
                parts += [(json.dumps({"shard": k}), k) for k in range(4)]
            for part, _ in parts:
                run_id = str(uuid.UUID(int=rnd.getrandbits(128)))
                key = part if parallel else ""
                error = "ETLError: relation bench.source does not exist" if failed else None
                status = "failed" if failed else "succeeded"
                finished = started + dt.timedelta(seconds=seconds)
                runs.append(
                    (run_id, name, key, status, started, finished, finished, "bench-host",
                     rows, rows - rows // 1000, rows // 1000, rows // 50_000 + 1, error)
                )  # fmt: skip
                for i in range(log_lines):
                    ts = started + dt.timedelta(seconds=seconds * i / log_lines)
                    level = "WARNING" if i == 7 else "INFO"
                    logs.append(
                        (ts, level, name, run_id, key or "all", f"batch {i}: {rows // log_lines} rows",
                         json.dumps({"module": "engine", "function": "run", "line": 100 + i}))
                    )  # fmt: skip
                for check in ("row_count", "not_null:id", "unique:id"):
                    checks.append(
                        (run_id, name, key, check, "passed", "warn", json.dumps({"n": rows}),
                         finished)
                    )  # fmt: skip
                if p % 7 == 0 and day % 3 == 0:
                    for k in range(5):
                        record = json.dumps({"id": k, "birth_date": "***"})
                        reason = "not a valid date: column 'birth_date'"
                        quarantined.append(
                            (run_id, name, key, json.dumps({"id": k}), reason, "convert", record,
                             finished, None)
                        )  # fmt: skip
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        like = PREFIX + "%"
        for table in ("runs", "logs", "quality_checks", "quarantine", "pipelines"):
            cur.execute(f"DELETE FROM etl_express.{table} WHERE pipeline LIKE %s", (like,))
        copies = {
            "runs (run_id, pipeline, partition, status, started_at, finished_at, heartbeat_at, "
            "owner, rows_read, rows_written, rows_quarantined, batches, error)": runs,
            "logs (ts, level, pipeline, run_id, partition, message, extra)": logs,
            "quality_checks (run_id, pipeline, partition, name, status, policy, details, "
            "created_at)": checks,
            "quarantine (run_id, pipeline, partition, position, reason, stage, record, "
            "created_at, replayed_at)": quarantined,
            "pipelines (pipeline, freshness_s, pii, target, declared_at)": declared,
        }
        for target, rows in copies.items():
            with cur.copy(f"COPY etl_express.{target} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        cur.execute("ANALYZE etl_express.runs")
        cur.execute("ANALYZE etl_express.logs")
    return {"runs": len(runs), "logs": len(logs), "quality_checks": len(checks),
            "quarantine": len(quarantined), "pipelines": len(declared)}  # fmt: skip


# -- timing --------------------------------------------------------------------------------


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one fresh process running ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # status exits 1 for a stale or failed pipeline
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr.decode()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def uptime() -> str:
    proc = subprocess.run(["uptime"], capture_output=True, text=True)
    return proc.stdout.strip() or "load average: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def heaviest_imports(args: list[str], env: dict[str, str], n: int = 10) -> list[tuple[float, str]]:
    """The packages a command imports, by the import time spent in their own modules."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "etl_express.cli", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    found: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            parts = match.group(2).split(".")
            name = ".".join(parts[:2]) if parts[0] == "etl_express" else parts[0]
            found[name] = found.get(name, 0.0) + int(match.group(1)) / 1e6
    return sorted(((s, name) for name, s in found.items()), reverse=True)[:n]


PROFILE = """
import cProfile, pstats, sys
sys.argv = ["etl-express", *sys.argv[1:]]
from etl_express.cli import main
profile = cProfile.Profile()
profile.enable()
try:
    main()
except SystemExit:
    pass
profile.disable()
sys.stdout = sys.__stderr__
# the command's own calls and the drivers' (the imports are the -X importtime table's)
stats = pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative")
stats.print_stats(r"etl_express/(?!cli/__init__)|sqlalchemy/engine/(base|create)|psycopg/connection", 16)
"""


def profile(args: list[str], env: dict[str, str]) -> str:
    """The top functions by cumulative time of one fresh process running the command."""
    proc = subprocess.run(
        [sys.executable, "-c", PROFILE, *args], env=env, capture_output=True, text=True
    )
    lines = proc.stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if "function calls" in line), 0)
    return "\n".join(lines[start:])


def summary(samples: list[tuple[float, float]], target: float | None, runs: int) -> dict[str, Any]:
    times = [wall for wall, _ in samples]
    return {
        "median_s": round(statistics.median(times), 4),
        "p90_s": round(p90(times), 4),
        "best_s": round(min(times), 4),
        "cpu_median_s": round(statistics.median(c for _, c in samples), 4),
        "runs": runs,
        "target_s": target,
    }


def line(name: str, figures: dict[str, Any]) -> str:
    text = (
        f"{name:52} median {figures['median_s']:.3f}  p90 {figures['p90_s']:.3f}  "
        f"best {figures['best_s']:.3f}  cpu {figures['cpu_median_s']:.3f} s"
    )
    target = figures["target_s"]
    if target is not None:
        text += f"  < {target:.1f} s: {'met' if figures['median_s'] < target else 'MISSED'}"
    return text


def measure(
    variants: dict[str, dict[str, str]], runs: int, only: str | None
) -> dict[str, dict[str, Any]]:
    """Each case's figures under each variant (its environment), the variants' runs
    interleaved so that a change of load touches them alike."""
    reports: dict[str, dict[str, Any]] = {label: {} for label in variants}
    for name, (command, target) in cases().items():
        if only and only not in name:
            continue
        baseline = command[0] == sys.executable and "etl_express" not in " ".join(command)
        chosen = dict(list(variants.items())[:1]) if baseline else variants
        for env in chosen.values():
            timed(command, env)  # warm the file cache and the .pyc files
        samples: dict[str, list[tuple[float, float]]] = {label: [] for label in chosen}
        for _ in range(runs):
            for label, env in chosen.items():
                samples[label].append(timed(command, env))
        for label in chosen:
            reports[label][name] = summary(samples[label], target, runs)
            tag = f"[{label}] " if len(chosen) > 1 else ""
            print(line(tag + name, reports[label][name]), flush=True)
    return reports


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="the store (default: ETL_EXPRESS_DATABASE_URL)")
    parser.add_argument("--embedded", action="store_true", help="use an embedded server")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--pipelines", type=int, default=50)
    parser.add_argument("--history", type=int, default=30, help="daily runs a pipeline")
    parser.add_argument("--log-lines", type=int, default=20, help="log lines a run")
    parser.add_argument("--only", help="only the cases whose name contains this")
    parser.add_argument("--breakdown", action="store_true", help="imports and cProfile")
    parser.add_argument("--label", default="after", help="the key of this code's figures")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="also time the commands of another version, interleaved with this one: the src "
        "folder of its checkout (git archive main src | tar -x -C /tmp/main)",
    )
    parser.add_argument("--baseline-label", default="before")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    env = dict(os.environ)
    home = None
    report: dict[str, Any] = {}
    if args.embedded:
        home = Path(tempfile.mkdtemp(prefix="etl-cli-bench-", dir="/tmp"))
        home.chmod(0o755)  # the server runs as another user under root
        env.pop("ETL_EXPRESS_DATABASE_URL", None)
        env["ETL_EXPRESS_HOME"] = os.environ["ETL_EXPRESS_HOME"] = str(home)
        start = time.perf_counter()
        probe = "from etl_express.store.embedded import embedded_url as u; print(u())"
        url = subprocess.run(
            [sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        report["embedded server start_s"] = round(time.perf_counter() - start, 3)
        print(
            f"embedded server start (first use, not in the figures): {report['embedded server start_s']:.3f} s"
        )
    elif args.url:
        url = env["ETL_EXPRESS_DATABASE_URL"] = args.url
    elif env.get("ETL_EXPRESS_DATABASE_URL"):
        url = env["ETL_EXPRESS_DATABASE_URL"]
    else:
        parser.error("name a store: --url, ETL_EXPRESS_DATABASE_URL or --embedded")
    variants = {args.label: env}
    if args.baseline_src is not None:
        variants[args.baseline_label] = {**env, "PYTHONPATH": str(args.baseline_src.resolve())}
    try:
        written = fill(url, args.pipelines, args.history, args.log_lines)
        report["store"] = {"kind": "embedded" if args.embedded else "server", **written}
        print("store: " + ", ".join(f"{n:,} {table}" for table, n in written.items()))
        report["uptime_before"] = uptime()
        print(report["uptime_before"])
        figures = measure(variants, args.runs, args.only)
        report["uptime_after"] = uptime()
        print(report["uptime_after"])
        if args.breakdown:
            for command in (["runs"], ["status"]):
                shown = f"`etl-express {' '.join(command)}`"
                print(f"\nheaviest imports of {shown} (-X importtime, own time by package):")
                for seconds, package in heaviest_imports(command, env):
                    print(f"  {seconds:7.3f} s  {package}")
                print(f"\ncProfile of {shown} (one fresh process):")
                print(profile(command, env))
    finally:
        if home is not None:
            subprocess.run([*CLI, "server", "stop"], env=env, stdout=subprocess.DEVNULL)
            shutil.rmtree(home, ignore_errors=True)
    missed = [
        name
        for name, f in figures[args.label].items()
        if f["target_s"] is not None and f["median_s"] >= f["target_s"]
    ]
    if args.json:
        previous = json.loads(args.json.read_text()) if args.json.is_file() else {}
        for label, cases_figures in figures.items():
            previous[label] = {**report, **cases_figures}
        args.json.write_text(json.dumps(previous, indent=2, ensure_ascii=False) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
