"""The run ledger: the one place that starts, heart-beats, finishes and fails runs — the
owner of ``etl_express.runs`` (every SQL statement that writes a run row is here).

Every entry point — a single run, a parallel run and its partitions, a quarantine replay,
the Airflow tasks — opens its run here::

    with RunLedger(store).open("crm", partition_key, log=log) as run:
        ...                      # run.lost is set if another process took the lease over
        run.record_checks(checks)
        run.succeed()
    # leaving the block without succeed() records the run as failed with the exception

While the block runs, a heartbeat thread refreshes the run's lease every
``heartbeat_interval`` seconds, so a long run (or a parallel run waiting on its workers,
or a replay) is never taken for dead. Closing a run is retried on transient errors: a
dropped connection at the very end never leaves a finished run ``running``.

Leases: a ``running`` row whose heartbeat is older than ``lease_seconds``, or whose owner
(``host:pid``) is a process of this host that is gone, belongs to a dead process; the next
run of that partition marks it ``abandoned`` and takes over (:meth:`RunLedger.start`).

Beside it, writing nothing: :mod:`._leases` (a run's owner ``host:pid``, whether that owner
is gone, and the heartbeat thread, which refreshes a lease through
:meth:`RunLedger.heartbeat`) and :mod:`._run_history` (reads of the recorded runs).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from .._masking import mask_secrets
from ..errors import ETLError, RunLockedError, safe_pg_message
from ..retry import RetryPolicy
from . import checks, runlog
from ._leases import Heartbeat, owner_id, owner_is_dead
from .checkpoints import Checkpoint, CheckpointStore, checkpoint_upsert_sql
from .database import SCHEMA, pipelined, psycopg_connection
from .runlog import RunLog
from .schema import now, runs

#: how the ledger retries its own writes (finish, fail, checks) on a transient error
LEDGER_RETRY = RetryPolicy(attempts=5, backoff=0.2, max_backoff=5.0)

#: how many of a partition's latest succeeded runs a run's start reads for its checks
HISTORY = 10


@dataclass
class RunStart:
    """What the store held for a run's partition when the run took its lease, read in the
    transaction that took it (so nothing can move it before the run's first batch):

    ``position``: the committed checkpoint (``None``: none); ``rows_read``: the latest
    succeeded runs' rows read, newest first (at most :data:`HISTORY`); ``last_success_at``:
    when the latest succeeded run finished; ``empty_columns``: the details of the
    ``empty_columns`` check of the latest succeeded runs, newest first;
    ``after_unfinished``: the partition's latest run did not succeed (killed, failed)."""

    position: Any = None
    rows_read: list[int] = field(default_factory=list)
    last_success_at: dt.datetime | None = None
    empty_columns: list[dict[str, Any]] = field(default_factory=list)
    after_unfinished: bool = False


# the run's row inserted and what the run starts from read, in one statement, sent pipelined
# after the partition's lock and its lease read (psycopg's parameters): the reads see the
# store as it was once the lock was held and before the insert, so the run itself is never
# part of its history
_START = f"""
WITH started AS (
    INSERT INTO {SCHEMA}.runs (run_id, pipeline, partition, status, started_at, heartbeat_at,
                               owner)
    VALUES (%(run_id)s, %(pipeline)s, %(partition)s, 'running', %(t)s, %(t)s, %(owner)s)
)
SELECT
  (SELECT position FROM {SCHEMA}.checkpoints
   WHERE pipeline = %(pipeline)s AND partition = %(partition)s) AS position,
  (SELECT coalesce(jsonb_agg(r.rows_read ORDER BY r.started_at DESC), '[]')
   FROM (SELECT rows_read, started_at FROM {SCHEMA}.runs
         WHERE pipeline = %(pipeline)s AND partition = %(partition)s AND status = 'succeeded'
         ORDER BY started_at DESC LIMIT %(n)s) r) AS rows_read,
  (SELECT finished_at FROM {SCHEMA}.runs
   WHERE pipeline = %(pipeline)s AND partition = %(partition)s AND status = 'succeeded'
   ORDER BY started_at DESC LIMIT 1) AS last_success_at,
  (SELECT coalesce(jsonb_agg(q.details ORDER BY q.created_at DESC), '[]')
   FROM (SELECT c.details, c.created_at FROM {SCHEMA}.quality_checks c
         JOIN {SCHEMA}.runs r ON r.run_id = c.run_id
         WHERE c.pipeline = %(pipeline)s AND c.partition = %(partition)s
           AND c.name = 'empty_columns' AND r.status = 'succeeded'
         ORDER BY c.created_at DESC LIMIT %(n)s) q) AS empty_columns,
  (SELECT status <> 'succeeded' FROM {SCHEMA}.runs
   WHERE pipeline = %(pipeline)s AND partition = %(partition)s
   ORDER BY started_at DESC LIMIT 1) AS after_unfinished
"""


def describe_failure(exc: BaseException) -> str:
    """The text stored in ``runs.error``: an ETLError's message, else a driver message
    without SQL text or DETAIL lines (never just a type name); URL passwords and known
    secrets masked either way."""
    if isinstance(exc, ETLError):
        return mask_secrets(str(exc))
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return f"interrupted ({type(exc).__name__})"
    return mask_secrets(safe_pg_message(exc))


_COUNTS = ("rows_read", "rows_written", "rows_quarantined", "batches")

# the run closed and its check rows stored, in one statement of a fixed text (compiled once):
# the UPDATE as a data-modifying CTE, the checks' rows from one jsonb parameter (none: an
# empty array); a counter given (a parallel run's sums) replaces the row's, NULL keeps it
_FINISH = sa.text(
    f"""
WITH closed AS (
    UPDATE {SCHEMA}.runs SET status = :status, finished_at = :t, heartbeat_at = :t,
        error = :error"""
    + "".join(f", {name} = coalesce(CAST(:{name} AS bigint), {name})" for name in _COUNTS)
    + """
    WHERE run_id = :run_id
    RETURNING pipeline, partition
)
"""
    + checks.INSERT_ROWS.replace(
        ":pipeline, :partition", "closed.pipeline, closed.partition"
    ).replace(
        "AS x(name text, status text, policy text, details jsonb)",
        "AS x(name text, status text, policy text, details jsonb), closed",
    )
).bindparams(sa.bindparam("checks", type_=JSONB))


class LedgerRun:
    """One open run in the ledger (see :meth:`RunLedger.open`)."""

    def __init__(
        self,
        ledger: RunLedger,
        run_id: str,
        pipeline: str,
        partition: str,
        log: RunLog,
        started: RunStart | None = None,
    ):
        self.ledger, self.run_id, self.pipeline, self.partition = (
            ledger,
            run_id,
            pipeline,
            partition,
        )
        self.log = log
        self.started = started or RunStart()
        self.lost = threading.Event()
        self.closed = False
        self._checks: list[checks.RecordedCheck] = []
        self._at_close: list[Callable[[Connection], object]] = []

    def record_checks(self, found: Sequence[checks.RecordedCheck]) -> None:
        """Store the run's quality check results: they are written with the run's final
        status, in its closing transaction (succeeded or failed alike)."""
        self._checks.extend(found)

    def at_close(self, write: Callable[[Connection], object]) -> None:
        """Have ``write(conn)`` run in the transaction that closes the run (succeeded or
        failed): a record that belongs with the run's outcome (e.g. the target's columns)."""
        self._at_close.append(write)

    def succeed(self, **counts: int) -> None:
        """Close the run as ``succeeded``; ``counts`` overwrite its counters (parallel runs)."""
        self._close("succeeded", None, counts)

    def fail(self, error: BaseException | str) -> str:
        """Close the run as ``failed``; returns the stored error text."""
        text = mask_secrets(error) if isinstance(error, str) else describe_failure(error)
        self._close("failed", text, {})
        return text

    def _close(self, status: str, error: str | None, counts: dict[str, int]) -> None:
        if self.closed:
            return
        ledger = self.ledger
        try:
            ledger.retry.call(
                lambda: ledger.finish(
                    self.run_id,
                    status,
                    error,
                    found=self._checks,
                    writes=self._at_close,
                    **counts,
                ),
                log=self.log,
                what=f"recording the run as {status}",
            )
        except Exception as exc:
            if status == "succeeded":
                raise
            # the database itself may be what failed; the lease then expires on its own
            self.log.error("could not record the failed run: {}", describe_failure(exc))
        self.closed = True


class RunLedger:
    """Runs and partition runs in ``etl_express.runs`` (see the module docstring).

    ``lease_seconds``: a ``running`` run whose heartbeat is older than this is taken to be
    dead; ``heartbeat_interval``: how often an open run refreshes its lease.
    """

    def __init__(
        self,
        store: CheckpointStore,
        *,
        lease_seconds: float = 120.0,
        heartbeat_interval: float = 30.0,
        retry: RetryPolicy | None = None,
    ):
        self.store = store
        self.lease_seconds = lease_seconds
        self.heartbeat_interval = heartbeat_interval
        self.retry = retry or LEDGER_RETRY

    @contextmanager
    def open(
        self, pipeline: str, partition: str, *, run_id: str | None = None, log: RunLog | None = None
    ) -> Iterator[LedgerRun]:
        """Start a run (taking the partition's lease), beat its heartbeat while the block
        runs, and record it as failed when the block raises before it was closed."""
        run_id = run_id or str(uuid.uuid4())
        log = log or RunLog(pipeline=pipeline, run_id=run_id, partition=partition or "all")
        started = self.start(run_id, pipeline, partition)
        runlog.open_run(self.store.url, run_id)  # the run's lines to its store
        run = LedgerRun(self, run_id, pipeline, partition, log, started)
        try:
            with Heartbeat(self, run_id, self.heartbeat_interval, log) as beat:
                run.lost = beat.lost
                yield run
        except BaseException as exc:
            run.fail(exc)
            raise
        if not run.closed:
            run.fail("the run ended without being recorded as finished")

    def start(self, run_id: str, pipeline: str, partition: str) -> RunStart:
        """Register a run, taking the partition's lease; returns what the run starts from
        (its checkpoint and its checks' history), read in the same transaction.

        A ``running`` run of the same partition with a fresh heartbeat means another live
        process is at work: :class:`RunLockedError`. One with a stale heartbeat, or whose
        owner was a process on this host that is gone, belongs to a dead process: it is
        marked ``abandoned`` and this run takes over.
        """
        with self.store.transaction() as conn:
            # optimistic: the run's row goes in with the lease read, in one round trip; a
            # live owner found there raises, and the transaction (the row with it) rolls back
            live, row = _locked_start(conn, run_id, pipeline, partition)
            stale_before = now() - dt.timedelta(seconds=self.lease_seconds)
            for other in live:
                fresh = other.heartbeat_at is not None and other.heartbeat_at >= stale_before
                if fresh and not owner_is_dead(other.owner):
                    raise RunLockedError(
                        f"pipeline {pipeline!r} partition {partition or 'all'!r} is being run by "
                        f"{other.owner} (run {other.run_id})",
                        hint=f"wait for it to finish; a dead run's lease expires after "
                        f"{self.lease_seconds:.0f} s without heartbeat and is then taken over",
                    )
                conn.execute(
                    sa.update(runs)
                    .where(runs.c.run_id == other.run_id)
                    .values(
                        status="abandoned",
                        finished_at=now(),
                        error=f"taken over by run {run_id}: owner {other.owner} is gone "
                        f"(last heartbeat {other.heartbeat_at})",
                    )
                )
        position, rows_read, last_success_at, empty_columns, after_unfinished = row
        return RunStart(
            position=position,
            rows_read=[int(n) for n in rows_read],
            last_success_at=last_success_at,
            empty_columns=[dict(d or {}) for d in empty_columns],
            after_unfinished=bool(after_unfinished),
        )

    def heartbeat(self, run_id: str) -> bool:
        """Refresh the run's lease; ``False`` when the run is no longer ``running``."""
        with self.store.transaction() as conn:
            beat = (
                sa.update(runs)
                .where(runs.c.run_id == run_id, runs.c.status == "running")
                .values(heartbeat_at=now())
            )
            return conn.execute(beat).rowcount == 1

    def finish(
        self,
        run_id: str,
        status: str,
        error: str | None = None,
        *,
        found: Sequence[checks.RecordedCheck] = (),
        writes: Sequence[Callable[[Connection], object]] = (),
        **counts: int,
    ) -> None:
        """Close a run in one transaction, with the rows of its quality checks ``found`` and
        ``writes`` (records that belong with its outcome); ``counts`` (``rows_read=...``)
        overwrite its counters (parallel runs)."""
        unknown = set(counts) - set(_COUNTS)
        if unknown:
            raise TypeError(f"unknown run counters: {sorted(unknown)}")
        # no result is read: BEGIN, the writes and the closing statement in one round trip,
        # then COMMIT
        with self.store.transaction() as conn, pipelined(conn):
            for write in writes:
                write(conn)
            conn.execute(
                _FINISH,
                {
                    "run_id": run_id,
                    "status": status,
                    "error": error,
                    "t": now(),
                    **{name: counts.get(name) for name in _COUNTS},
                    "checks": checks.rows(found),
                },
            )

    def abandon(self, pipeline: str, partition: str, owner: str, error: str) -> int:
        """Close the ``running`` rows of a partition owned by a dead process ``owner``
        (``host:pid``) as failed; returns how many."""

        def close() -> int:
            with self.store.transaction() as conn:
                dead = (
                    sa.update(runs)
                    .where(
                        runs.c.pipeline == pipeline,
                        runs.c.partition == partition,
                        runs.c.owner == owner,
                        runs.c.status == "running",
                    )
                    .values(status="failed", finished_at=now(), error=error)
                )
                return conn.execute(dead).rowcount

        return self.retry.call(close, what="closing a dead worker's run")


class _Live(NamedTuple):
    run_id: str
    owner: str | None
    heartbeat_at: dt.datetime | None


def _locked_start(
    conn: Connection, run_id: str, pipeline: str, partition: str
) -> tuple[list[_Live], tuple[Any, ...]]:
    """Take the partition's lock (held until the transaction ends), read its ``running``
    rows as they are once the lock is held, insert the run's row and read what it starts
    from (:data:`_START`): the transaction's BEGIN and the three statements pipelined, one
    round trip. Returns the running rows (other than this run) and :data:`_START`'s row."""
    raw = psycopg_connection(conn)
    params = {
        "run_id": run_id,
        "pipeline": pipeline,
        "partition": partition,
        "t": now(),
        "owner": owner_id(),
        "n": HISTORY,
    }
    with raw.pipeline(), raw.cursor() as lock, raw.cursor() as lease, raw.cursor() as start:
        lock.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            (f"etl_express.run:{pipeline}:{partition}",),
        )
        lease.execute(
            f"SELECT run_id, owner, heartbeat_at FROM {SCHEMA}.runs "
            "WHERE pipeline = %s AND partition = %s AND status = 'running'",
            (pipeline, partition),
        )
        start.execute(_START, params)
        live = [_Live(*row) for row in lease.fetchall()]
        row = start.fetchone()
    assert row is not None
    return live, tuple(row)


_COUNT_SET = f"""
UPDATE {SCHEMA}.runs SET rows_read = rows_read + :read, rows_written = rows_written + :written,
    rows_quarantined = rows_quarantined + :quarantined, batches = batches + 1, heartbeat_at = :t
WHERE run_id = :run_id AND status = 'running'
"""
# a batch's counters, and with its checkpoint (a data-modifying CTE): fixed texts, so the
# statements are neither built nor compiled again for every batch
_COUNT = sa.text(_COUNT_SET)
_COUNT_AND_CHECKPOINT = sa.text(f"WITH saved AS ({checkpoint_upsert_sql}) {_COUNT_SET}").bindparams(
    sa.bindparam("position", type_=JSONB)
)


def record_batch(
    conn: Connection,
    run_id: str,
    read: int,
    written: int,
    quarantined: int,
    *,
    checkpoint: Checkpoint | None = None,
) -> None:
    """Count a batch in the run's row, in the batch's transaction (``conn``); with the
    batch's ``checkpoint`` saved by the same statement (one round trip).

    Raises :class:`RunLockedError` when the run is no longer ``running`` (another process
    took its lease over): the batch then rolls back instead of racing the new owner.
    """
    params: dict[str, Any] = {
        "run_id": run_id,
        "read": read,
        "written": written,
        "quarantined": quarantined,
        "t": now(),
    }
    if checkpoint is None:
        updated = conn.execute(_COUNT, params).rowcount
    else:
        params.update(checkpoint.params())
        updated = conn.execute(_COUNT_AND_CHECKPOINT, params).rowcount
    if updated != 1:
        raise RunLockedError(
            f"run {run_id} lost its lease: another process took the partition over",
            hint="make lease_seconds longer than the slowest batch, or stop running the "
            "same pipeline partition from two places",
        )


def forget(conn: Connection, pipeline: str) -> int:
    """Delete every run row of ``pipeline``; the rows removed."""
    return conn.execute(sa.delete(runs).where(runs.c.pipeline == pipeline)).rowcount


__all__ = [
    "HISTORY",
    "LEDGER_RETRY",
    "LedgerRun",
    "RunLedger",
    "RunStart",
    "describe_failure",
    "forget",
    "record_batch",
]
