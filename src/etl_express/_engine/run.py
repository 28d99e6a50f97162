"""One run of one partition: the ledger's run around the batch loop and the checks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from loguru import logger

from .. import _speedups
from .._privacy import safe_exception, withhold_causes
from ..errors import ETLError, safe_pg_message
from ..quality import CheckResult, QualityTracker
from ..reconcile import Reconciliation, forget_reconciliation
from ..result import RunResult
from ..retry import LineLogger, as_etl_error
from ..sinks.base import Sink
from ..sources.base import Partition
from ..store.ledger import LedgerRun
from ..store.schema import now, partition_key
from .batches import PartitionRunner, ProgressBar
from .checks import checked, raise_failed, run_checks, table_checks
from .spec import PipelineSpec, ledger_for


def run_partition(
    pipeline: PipelineSpec,
    partition: Partition | None,
    *,
    reset: bool = False,
    with_table_checks: bool = True,
    coverage_checked: bool = False,
) -> RunResult:
    """Run one partition (``None``: the whole source) from its last checkpoint;
    ``coverage_checked``: the caller ran ``pipeline.check_pii_coverage()`` itself, on the
    same pipeline, just before (a replication checks every table before any of them runs).

    Raises an :class:`ETLError` carrying the :class:`RunResult` as ``.result`` when the run
    fails; what was committed stays committed.
    """
    if not coverage_checked:
        pipeline.check_pii_coverage()
    store = pipeline.store
    pkey = partition_key(partition)
    if reset:
        store.reset(pipeline.name, pkey)
        if pipeline.deletes is not None:
            forget_reconciliation(store, pipeline.name, pkey)
    result = RunResult(
        run_id="", pipeline=pipeline.name, status="running", partition=partition, started_at=now()
    )
    log: LineLogger = logger
    sink = SinkCloser(pipeline.sink)
    try:
        with ledger_for(pipeline).open(pipeline.name, pkey) as run:
            result.run_id = run.run_id
            log = run.log
            try:
                _run_body(pipeline, run, result, partition, pkey, with_table_checks, sink)
            except Exception as exc:  # wrapped here, so the ledger stores the clear message
                error = as_etl_error(
                    exc, where={"pipeline": pipeline.name, "partition": pkey or "all"}
                )
                if error is exc:
                    raise
                raise error from None
    except BaseException as exc:
        sink.close_after_failure(log)
        mark_failed(result, exc)
        log.error("run failed: {}", result.error)
        if isinstance(exc, ETLError):  # a driver's raw message must not ride on its chain
            withhold_causes(exc)
        raise
    result.status = "succeeded"
    result.finished_at = now()
    log.info(
        "run succeeded: {} read, {} written, {} quarantined in {:.1f} s",
        result.rows_read,
        result.rows_written,
        result.rows_quarantined,
        result.seconds,
    )
    return result


def _run_body(
    pipeline: PipelineSpec,
    run: LedgerRun,
    result: RunResult,
    partition: Partition | None,
    pkey: str,
    with_table_checks: bool,
    sink: SinkCloser,
) -> None:
    store, log = pipeline.store, run.log
    for a in pipeline.anonymizers:
        a.reset()
    if _speedups.native is None:  # the same results, about half the throughput
        log.info(
            "run started (compiled speedups {}: hashing and COPY encoding take the "
            "pure-Python paths)",
            _speedups.describe(),
        )
    else:
        log.info("run started")
    tracker = QualityTracker(pipeline.required)
    with _progress(pipeline, pkey) as bar:
        runner = PartitionRunner(pipeline, store, partition, pkey, result, tracker, log, bar)
        runner.lease_lost = run.lost
        runner.known_position = (run.started.position,)  # read when the run took its lease
        runner.after_unfinished = run.started.after_unfinished
        deletes = Reconciliation(runner) if pipeline.deletes else None
        runner.run()
        if deletes is not None:  # after the incremental pass (reconcile/)
            deletes.run()
    result.checks.extend(end_of_run_checks(pipeline, run, result, tracker, pkey, with_table_checks))
    where = {"pipeline": pipeline.name, "partition": pkey or "all", "run": run.run_id}
    raise_failed(result.checks, where, log)
    sink.close()  # before the run counts as succeeded: a sink that fails to flush fails it
    run.succeed()


def end_of_run_checks(
    pipeline: PipelineSpec,
    run: LedgerRun,
    result: RunResult,
    tracker: QualityTracker,
    pkey: str,
    with_table_checks: bool,
) -> list[CheckResult]:
    """The run's quality checks, run and recorded (retried, see :func:`checks.checked`)."""

    def compute() -> list[CheckResult]:
        found = run_checks(pipeline, result, tracker, pkey, run)
        if with_table_checks:
            found += table_checks(
                pipeline, result.full_load and not result.partition, result.rows_written
            )
        return found

    return checked(pipeline, run, result, compute)


class SinkCloser:
    """Calls ``Sink.close()`` exactly once per run: at its end when it succeeds (an error there
    fails the run), or after it failed (an error there is logged, the run's error stays)."""

    def __init__(self, sink: Sink):
        self.sink, self.closed = sink, False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sink.close()

    def close_after_failure(self, log: LineLogger) -> None:
        try:
            self.close()
        except Exception as exc:  # the run's own failure is what the user must see
            log.warning(
                "{!r}.close() failed after the run failed: {}", self.sink, safe_exception(exc)
            )


def failed_result(
    pipeline: str, partition: Partition | None, error: str, started: dt.datetime | None = None
) -> RunResult:
    """A result for a run that failed with ``error`` before it had a result of its own."""
    return RunResult(
        run_id="",
        pipeline=pipeline,
        status="failed",
        partition=partition,
        started_at=started or now(),
        finished_at=now(),
        error=error,
    )


def result_or_failure(
    pipeline: str, partition: Partition | None, run: Callable[[], RunResult]
) -> RunResult:
    """``run()``'s result, or its failure as a failed result, for a caller that runs many
    units and goes on past a failed one (the parallel run's partitions, a replication's
    tables): the result an ETLError carries, else one naming the error (an ETLError's own
    text, else the database's message passed through :func:`~etl_express.errors.safe_pg_message`;
    never a raw value, never an unpicklable exception)."""
    started = now()
    try:
        return run()
    except ETLError as exc:
        result = getattr(exc, "result", None)
        if isinstance(result, RunResult):
            return result
        return failed_result(pipeline, partition, str(exc), started)
    except Exception as exc:
        return failed_result(pipeline, partition, safe_pg_message(exc), started)


def mark_failed(result: RunResult, exc: BaseException) -> None:
    """Record on ``result`` that its run failed with ``exc`` (the error text never holds a
    driver's message: an ETLError's own text, else the type), and hand the result to the
    caller on the error (``exc.result``)."""
    result.status = "failed"
    result.finished_at = now()
    result.error = str(exc) if isinstance(exc, ETLError) else type(exc).__name__
    if isinstance(exc, ETLError):
        exc.result = result  # type: ignore[attr-defined]


class _NoBar:
    """The progress bar of a pipeline with ``progress=False``."""

    def update(self, n: int) -> None:
        pass


_NO_BAR = _NoBar()


@contextmanager
def _progress(pipeline: PipelineSpec, pkey: str) -> Iterator[ProgressBar]:
    if pipeline.progress is not None and not pipeline.progress:  # no bar, no tqdm import
        yield _NO_BAR
        return
    from tqdm.auto import tqdm

    bar = tqdm(
        desc=f"{pipeline.name} [{pkey or 'all'}]",
        unit=" rows",
        unit_scale=True,
        disable=None if pipeline.progress is None else False,  # None: only on a terminal
    )
    try:
        yield bar
    finally:
        bar.close()


__all__ = [
    "end_of_run_checks",
    "failed_result",
    "mark_failed",
    "result_or_failure",
    "run_partition",
]
