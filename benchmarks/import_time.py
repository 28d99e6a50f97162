"""How long a fresh process takes to import etl-express and to print the CLI's help.

Airflow imports DAG files every few seconds, so ``import etl_express`` must stay light (target
under 0.3 s) and ``etl-express --help`` / ``--version`` answer at once (target under 0.5 s); a
load script's imports (the common classes, the engine) are measured too: they are paid by every
fresh ``python load.py`` before its first row moves. Each case runs
in a new interpreter ``--runs`` times; the script prints the median and the best wall time,
its CPU time (user + system, which load inflates less than wall time), the bare interpreter's
start-up for reference, and exits 1 when a target is missed (by the
median). Run it on a quiet machine: under load every figure grows alike. On a shared one,
``--instructions`` also counts each case's instructions once under valgrind (cachegrind
without its cache simulation): the same within about 1 % from run to run whatever the load,
so a change of a few milliseconds shows.

    python benchmarks/import_time.py [--runs 15] [--instructions]
        [--json benchmarks/results/import_time.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = Path(sys.executable).parent / ("etl-express.exe" if os.name == "nt" else "etl-express")
LOAD_SCRIPT_IMPORTS = (
    "import etl_express as etl\n"
    "from etl_express.anonymizers import Pseudonymize, ScrubPII\n"
    "from etl_express.sinks import PostgresSink\n"
    "from etl_express.sources import SQLSource\n"
    "etl.Pipeline\n"
)
CASES: dict[str, tuple[list[str], float | None]] = {
    "python -c pass (interpreter start)": ([sys.executable, "-c", "pass"], None),
    "import etl_express": ([sys.executable, "-c", "import etl_express"], 0.3),
    # the console script beside this interpreter (a pyenv shim in front would add its own start)
    "etl-express --help": (
        [str(SCRIPT), "--help"]
        if SCRIPT.is_file()
        else [sys.executable, "-m", "etl_express.cli", "--help"],
        0.5,
    ),
    "etl-express --version": (
        [str(SCRIPT), "--version"]
        if SCRIPT.is_file()
        else [sys.executable, "-m", "etl_express.cli", "--version"],
        0.5,
    ),
    "import etl_express; etl.Pipeline (engine loaded)": (
        [sys.executable, "-c", "import etl_express as etl; etl.Pipeline"],
        None,
    ),
    # what a load script imports before its first row moves (benchmarks/pg_to_pg.py SCRIPT)
    "a load script's imports (Pipeline, SQLSource, PostgresSink, Pseudonymize, ScrubPII)": (
        [sys.executable, "-c", LOAD_SCRIPT_IMPORTS],
        None,
    ),
}


#: the children import from compiled bytecode, as pip installs the package: with
#: PYTHONDONTWRITEBYTECODE set and no ``.pyc`` beside the sources (a fresh checkout), each
#: would compile etl-express's modules again (a fifth more instructions for a load's imports)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def compile_package() -> None:
    import compileall

    import etl_express

    compileall.compile_dir(os.path.dirname(etl_express.__file__), quiet=1)


def timed(command: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one fresh process running ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def instructions(command: list[str]) -> int:
    """The instructions one fresh process running ``command`` executes (valgrind)."""
    probe = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    proc = subprocess.run(
        probe + command,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {proc.stderr[-500:]}")
    return int(found.group(1).replace(",", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions (valgrind)"
    )
    args = parser.parse_args()
    report = {}
    failed = False
    compile_package()
    for name, (command, target) in CASES.items():
        timed(command)  # warm the file cache and the .pyc files
        samples = [timed(command) for _ in range(args.runs)]
        times = [wall for wall, _ in samples]
        median, best = statistics.median(times), min(times)
        cpu = statistics.median(c for _, c in samples)
        verdict = ""
        if target is not None:
            ok = median < target
            failed |= not ok
            verdict = f"  target < {target:.1f} s: {'met' if ok else 'MISSED'}"
        count = instructions(command) if args.instructions else None
        counted = f"  {count / 1e6:,.0f} M instructions" if count is not None else ""
        print(
            f"{name:50} median {median:.3f} s  best {best:.3f} s  cpu {cpu:.3f} s{counted}{verdict}"
        )
        report[name] = {
            "instructions": count,
            "median_s": round(median, 4),
            "best_s": round(best, 4),
            "cpu_median_s": round(cpu, 4),
            "runs": args.runs,
            "target_s": target,
            "load_average_1m": os.getloadavg()[0],
        }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
