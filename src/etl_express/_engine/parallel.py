"""``pipeline.run(workers=n)``: a source's partitions in parallel processes on one machine.

Each partition runs in a process of its own (``spawn``: no state is inherited, each worker
opens its own connections) with its own lease, checkpoint and transactions, at most ``n`` at
a time. A worker that dies (killed, out of memory) takes only its own partition down: the
others finish and commit, the dead one's run row is closed as failed, the combined run
fails naming it, and the next run resumes only that partition from its checkpoint.

The partition plan is stored in ``etl_express.partition_plans`` and reused: a parallel run
killed half-way and started again resumes the same partitions from their checkpoints.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import socket
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from ..errors import ETLConfigError, ETLError
from ..result import RunResult
from ..retry import as_etl_error
from ..sources.base import Partition
from ..store.ledger import RunLedger
from ..store.schema import now, partition_key
from .checks import checked, combined_checks, raise_failed, table_checks
from .run import failed_result, mark_failed, result_or_failure, run_partition
from .spec import PipelineSpec, ledger_for

#: the partition key of a parallel run's own row in ``etl_express.runs``
PARALLEL_KEY = "*"


def plan(pipeline: PipelineSpec, n: int, *, repartition: bool = False) -> list[Partition]:
    """The stored partition plan for ``n`` partitions, computed and stored the first time."""
    store = pipeline.store
    specs = None if repartition else store.partition_plan(pipeline.name, n)
    if specs is None:
        specs = pipeline.partitions(n)
        store.save_partition_plan(pipeline.name, n, specs)
    return specs


def _outcome(pipeline: PipelineSpec, spec: Partition, reset: bool) -> RunResult:
    """Run one partition here; a failure comes back as a failed RunResult."""
    return result_or_failure(
        pipeline.name,
        spec,
        lambda: run_partition(pipeline, spec, reset=reset, with_table_checks=False),
    )


def _in_worker_bootstrap() -> bool:
    """Is this a spawned worker re-importing the parent's ``__main__`` script?"""
    main = sys.modules.get("__main__")
    return getattr(main, "__name__", "") == "__mp_main__"


def _work(payload: bytes, spec: Partition, reset: bool, out: Connection) -> None:
    """Worker process body: run one partition, send its result as a dict."""
    pipeline: PipelineSpec = pickle.loads(payload)
    out.send(_outcome(pipeline, spec, reset).to_dict())
    out.close()


def run_partitions(
    pipeline: PipelineSpec,
    *,
    workers: int,
    partitions: Sequence[Partition] | None = None,
    reset: bool = False,
    repartition: bool = False,
) -> RunResult:
    """Run partitions in ``workers`` processes; return the combined :class:`RunResult`."""
    if workers < 1:
        raise ETLConfigError(
            f"workers must be >= 1, got {workers}", where={"pipeline": pipeline.name}
        )
    if _in_worker_bootstrap():
        raise ETLConfigError(
            "run(workers=n) was called again inside one of its own worker processes: "
            "each worker imports the script that started the run, and this script starts "
            "a parallel run when it is imported",
            where={"pipeline": pipeline.name},
            hint='put the run under  if __name__ == "__main__":  in the script',
        )
    pipeline.check_pii_coverage()
    try:
        specs = (
            list(partitions)
            if partitions is not None
            else plan(pipeline, workers, repartition=repartition)
        )
    except Exception as exc:  # e.g. the source cannot be reached to split it
        raise as_etl_error(
            exc, what="planning the partitions failed", where={"pipeline": pipeline.name}
        ) from None
    ledger = ledger_for(pipeline)
    combined = RunResult(run_id="", pipeline=pipeline.name, status="running", started_at=now())
    try:
        with ledger.open(pipeline.name, PARALLEL_KEY) as run:
            combined.run_id = run.run_id
            run.log.info("parallel run started: {} partitions on {} workers", len(specs), workers)
            if workers == 1 or len(specs) == 1:
                results = [_outcome(pipeline, spec, reset) for spec in specs]
            else:
                results = _run_in_processes(pipeline, specs, workers, reset, ledger)
            sum_partitions(combined, results)
            failed = [r for r in results if r.status != "succeeded"]
            combined.checks = checked(
                pipeline,
                run,
                combined,
                lambda: (
                    combined_checks(pipeline, combined)
                    + table_checks(
                        pipeline, combined.full_load and not failed, combined.rows_written
                    )
                ),
            )
            if failed:
                raise ETLError(
                    f"{len(failed)} of {len(results)} partitions failed: "
                    + "; ".join(f"{partition_key(r.partition)}: {r.error}" for r in failed[:3]),
                    where={"pipeline": pipeline.name, "run": run.run_id},
                    hint="the other partitions are committed; run again to resume the failed ones",
                )
            raise_failed(
                combined.checks, {"pipeline": pipeline.name, "partition": PARALLEL_KEY}, run.log
            )
            run.succeed(
                rows_read=combined.rows_read,
                rows_written=combined.rows_written,
                rows_quarantined=combined.rows_quarantined,
                batches=combined.batches,
            )
    except BaseException as exc:
        mark_failed(combined, exc)
        raise
    combined.status = "succeeded"
    combined.finished_at = now()
    return combined


def _run_in_processes(
    pipeline: PipelineSpec,
    specs: Sequence[Partition],
    workers: int,
    reset: bool,
    ledger: RunLedger,
) -> list[RunResult]:
    """One process per partition, at most ``workers`` at once; a dead one fails alone."""
    try:
        payload = pickle.dumps(pipeline)
    except ETLError:  # a part that refuses to travel says why itself (e.g. a key value)
        raise
    except Exception as exc:
        raise ETLConfigError(
            f"the pipeline cannot be sent to worker processes: {type(exc).__name__}: {exc}",
            where={"pipeline": pipeline.name},
            hint="define custom sources, transformers and anonymizers at module level (not in a "
            "notebook cell or a function) so they can be pickled, or run with workers=1",
        ) from None
    context = multiprocessing.get_context("spawn")
    waiting = list(enumerate(specs))
    running: dict[Connection, tuple[int, BaseProcess]] = {}
    results: list[RunResult | None] = [None] * len(specs)
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                index, spec = waiting.pop(0)
                reader, writer = context.Pipe(duplex=False)
                process: BaseProcess = context.Process(
                    target=_work,
                    args=(payload, spec, reset, writer),
                    name=f"etl-express {pipeline.name} partition {index}",
                )
                process.start()
                writer.close()  # the child holds the only writer: EOF when it dies
                running[reader] = (index, process)
            for ready in wait(list(running)):
                done = next(r for r in running if r is ready)
                index, process = running.pop(done)
                try:
                    results[index] = RunResult.from_dict(done.recv())
                except (EOFError, OSError):
                    results[index] = None
                done.close()
                process.join()
                if results[index] is None:
                    results[index] = _dead(pipeline, specs[index], process, ledger)
    finally:
        for _, process in running.values():  # interrupted: stop the workers still running
            process.terminate()
            process.join()
    return [r for r in results if r is not None]


def _dead(
    pipeline: PipelineSpec, spec: Partition, process: BaseProcess, ledger: RunLedger
) -> RunResult:
    """The result of a worker that died before reporting; its run row closed as failed."""
    code = process.exitcode
    how = (
        f"killed by {signal.Signals(-code).name}"
        if code is not None and code < 0
        else f"exit code {code}"
    )
    pkey = partition_key(spec)
    error = (
        f"the worker process (pid {process.pid}) of partition {pkey} died ({how}) before "
        "reporting; its committed batches stay and the next run resumes it from its checkpoint"
    )
    if code == 1:  # an exception while the worker started, e.g. importing the script
        error += (
            " (see its traceback above; a script that runs run(workers=n) at module level "
            'needs  if __name__ == "__main__":)'
        )
    try:
        ledger.abandon(pipeline.name, pkey, f"{socket.gethostname()}:{process.pid}", error)
    except Exception:  # the lease of the dead owner expires anyway (owner_is_dead)
        pass
    return failed_result(pipeline.name, spec, error)


def sum_partitions(combined: RunResult, results: Sequence[RunResult]) -> None:
    """``combined`` (the result of a run over many units: partitions, a replication's
    table parts) with ``results`` as its partitions and their counts summed."""
    combined.partitions = list(results)
    for r in results:
        combined.rows_read += r.rows_read
        combined.rows_written += r.rows_written
        combined.rows_quarantined += r.rows_quarantined
        combined.rows_filtered += r.rows_filtered
        combined.batches += r.batches
        combined.retries += r.retries
    combined.full_load = bool(results) and all(r.full_load for r in results)
    firsts = [r.first_commit_at for r in results if r.first_commit_at is not None]
    combined.first_commit_at = min(firsts) if firsts else None


__all__ = ["PARALLEL_KEY", "plan", "run_partitions", "sum_partitions"]
