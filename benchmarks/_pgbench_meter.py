"""How ``pg_to_pg.py`` measures a case: a fresh process timed from its start to its exit —
its wall time, the CPU time of the process and its children, the CPU time of the PostgreSQL
backends serving the source and the target database (polled from ``/proc``, so the server
must run on this host) and the host's load average.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from _pgbench_db import database_name


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BackendMeter:
    """The CPU time of the PostgreSQL backends connected to some databases, while it runs.

    A thread polls ``pg_stat_activity`` (from a connection to another database) and
    ``/proc/<pid>/stat`` every ``interval`` seconds and keeps each backend's last value;
    a backend's last interval before it exits is missed (at most ``interval`` per
    connection). Needs the server on this host."""

    def __init__(self, admin_url: str, databases: dict[str, str], interval: float = 0.05):
        self.admin_url, self.databases, self.interval = admin_url, databases, interval
        self._seen: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        names = list(self.databases.values())
        label = {v: k for k, v in self.databases.items()}
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            while not self._stop.is_set():
                for pid, db in conn.execute(
                    "SELECT pid, datname FROM pg_stat_activity WHERE datname = ANY(%s)", (names,)
                ).fetchall():
                    if (cpu := cpu_seconds(pid)) is not None:
                        self._seen[pid] = (label[db], cpu)
                self._stop.wait(self.interval)

    def __enter__(self) -> BackendMeter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def cpu(self) -> dict[str, float]:
        out = dict.fromkeys(self.databases, 0.0)
        for label, cpu in self._seen.values():
            out[label] += cpu
        return {k: round(v, 2) for k, v in out.items()}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_process(
    argv: list[str], env: dict[str, str], admin_url: str, src: str, dst: str, meter: bool
) -> dict[str, Any]:
    """Run ``argv`` to its end; its wall time, CPU and the backends' CPU."""
    load = os.getloadavg()[0]
    cpu0 = _children_cpu()
    databases = {"source_backends": database_name(src), "target_backends": database_name(dst)}
    with BackendMeter(admin_url, databases) if meter else _null() as backends:
        time.sleep(0.1 if meter else 0)  # the poller is running before the process starts
        t0 = time.perf_counter()
        proc = subprocess.run(argv, env=env, capture_output=True)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(
            f"{shlex.join(argv)} failed ({proc.returncode}):\n{proc.stderr.decode()[-3000:]}"
        )
    out: dict[str, Any] = {
        "seconds": round(wall, 3),
        "client_cpu": round(_children_cpu() - cpu0, 2),
        "load_1min": round(load, 2),
    }
    if backends is not None:
        out.update(backends.cpu())
    lines = proc.stdout.decode().strip().splitlines()
    if lines and lines[-1].startswith("{"):
        out.update(json.loads(lines[-1]))
    return out


@contextmanager
def _null() -> Iterator[None]:
    yield None
