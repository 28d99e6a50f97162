"""The owner of ``etl_express.logs``: each run's log lines, kept 30 days.

A run logs through its :class:`RunLog` (the ledger gives every run one): each line lands in
the run's store whatever the console settings — a user's own script that never calls
``configure_logging()`` has its runs' lines there too — and goes on to loguru, whose
``etl_express`` namespace stays silent until ``configure_logging()`` turns it on.

Lines are written by a background writer (:class:`RunLogWriter`): logging a line only puts
a small tuple on a queue; the writer thread inserts the queue in batches on its own
connection, so log writes never join a batch's transaction and never wait on the database
in the pipeline's thread. A database that cannot be reached drops the rows with one note on
stderr: logging never fails a run.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import multiprocessing.util
import os
import queue
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from loguru import logger
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from loguru import Message

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


#: what the writer thread takes: a line for a store's URL, a flush's event, or "stop"
_Queued = tuple[str, RawLine] | threading.Event | str


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


class DatabaseLogSink:
    """Writes the lines of registered runs (:meth:`attach`) into their store's
    ``etl_express.logs``, at most ``batch_size`` rows a statement, at least every
    ``interval`` seconds. It is also a loguru sink: ``logger.add(sink)`` stores every record
    bound to a registered ``run_id`` (``configure_logging()`` adds the process's
    :data:`writer` that way); records of other runs are ignored.
    """

    def __init__(self, batch_size: int = 200, interval: float = 0.5, max_runs: int = 10_000):
        self.batch_size = batch_size
        self.interval = interval
        self.max_runs = max_runs
        self._runs: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._pid = -1
        self._queue: queue.SimpleQueue[_Queued] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._warned = False
        _writers.add(self)

    def attach(self, run_id: str, url: str) -> None:
        """Store ``run_id``'s lines in the database at ``url``."""
        with self._lock:
            self._runs[run_id] = url
            while len(self._runs) > self.max_runs:
                self._runs.popitem(last=False)

    def url_of(self, run_id: str | None) -> str | None:
        """The store of a registered run (``None``: not registered)."""
        return self._runs.get(run_id or "")

    def __call__(self, message: Message) -> None:
        record = message.record
        extra = record["extra"]
        url = self.url_of(extra.get("run_id"))
        if url is None:
            return
        exception = record["exception"]
        error = (
            f"{exception.type.__name__}: {exception.value}"
            if exception is not None and exception.type is not None
            else None
        )
        # only cheap copies here; rows are built in the writer thread
        self.put(
            url,
            (
                record["time"],
                record["level"].name,
                dict(extra),
                record["message"],
                record["name"],
                record["function"],
                record["line"],
                error,
            ),
        )

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


_writers: weakref.WeakSet[DatabaseLogSink] = weakref.WeakSet()


def flush_all(timeout: float = 10.0) -> bool:
    """Wait until every writer of this process wrote what was queued (``False`` on time-out)."""
    flushed = [w.flush(timeout) for w in list(_writers)]  # every one, even after a time-out
    return all(flushed)


def _stop_all() -> None:
    # no writer thread may be running across fork(): the child restarts its own on demand
    for writer in list(_writers):
        writer.stop()


atexit.register(flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_stop_all)


@dataclass
class RunLogSettings:
    """How runs' lines reach the store (``configure_logging`` sets them).

    ``store``: lines land in the store at all (``configure_logging(database=False)`` turns
    it off); ``level``: the least loguru level number stored (INFO); ``retention_days``:
    lines older than this are purged when a process first opens a run on a store, then
    at most every ``PURGE_INTERVAL_S`` (30); ``via_loguru``: the
    :data:`writer` is a loguru handler (``configure_logging()``), which stores them, so
    :class:`RunLog` does not hand them to it itself.
    """

    store: bool = True
    level: int = 20
    via_loguru: bool = False
    retention_days: int = 30


settings = RunLogSettings()
#: the process's writer: every run the ledger opens is attached to it
writer = DatabaseLogSink()

#: loguru's level numbers by name (TRACE 5 ... CRITICAL 50)
LEVELS = {
    "TRACE": 5,
    "DEBUG": 10,
    "INFO": 20,
    "SUCCESS": 25,
    "WARNING": 30,
    "ERROR": 40,
    "CRITICAL": 50,
}


class RunLog:
    """The logger of one run: ``log.info("read {} rows", n)`` formats like loguru, stores the
    line in the run's store (see :data:`settings`; the run is attached to :data:`writer`)
    and hands it to loguru, bound to ``pipeline``, ``run_id`` and ``partition``, with the
    caller's module, function and line.
    """

    def __init__(self, **extra: Any):
        self.extra = extra

    def bind(self, **extra: Any) -> RunLog:
        """The same run's logger with more bound fields."""
        return RunLog(**{**self.extra, **extra})

    def debug(self, message: str, *args: object) -> None:
        self._log("DEBUG", message, args)

    def info(self, message: str, *args: object) -> None:
        self._log("INFO", message, args)

    def success(self, message: str, *args: object) -> None:
        self._log("SUCCESS", message, args)

    def warning(self, message: str, *args: object) -> None:
        self._log("WARNING", message, args)

    def error(self, message: str, *args: object) -> None:
        self._log("ERROR", message, args)

    def critical(self, message: str, *args: object) -> None:
        self._log("CRITICAL", message, args)

    def _log(self, level: str, message: str, args: tuple[object, ...]) -> None:
        text = message.format(*args) if args else message
        url = writer.url_of(self.extra.get("run_id"))
        stored = settings.store and not settings.via_loguru and LEVELS[level] >= settings.level
        if url is not None and stored:
            self._store(url, level, mask_secrets(text))
        # the caller's module decides whether loguru passes it on (silent until configured)
        logger.bind(**self.extra).opt(depth=2).log(level, "{}", text)

    def _store(self, url: str, level: str, text: str) -> None:
        caller = sys._getframe(3)  # _store, _log, info: the caller of info
        writer.put(
            url,
            (
                dt.datetime.now(dt.timezone.utc),
                level,
                self.extra,
                text,
                caller.f_globals.get("__name__"),
                caller.f_code.co_name,
                caller.f_lineno,
                None,
            ),
        )


#: a process purges a store's old log lines when a run first opens on it, then at most once
#: per this many seconds (a replication opens a run per table: one purge serves them all)
PURGE_INTERVAL_S = 600.0
_last_purge: dict[str, float] = {}
_last_purge_lock = threading.Lock()


def open_run(url: str, run_id: str) -> None:
    """When a run opens (the ledger): its lines go to the store at ``url``, and lines there
    older than ``settings.retention_days`` are purged, at most once per
    :data:`PURGE_INTERVAL_S` per process and store (a failure to purge is logged, never
    raised: housekeeping must not stop a run)."""
    writer.attach(run_id, url)
    with _last_purge_lock:
        last = _last_purge.get(url)
        if last is not None and time.monotonic() - last < PURGE_INTERVAL_S:
            return
        _last_purge[url] = time.monotonic()
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=settings.retention_days)
    try:
        with engine_for(url).begin() as conn:
            removed = purge(conn, before)
    except Exception as exc:
        logger.warning("could not purge old log rows: {}", type(exc).__name__)
        with _last_purge_lock:  # the next run tries again
            _last_purge.pop(url, None)
        return
    if removed:
        logger.debug("purged {} log rows older than {} days", removed, settings.retention_days)


def forget_purges() -> None:
    """The next run to open on any store purges it (``shutdown_logging`` calls this)."""
    with _last_purge_lock:
        _last_purge.clear()


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


__all__ = [
    "BOUND",
    "LEVELS",
    "PURGE_INTERVAL_S",
    "DatabaseLogSink",
    "RawLine",
    "RunLog",
    "RunLogSettings",
    "flush_all",
    "forget",
    "forget_purges",
    "insert",
    "line_row",
    "open_run",
    "purge",
    "settings",
    "writer",
]
