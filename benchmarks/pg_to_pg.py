"""PostgreSQL -> PostgreSQL throughput as users run it, side by side with the raw COPY pipe.

Usage::

    python benchmarks/pg_to_pg.py --rows 1000000 --repeat 5 [--cases raw_copy,etl,etl_anon,replay]
        [--dlt] [--scale 1,2,4] [--json out.json]

Creates two throw-away databases on the server named by ``--url`` (default
``ETL_EXPRESS_BENCH_URL``, else ``ETL_EXPRESS_TEST_DATABASE_URL``, else
``postgresql://postgres@127.0.0.1:5432/postgres``), fills the source with an N-row,
11-column CRM ``customers`` table, then times, in rounds where the cases take turns, each case
as a fresh process from its start to its exit:

* ``raw_copy`` -- ``psql -c "COPY (SELECT * FROM customers ORDER BY id) TO STDOUT (FORMAT
  binary)" | psql -c "COPY raw_customers FROM STDIN (FORMAT binary)"`` into a fresh table with
  the same primary key: the physical reference;
* ``etl`` -- ``python load.py``, the script a user writes (:data:`SCRIPT`): ``SQLSource`` ->
  ``PostgresSink`` (upsert on ``id``, lineage columns, a checkpoint per batch), into a fresh
  table: interpreter start, imports, the run and the exit all count;
* ``etl_anon`` -- the same with ``Pseudonymize`` on email, phone, full_name and ``ScrubPII`` on
  notes;
* ``replay`` -- the ``etl`` script once more over the table ``etl`` just loaded, its checkpoint
  removed: the same batches again, every key already in the target (the upsert path);
* ``dlt`` -- with ``--dlt``: dlt's ``sql_table`` with the pyarrow backend (in a child process);
* ``etl_standin`` -- only when named in ``--cases``: ``etl_anon`` with a stand-in for the
  anonymizers (keyed BLAKE2b per value, RE2 scrubbing).

For every run it records the wall time, the CPU time of the process and its children, the CPU
time of the PostgreSQL backends serving the source and the target database (polled from
``/proc``), and the host's load average. The report gives per case the median seconds and
the median of the per-round ratios to the raw pipe (each round runs every case back to back,
so a noisy neighbour hits them alike). ``--scale 1,2,4`` loads ``etl_anon`` (else ``etl``) at
1x, 2x and 4x ``--rows`` into fresh databases and reports the time per size, the time ratio of
each doubling and each run's peak resident memory (``VmHWM``, printed by the script).

This file runs the cases as processes, in rounds, and reports; beside it,
``_pgbench_db.py`` makes the databases and the ``customers`` table, ``_pgbench_meter.py``
measures a process, and ``_pgbench_runs.py`` runs a case inside a process (``dlt`` and
``etl_standin`` in a child of this one).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import secrets
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from _pgbench_db import CASE_TABLES, DDL, default_url, make_source, reset_target, scratch_databases
from _pgbench_meter import timed_process
from _pgbench_runs import ANON_KEY_ENV, dlt_available, run_dlt, run_etl

TARGET_TB_HOURS = 8.0
TARGETS = {"etl_anon": 0.8, "etl": 0.9, "replay": 0.5}  # x raw pipe (issue 24)

# -- the script a user runs --------------------------------------------------------------

#: ``python load.py <target table> <plain|anon> [batch size]``; the URLs come from the
#: environment (never on a command line). It prints one JSON line: rows and peak memory.
SCRIPT = """\
import json, os, sys, time

import etl_express as etl
from etl_express.anonymizers import Pseudonymize, ScrubPII
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource

imported = time.process_time()
table, mode = sys.argv[1], sys.argv[2]
options = {"batch_size": int(sys.argv[3])} if len(sys.argv) > 3 else {}
anonymizers = [
    Pseudonymize(["email", "phone", "full_name"], key=etl.secret("ETL_EXPRESS_BENCH_ANON_KEY")),
    ScrubPII(["notes"]),
]
pipeline = etl.Pipeline(
    name="bench_" + table,
    source=SQLSource(url=etl.secret("BENCH_SOURCE_URL"), table="customers", primary_key="id",
                     **options),
    anonymizers=anonymizers if mode == "anon" else [],
    sink=PostgresSink(table="public." + table, url=etl.secret("BENCH_TARGET_URL")),
    progress=False,
    # the plain case copies the synthetic customers as they are, on purpose (as run_etl)
    detect_pii="refuse" if mode == "anon" else "off",
    # the issue's anonymized case is 3 x Pseudonymize + ScrubPII: the synthetic birth dates
    # are declared, not generalized, so the case stays the one measured before
    not_pii={"birth_date": "synthetic benchmark dates; the measured case leaves them as is"},
)
result = pipeline.run()
ran = time.process_time()
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))
print(json.dumps({"rows": result.rows_written, "status": result.status, "peak_rss_mb": peak,
                  "cpu_imports": imported, "cpu_run": ran - imported}))
"""

#: a case run by ``--compare-python`` (another install of etl-express) is named with this suffix
BEFORE = "@before"


def _compile_package() -> None:
    import compileall

    import etl_express

    compileall.compile_dir(os.path.dirname(etl_express.__file__), quiet=1)


# -- the cases ---------------------------------------------------------------------------


class Cases:
    """Runs each case as a fresh process against one source and one target database."""

    def __init__(self, args: argparse.Namespace, src: str, dst: str, workdir: Path):
        self.args, self.src, self.dst = args, src, dst
        self.script = workdir / "load.py"
        self.script.write_text(SCRIPT)
        self.env = {
            **os.environ,
            "BENCH_SOURCE_URL": src,
            "BENCH_TARGET_URL": dst,
        }
        # as users run it: from compiled bytecode, as pip installs it (not compiled each run)
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        _compile_package()

    def run(self, case: str) -> dict[str, Any]:
        meter = not self.args.no_cpu
        if case == "raw_copy":
            reset_target(self.dst, "raw_customers")
            with psycopg.connect(self.dst, autocommit=True) as conn:
                conn.execute(DDL.format(table="raw_customers"))
            pipe = (
                f"set -o pipefail; psql -X -q {shlex.quote(self.src)} -c "
                + shlex.quote(
                    "COPY (SELECT * FROM customers ORDER BY id) TO STDOUT (FORMAT binary)"
                )
                + f" | psql -X -q {shlex.quote(self.dst)} -c "
                + shlex.quote("COPY raw_customers FROM STDIN (FORMAT binary)")
            )
            argv = ["bash", "-c", pipe]
        elif case == "dlt":
            argv = [sys.executable, __file__, "--child", "dlt", "--url", self.args.url]
            argv += ["--child-src", self.src, "--child-dst", self.dst]
        else:
            base, before = case.removesuffix(BEFORE), case.endswith(BEFORE)
            table = CASE_TABLES[base] + ("_before" if before else "")
            reset_target(self.dst, table, keep_rows=base == "replay")
            if base == "etl_standin":
                argv = [sys.executable, __file__, "--child", case, "--url", self.args.url]
                argv += ["--child-src", self.src, "--child-dst", self.dst]
            else:
                mode = "anon" if base == "etl_anon" else "plain"
                python = self.args.compare_python if before else sys.executable
                argv = [python, str(self.script), table, mode]
                if self.args.batch_size:
                    argv.append(str(self.args.batch_size))
        return timed_process(argv, self.env, self.args.url, self.src, self.dst, meter)


# -- reporting ---------------------------------------------------------------------------


def summarize(rows: int, mb: float, runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Medians; the ratio to the raw pipe is the median of the per-round ratios."""
    raw = [r["seconds"] for r in runs["raw_copy"]]
    out = []
    for case, rs in runs.items():
        ts = [r["seconds"] for r in rs]
        med = statistics.median(ts)
        mb_s = mb / med
        entry: dict[str, Any] = {
            "case": case,
            "runs": len(ts),
            "seconds_median": round(med, 3),
            "seconds_all": ts,
            "rows_per_s": round(rows / med),
            "mb_per_s": round(mb_s, 1),
            "ratio_to_raw_copy": round(statistics.median(r / t for r, t in zip(raw, ts)), 3),
            "ratios_all": [round(r / t, 3) for r, t in zip(raw, ts)],
            "tb_hours": round(1e6 / mb_s / 3600, 2),
            "load_1min_median": round(statistics.median(r["load_1min"] for r in rs), 2),
        }
        for key in (
            "client_cpu",
            "source_backends",
            "target_backends",
            "peak_rss_mb",
            "cpu_imports",
            "cpu_run",
        ):
            values = [r[key] for r in rs if key in r]
            if values:
                entry[key + "_median"] = round(statistics.median(values), 2)
        out.append(entry)
    return out


def targets(report: dict[str, Any]) -> dict[str, Any]:
    """The targets of issue 24 and DESIGN.md, judged on this run."""
    by = {r["case"]: r for r in report["results"]}
    out: dict[str, Any] = {}
    for case, goal in TARGETS.items():
        if case in by:
            out[f"{case}_ratio>={goal}"] = by[case]["ratio_to_raw_copy"] >= goal
    anon = by.get("etl_anon")
    if anon:
        out["anon_1tb_under_8h"] = anon["tb_hours"] < TARGET_TB_HOURS
        if "dlt" in by:
            out["anon_3x_dlt"] = by["dlt"]["seconds_median"] / anon["seconds_median"] >= 3
    scaling = report.get("scaling")
    if scaling:
        out["2x_rows_time<=2.1x"] = all(r <= 2.1 for r in scaling["time_ratio_per_doubling"])
        out["peak_memory_flat(<=1.1x)"] = scaling["memory_ratio_largest"] <= 1.1
    return out


def print_table(rows: int, mb: float, results: list[dict[str, Any]]) -> None:
    print(f"\n{rows:,} rows, {mb:.0f} MB source heap; medians (load = 1-minute load average)")
    print(
        f"{'case':<16} {'s':>7} {'rows/s':>10} {'x raw':>6} {'client':>7} {'import':>7} "
        f"{'run':>6} {'src':>6} {'dst':>6} {'load':>5}  ratios per round"
    )
    for r in results:
        cpu = [
            r.get(k + "_median", float("nan"))
            for k in ("client_cpu", "cpu_imports", "cpu_run", "source_backends", "target_backends")
        ]
        print(
            f"{r['case']:<16} {r['seconds_median']:>7.2f} {r['rows_per_s']:>10,} "
            f"{r['ratio_to_raw_copy']:>6.2f} {cpu[0]:>7.2f} {cpu[1]:>7.2f} {cpu[2]:>6.2f} "
            f"{cpu[3]:>6.2f} {cpu[4]:>6.2f} {r['load_1min_median']:>5.1f}  "
            + " ".join(f"{x:.2f}" for x in r["ratios_all"])
        )
    print(
        "(CPU seconds: client = the process and its children, of which import = interpreter start"
        " and imports, run = Pipeline.run; src, dst = the source's and the target's backends)"
    )


def child_run(args: argparse.Namespace) -> None:
    """``dlt`` or ``etl_standin`` in this (child) process: prints a JSON line."""
    src, dst = args.child_src, args.child_dst
    if args.child == "dlt":
        seconds = run_dlt(src, dst, args.batch_size or 50_000)
    else:
        seconds = run_etl(src, dst, "standin", args.batch_size)
    print(json.dumps({"inner_seconds": seconds}))


def scale(args: argparse.Namespace, case: str, factors: list[int]) -> dict[str, Any]:
    """``case`` (and the raw pipe) at each multiple of ``--rows``, fresh databases per size."""
    out: dict[str, Any] = {"case": case, "sizes": []}
    for factor in factors:
        rows = args.rows * factor
        with scratch_databases(args.url) as (src, dst), tempfile.TemporaryDirectory() as tmp:
            make_source(src, rows)
            cases = Cases(args, src, dst, Path(tmp))
            samples: dict[str, list[dict[str, Any]]] = {"raw_copy": [], case: []}
            for i in range(args.scale_repeat):
                for c in samples:
                    samples[c].append(cases.run(c))
                    _progress(f"{rows:,} rows", i, args.scale_repeat, c, samples[c][-1])
        etl_runs = samples[case]
        out["sizes"].append(
            {
                "rows": rows,
                "seconds_median": round(statistics.median(r["seconds"] for r in etl_runs), 3),
                "raw_copy_seconds_median": round(
                    statistics.median(r["seconds"] for r in samples["raw_copy"]), 3
                ),
                "peak_rss_mb_median": round(
                    statistics.median(r["peak_rss_mb"] for r in etl_runs), 1
                ),
                "peak_rss_mb_all": [round(r["peak_rss_mb"], 1) for r in etl_runs],
                "load_1min_median": round(statistics.median(r["load_1min"] for r in etl_runs), 2),
            }
        )
    sizes = out["sizes"]
    out["time_ratio_per_doubling"] = [
        round(b["seconds_median"] / a["seconds_median"] * (a["rows"] * 2 / b["rows"]), 3)
        for a, b in itertools.pairwise(sizes)
    ]
    out["memory_ratio_largest"] = round(
        sizes[-1]["peak_rss_mb_median"] / sizes[0]["peak_rss_mb_median"], 3
    )
    print(f"\nscaling of {case}:")
    for s in sizes:
        print(
            f"  {s['rows']:>11,} rows {s['seconds_median']:7.2f} s (raw pipe {s['raw_copy_seconds_median']:.2f} s)"
            f" peak {s['peak_rss_mb_median']:.0f} MB, load {s['load_1min_median']:.1f}"
        )
    print(
        f"  time per doubling: {out['time_ratio_per_doubling']}, peak memory largest/smallest "
        f"x{out['memory_ratio_largest']:.2f}"
    )
    return out


def _progress(label: str, i: int, n: int, case: str, run: dict[str, Any]) -> None:
    cpu = " ".join(
        f"{k.split('_')[0]} {run[k]:.2f}"
        for k in ("client_cpu", "source_backends", "target_backends")
        if k in run
    )
    print(
        f"{label} round {i + 1}/{n} {case:<11} {run['seconds']:7.2f} s  cpu: {cpu}  "
        f"load {run['load_1min']:.1f}",
        file=sys.stderr,
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="rounds (medians reported)")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="rows per batch (default: the library's)"
    )
    parser.add_argument(
        "--url", default=default_url(), help="server to create scratch databases on"
    )
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument(
        "--dlt", action="store_true", help="also time dlt (pip install 'dlt[postgres]')"
    )
    parser.add_argument(
        "--scale", help="multiples of --rows to load for the scaling check, e.g. 1,2,4"
    )
    parser.add_argument("--scale-repeat", type=int, default=3, help="runs per size with --scale")
    parser.add_argument(
        "--cases", default="raw_copy,etl,etl_anon,replay", help="comma-separated cases"
    )
    parser.add_argument("--no-cpu", action="store_true", help="do not poll the backends' CPU time")
    parser.add_argument(
        "--compare-python",
        help="also run each etl case with this interpreter (another etl-express install, e.g. "
        "the previous version) in the same rounds, as <case>@before",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-src", help=argparse.SUPPRESS)
    parser.add_argument("--child-dst", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault(ANON_KEY_ENV, secrets.token_urlsafe(48))
    if args.child:
        return child_run(args)

    cases = [c for c in args.cases.split(",") if c]
    if "raw_copy" not in cases:
        cases.insert(0, "raw_copy")
    if "replay" in cases and "etl" not in cases:
        cases.insert(cases.index("replay"), "etl")  # a replay replays what etl loaded
    if "replay" in cases and cases.index("replay") < cases.index("etl"):
        cases.remove("replay")
        cases.insert(cases.index("etl") + 1, "replay")
    if args.compare_python:
        cases += [c + BEFORE for c in cases if c in ("etl", "etl_anon", "replay")]
    if args.dlt and "dlt" not in cases:
        if dlt_available():
            cases.append("dlt")
        else:
            print("skipping dlt: not installed (pip install 'dlt[postgres]')", file=sys.stderr)
    report: dict[str, Any] = {
        "rows": args.rows,
        "batch_size": args.batch_size,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
    with scratch_databases(args.url) as (src, dst), tempfile.TemporaryDirectory() as tmp:
        mb = make_source(src, args.rows)
        report["source_mb"] = round(mb, 1)
        runner = Cases(args, src, dst, Path(tmp))
        for i in range(args.repeat):
            for case in cases:  # in turns, so background noise hits every case alike
                runs[case].append(runner.run(case))
                _progress("", i, args.repeat, case, runs[case][-1])
    report["runs"] = runs
    report["results"] = summarize(args.rows, mb, runs)
    report["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print_table(args.rows, mb, report["results"])
    print(f"load average at start {report['load_at_start']}, at end {report['load_at_end']}")
    if args.scale:
        factors = [int(f) for f in args.scale.split(",")]
        report["scaling"] = scale(args, next(c for c in ("etl_anon", "etl") if c in cases), factors)
    report["targets"] = targets(report)
    print("targets:", ", ".join(f"{k}: {v}" for k, v in report["targets"].items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
