"""A replication's units in forked worker processes (``Replication.run(workers=n)``).

Why processes: a replication of many small tables spends its client time in Python (each
table's personal-data detection, commits, the ledger, SQL compilation), all of it holding
the GIL, so threads of one process use one core. Why ``fork``: the parent has already
imported everything, read the catalog, planned every table, checked the coverage and
created the target schema; a forked child starts with all of it and runs units at once,
where a spawned one would import and plan again.

How: ``n`` children are forked after the planning. Each unit (a table, or a partition of
one) is handed out one at a time, the biggest first: the parent sends a unit's index, the
child runs it and sends back its :class:`RunResult` (pickled), then gets the next one.
A child that dies (killed, ``os._exit``, a crash in native code) takes only its current
unit down: the unit is reported failed, naming the table and how the process ended, its run
row is closed as failed (its committed batches stay: the next run resumes it from its
checkpoint), and a new child is forked for the units still waiting.

Fork safety — what a child inherits and must not use, and how it is handled:

- the SQLAlchemy engines' pooled connections: every cached engine is disposed with
  ``close=False`` in the child (:mod:`etl_express.store.database`, at fork), so the child
  opens its own connections and never closes or uses the parent's sockets;
- the binary COPY reader's idle connections: left alone in a child
  (:mod:`etl_express.sources.sql.pgbinary` notices the new process id);
- background threads: the run-log writer is stopped before every fork and starts again in
  the child on its first line (:mod:`etl_express.store.runlog`); heartbeats and read-ahead
  threads run only while a unit runs, and the parent runs none once it forks;
- loguru: its locks are taken across the fork by loguru itself; file and console sinks are
  inherited (the file is line-buffered and opened for appending, so children's lines land
  in the same daily file) and the run log's database sink restarts its writer in the child;
  a child writes out what it logged before it exits.

Signals: Ctrl-C or SIGTERM of the parent terminates the children (each closes its current
run as failed, as an interrupted single run does) and then raises in the parent.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any, TypeVar

from ..result import RunResult

U = TypeVar("U")

#: how long a child may take to close its current run after SIGTERM before it is killed
STOP_SECONDS = 10.0


def fork_available() -> bool:
    """Whether units can run in forked processes here: the platform forks (Linux, macOS)
    and this process may have children (a daemonic multiprocessing worker, such as a
    Celery prefork worker, may not)."""
    return (
        hasattr(os, "fork")
        and "fork" in multiprocessing.get_all_start_methods()
        and not multiprocessing.current_process().daemon
    )


def processes_by_default() -> bool:
    """Whether ``run(workers=n)`` uses processes when not told: where it can fork, except on
    macOS, whose system libraries are not safe to use in a forked child (Python itself
    starts processes by ``spawn`` there)."""
    return fork_available() and sys.platform != "darwin"


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection  # the parent's end of the child's pipe
    unit: int | None = None  # the index of the unit it runs


def run_in_processes(
    units: Sequence[U],
    workers: int,
    work: Callable[[U], RunResult],
    dead: Callable[[U, BaseProcess], RunResult],
) -> list[RunResult]:
    """``work(unit)`` for every unit in ``workers`` forked processes, the results in the
    units' order; a unit whose process died gets ``dead(unit, process)``."""
    context = multiprocessing.get_context("fork")
    waiting = deque(range(len(units)))
    results: list[RunResult | None] = [None] * len(units)
    running: dict[Connection, _Worker] = {}

    def fork() -> _Worker:
        parent_end, child_end = context.Pipe(duplex=True)
        inherited = [w.conn for w in (*running.values(), *finished)] + [parent_end]
        process = context.Process(
            target=_serve,
            args=(child_end, inherited, units, work),
            name=f"etl-express-worker-{len(running)}",
            daemon=True,  # never outlives the parent, whatever ends it
        )
        with warnings.catch_warnings():
            # Python 3.12+ warns on fork() while threads run; none of ours does (the log
            # writer stops before a fork) and the child starts no inherited thread
            warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
            process.start()
        child_end.close()  # the child holds the only copy: EOF here when it dies
        worker = _Worker(process, parent_end)
        running[parent_end] = worker
        return worker

    def hand_out(worker: _Worker) -> None:
        """The next waiting unit to ``worker``, or the word to stop."""
        if not waiting:
            worker.unit = None
            with contextlib.suppress(OSError):
                worker.conn.send(None)
            running.pop(worker.conn)
            finished.append(worker)
            return
        worker.unit = waiting.popleft()
        try:
            worker.conn.send(worker.unit)
        except OSError:  # it died between two units: its death is read from the pipe
            pass

    finished: list[_Worker] = []
    with _parent_signals():
        try:
            for _ in range(min(workers, len(units))):
                hand_out(fork())
            while running:
                for ready in wait(list(running)):
                    worker = running[ready]  # type: ignore[index]
                    try:
                        index, result = worker.conn.recv()
                    except (EOFError, OSError):  # the child died before reporting
                        running.pop(worker.conn)
                        _reap(worker)
                        if worker.unit is not None:
                            results[worker.unit] = dead(units[worker.unit], worker.process)
                        if waiting:
                            hand_out(fork())
                        continue
                    results[index] = result
                    hand_out(worker)
            for worker in finished:
                _reap(worker)
        finally:  # interrupted (or all done: then nothing is left to stop)
            stopped = list(running.values())
            _stop([*stopped, *finished])
            for worker in stopped:
                code = worker.process.exitcode
                if worker.unit is not None and code is not None and code != 0:
                    # it ended without reporting its unit: killed before it closed its run
                    # (it did not stop in time), or stopped by SIGTERM where its own close
                    # could not run (between its run row's start and the block that closes
                    # it, or inside the close itself). A row it left running is closed here;
                    # one it closed itself is not touched (only running rows are)
                    with contextlib.suppress(Exception):
                        dead(units[worker.unit], worker.process)
    return [r for r in results if r is not None]


def _reap(worker: _Worker) -> None:
    """Wait for a child that finished or died (killed when it does not end in time)."""
    worker.conn.close()
    worker.process.join(STOP_SECONDS)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join()


def _stop(workers: list[_Worker]) -> None:
    """Stop the children still running (the parent was interrupted): SIGTERM first, so each
    closes its current run as failed, then SIGKILL for any that does not end in time."""
    alive = [w for w in workers if w.process.is_alive()]
    for worker in alive:
        worker.process.terminate()
    for worker in workers:
        _reap(worker)


class Terminated(SystemExit):
    """SIGTERM arrived: raised where the process is, so that ``finally`` blocks run (a
    parent stops its children, a child closes its current run as failed)."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(128 + signum)


@contextlib.contextmanager
def _parent_signals() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in the parent while its children run, unless the
    program handles SIGTERM itself (or this is not the main thread, which cannot)."""
    try:
        previous = signal.getsignal(signal.SIGTERM)
        if previous is not signal.SIG_DFL:
            yield
            return
        signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve(
    conn: Connection,
    inherited: list[Connection],
    units: Sequence[Any],
    work: Callable[[Any], RunResult],
) -> None:
    """A child's life: run the units the parent sends until it sends ``None`` or goes away."""
    for other in inherited:  # the parent's ends of the pipes: a parent's death gives EOF
        other.close()
    signal.signal(signal.SIGTERM, _raise_terminated)
    code = 0
    try:
        while True:
            try:
                index = conn.recv()
            except (EOFError, OSError):  # the parent is gone
                break
            if index is None:
                break
            result = work(units[index])
            try:
                conn.send((index, result))
            except (OSError, EOFError):  # the parent is gone
                break
            except Exception as exc:  # a result that does not pickle: its failure instead
                conn.send((index, _unsent(result, exc)))
    except (KeyboardInterrupt, SystemExit) as exc:  # stopped by the parent or Ctrl-C
        code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 130
    finally:
        from ..store import runlog

        runlog.flush_all()  # the run log's lines of this process, before it ends
    sys.exit(code)


def _unsent(result: RunResult, exc: Exception) -> RunResult:
    """A failed result in place of one that could not be sent to the parent (the rows it
    committed stay committed; the error names the exception's type only)."""
    return RunResult(
        run_id=result.run_id,
        pipeline=result.pipeline,
        status="failed",
        partition=result.partition,
        started_at=result.started_at,
        finished_at=result.finished_at,
        error=f"the worker process could not send this unit's result back "
        f"({type(exc).__name__}); its committed batches stay, run again to check it",
    )


def describe_exit(process: BaseProcess) -> str:
    """How a child ended: ``killed by SIGKILL``, ``stopped by SIGTERM`` (it raised
    :class:`Terminated`, exit code 128 + the signal), ``exit code 3``."""
    code = process.exitcode
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if code == 128 + signal.SIGTERM:
        return "stopped by SIGTERM"
    return f"exit code {code}"


__all__ = [
    "STOP_SECONDS",
    "Terminated",
    "describe_exit",
    "fork_available",
    "processes_by_default",
    "run_in_processes",
]
