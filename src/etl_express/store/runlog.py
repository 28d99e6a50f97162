"""The owner of ``etl_express.logs``: each run's log lines, kept 30 days.

Lines are written by one background writer a process (:class:`RunLogWriter`): logging a
line only puts a small tuple on a queue; the writer thread inserts the queue in batches on
its own connection, so log writes never join a batch's transaction and never wait on the
database in the pipeline's thread. A database that cannot be reached drops the rows with
one note on stderr: logging never fails a run.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing.util
import os
import queue
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .._masking import mask_secrets
from .database import engine_for
from .schema import SCHEMA, logs

#: the fields every run's line is bound to (columns of their own; the rest goes to ``extra``)
BOUND = ("pipeline", "run_id", "partition")

#: a line as queued: (time, level name, bound extra, message, module, function, line,
#: exception text or None)
RawLine = tuple[
    dt.datetime, str, Mapping[str, Any], str, str | None, str | None, int | None, str | None
]


def line_row(raw: RawLine) -> dict[str, Any]:
    """The ``etl_express.logs`` row of a queued line, secrets masked in its extra fields."""
    ts, level, extra, message, module, function, line, error = raw
    other = {k: v for k, v in extra.items() if k not in BOUND}
    other.update(module=module, function=function, line=line)
    if error is not None:
        other["exception"] = error
    return {
        "ts": ts,
        "level": level,
        "pipeline": extra.get("pipeline"),
        "run_id": extra.get("run_id"),
        "partition": extra.get("partition"),
        "message": message,
        "extra": json.loads(mask_secrets(json.dumps(other, default=str))),
    }


class RunLogWriter:
    """Writes queued lines of registered runs into their store's ``etl_express.logs``
    (at most ``batch_size`` rows a statement, at least every ``interval`` seconds)."""

    def __init__(self, batch_size: int = 200, interval: float = 0.5, max_runs: int = 10_000):
        self.batch_size = batch_size
        self.interval = interval
        self.max_runs = max_runs
        self._runs: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._pid = -1
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._warned = False

    def attach(self, run_id: str, url: str) -> None:
        """Store ``run_id``'s lines in the database at ``url``."""
        with self._lock:
            self._runs[run_id] = url
            while len(self._runs) > self.max_runs:
                self._runs.popitem(last=False)

    def url_of(self, run_id: str | None) -> str | None:
        """The store of a registered run (``None``: not registered)."""
        return self._runs.get(run_id or "")

    def put(self, url: str, raw: RawLine) -> None:
        """Queue a line for the store at ``url``."""
        self._ensure_thread()
        self._queue.put((url, raw))

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._pid != os.getpid():  # a forked worker: the parent's thread is not here
                self._queue = queue.SimpleQueue()
                self._thread = None
                self._pid = os.getpid()
                # multiprocessing workers end with os._exit (no atexit): flush in its exit hook
                multiprocessing.util.Finalize(None, self.stop, exitpriority=100)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="etl-express-log-writer", daemon=True
                )
                self._thread.start()

    def _work(self) -> None:
        pending: list[tuple[str, RawLine]] = []
        last = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=self.interval)
            except queue.Empty:
                item = None
            if isinstance(item, tuple):
                pending.append(item)
            due = time.monotonic() - last >= self.interval
            if pending and (
                item is None
                or len(pending) >= self.batch_size
                or due
                or not isinstance(item, tuple)
            ):
                self._write(pending)
                pending = []
                last = time.monotonic()
            if isinstance(item, threading.Event):
                item.set()
            elif item == "stop":
                return

    def _write(self, pending: list[tuple[str, RawLine]]) -> None:
        by_url: dict[str, list[dict[str, Any]]] = {}
        for url, raw in pending:
            by_url.setdefault(url, []).append(line_row(raw))
        for url, rows in by_url.items():
            try:
                with engine_for(url).begin() as conn:
                    insert(conn, rows)
            except Exception as exc:  # logging must never break a run
                if not self._warned:
                    self._warned = True
                    print(
                        f"etl-express: could not store {len(rows)} log line(s) in the database: "
                        f"{type(exc).__name__}",
                        file=sys.stderr,
                    )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (``False`` on time-out)."""
        if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def stop(self) -> None:
        """Write what is pending and end the writer thread."""
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            self._queue.put("stop")
            self._thread.join(timeout=10)
        self._thread = None


def insert(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert log rows (built by :func:`line_row`)."""
    if rows:
        conn.execute(sa.insert(logs), list(rows))


def purge(conn: Connection, before: dt.datetime, pipeline: str | None = None) -> int:
    """Delete log lines older than ``before`` (of ``pipeline`` only, when given); the count.
    A store without a log table has nothing to purge."""
    if not sa.inspect(conn).has_table(logs.name, schema=SCHEMA):
        return 0
    stmt = sa.delete(logs).where(logs.c.ts < before)
    if pipeline is not None:
        stmt = stmt.where(logs.c.pipeline == pipeline)
    return conn.execute(stmt).rowcount


def forget(conn: Connection, pipeline: str) -> int:
    """Delete every log line of ``pipeline``; the rows removed."""
    return conn.execute(sa.delete(logs).where(logs.c.pipeline == pipeline)).rowcount


__all__ = ["BOUND", "RawLine", "RunLogWriter", "forget", "insert", "line_row", "purge"]
