"""The run ledger: the one place that starts, heart-beats, finishes and fails runs.

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
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from loguru import logger

from .._masking import mask_secrets
from ..errors import ETLError, safe_pg_message
from ..retry import RetryPolicy
from .state import CheckpointStore

#: how the ledger retries its own writes (finish, fail, checks) on a transient error
LEDGER_RETRY = RetryPolicy(attempts=5, backoff=0.2, max_backoff=5.0)


def describe_failure(exc: BaseException) -> str:
    """The text stored in ``runs.error``: an ETLError's message, else a driver message
    without SQL text or DETAIL lines (never just a type name); URL passwords and known
    secrets masked either way."""
    if isinstance(exc, ETLError):
        return mask_secrets(str(exc))
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return f"interrupted ({type(exc).__name__})"
    return mask_secrets(safe_pg_message(exc))


class Heartbeat:
    """A daemon thread refreshing a run's lease every ``interval`` seconds.

    ``lost`` is set when the run is no longer ``running`` in the store (another process
    took it over); the batch loop then stops before its next commit.
    """

    def __init__(self, store: CheckpointStore, run_id: str, interval: float, log: Any):
        self.store, self.run_id, self.interval, self.log = store, run_id, interval, log
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"etl-heartbeat-{run_id[:8]}", daemon=True
        )

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.store.heartbeat(self.run_id):
                    self.lost.set()
                    return
            except Exception as exc:  # the database may be down for a moment: keep trying
                self.log.warning("heartbeat failed: {}", type(exc).__name__)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class LedgerRun:
    """One open run in the ledger (see :meth:`RunLedger.open`)."""

    def __init__(self, ledger: RunLedger, run_id: str, pipeline: str, partition: str, log: Any):
        self.ledger, self.run_id, self.pipeline, self.partition = (
            ledger,
            run_id,
            pipeline,
            partition,
        )
        self.log = log
        self.lost = threading.Event()
        self.closed = False

    def record_checks(self, checks: Sequence[Any]) -> None:
        """Store the run's quality check results."""
        store = self.ledger.store
        self.ledger.retry.call(
            lambda: store.add_checks(self.run_id, self.pipeline, self.partition, checks),
            log=self.log,
            what="recording the quality checks",
        )

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
        store = self.ledger.store
        try:
            self.ledger.retry.call(
                lambda: store.finish_run(self.run_id, status, error, **counts),
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
    """Runs and partition runs in ``etl_express.runs`` (see the module docstring)."""

    def __init__(
        self,
        store: CheckpointStore,
        *,
        heartbeat_interval: float = 30.0,
        retry: RetryPolicy | None = None,
    ):
        self.store = store
        self.heartbeat_interval = heartbeat_interval
        self.retry = retry or LEDGER_RETRY

    @contextmanager
    def open(
        self, pipeline: str, partition: str, *, run_id: str | None = None, log: Any = None
    ) -> Iterator[LedgerRun]:
        """Start a run (taking the partition's lease), beat its heartbeat while the block
        runs, and record it as failed when the block raises before it was closed."""
        run_id = run_id or str(uuid.uuid4())
        log = log or logger.bind(pipeline=pipeline, run_id=run_id, partition=partition or "all")
        self.store.start_run(run_id, pipeline, partition)
        run = LedgerRun(self, run_id, pipeline, partition, log)
        try:
            with Heartbeat(self.store, run_id, self.heartbeat_interval, log) as beat:
                run.lost = beat.lost
                yield run
        except BaseException as exc:
            run.fail(exc)
            raise
        if not run.closed:
            run.fail("the run ended without being recorded as finished")

    def outcomes(self, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """What the store holds for ``run_ids``: one dict per recorded run with ``run_id``,
        ``partition``, ``status`` and ``failed_checks`` (names of checks that failed)."""
        return self.store.run_outcomes(run_ids)

    def abandon(self, pipeline: str, partition: str, owner: str, error: str) -> int:
        """Close the ``running`` rows of a partition owned by a dead process ``owner``
        (``host:pid``) as failed; returns how many."""
        return self.retry.call(
            lambda: self.store.fail_owned_runs(pipeline, partition, owner, error),
            what="closing a dead worker's run",
        )


__all__ = ["LEDGER_RETRY", "Heartbeat", "LedgerRun", "RunLedger", "describe_failure"]
