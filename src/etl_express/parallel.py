"""``pipeline.run(workers=n)``: a source's partitions in parallel processes on one machine.

The pipeline is pickled once and each worker process (``spawn`` start method: no state is
inherited, each worker opens its own connections) runs one partition at a time with
``pipeline.run(partition=spec)`` — its own lease, its own checkpoint, its own transactions —
so two partitions never touch each other's state, and their key ranges never overlap.

The partition plan is stored in ``etl_express.partition_plans`` and reused: a parallel run
killed half-way and started again resumes the same partitions from their checkpoints.
"""

from __future__ import annotations

import multiprocessing
import pickle
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from loguru import logger

from .errors import ETLConfigError, ETLError
from .quality import error_rate_check, reconciliation
from .result import RunResult
from .sources.base import Partition
from .store.state import now, partition_key

if TYPE_CHECKING:
    from .pipeline import Pipeline

#: the partition key of a parallel run's own row in ``etl_express.runs``
PARALLEL_KEY = "*"


def plan(pipeline: Pipeline, n: int, *, repartition: bool = False) -> list[Partition]:
    """The stored partition plan for ``n`` partitions, computed and stored the first time."""
    store = pipeline.store
    specs = None if repartition else store.partition_plan(pipeline.name, n)
    if specs is None:
        specs = pipeline.partitions(n)
        store.save_partition_plan(pipeline.name, n, specs)
    return specs


def _work(payload: bytes, spec: Partition, reset: bool) -> dict[str, Any]:
    """Worker process body: run one partition, report its result as a dict."""
    pipeline: Pipeline = pickle.loads(payload)
    try:
        return pipeline._run_one(spec, reset=reset, table_checks=False).to_dict()
    except ETLError as exc:
        result = getattr(exc, "result", None)
        if result is not None:
            return result.to_dict()
        return _failed(pipeline.name, spec, str(exc)).to_dict()
    except Exception as exc:  # never send an unpicklable exception (or a raw value) back
        return _failed(pipeline.name, spec, type(exc).__name__).to_dict()


def _failed(name: str, spec: Partition, error: str) -> RunResult:
    t = now()
    return RunResult(
        run_id="",
        pipeline=name,
        status="failed",
        partition=spec,
        started_at=t,
        finished_at=t,
        error=error,
    )


def run_partitions(
    pipeline: Pipeline,
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
    pipeline.check_pii_coverage()
    specs = (
        list(partitions)
        if partitions is not None
        else plan(pipeline, workers, repartition=repartition)
    )
    store = pipeline.store
    run_id = str(uuid.uuid4())
    log = logger.bind(pipeline=pipeline.name, run_id=run_id, partition=PARALLEL_KEY)
    combined = RunResult(run_id=run_id, pipeline=pipeline.name, status="running", started_at=now())
    store.start_run(run_id, pipeline.name, PARALLEL_KEY)
    log.info("parallel run started: {} partitions on {} workers", len(specs), workers)
    try:
        if workers == 1 or len(specs) == 1:
            results = [_run_here(pipeline, spec, reset) for spec in specs]
        else:
            results = _run_in_processes(pipeline, specs, workers, reset)
        _combine(combined, results)
        failed = [r for r in results if r.status != "succeeded"]
        p = pipeline.check_policies
        combined.checks = [
            reconciliation(
                combined.rows_read,
                combined.rows_written,
                combined.rows_quarantined,
                combined.rows_filtered,
                p["reconciliation"],
            ),
            error_rate_check(
                combined.rows_quarantined,
                combined.rows_read,
                pipeline.max_error_rate,
                p["error_rate"],
            ),
            *pipeline._table_checks(combined.full_load and not failed, combined.rows_written),
        ]
        if failed:
            raise ETLError(
                f"{len(failed)} of {len(results)} partitions failed: "
                + "; ".join(f"{partition_key(r.partition)}: {r.error}" for r in failed[:3]),
                where={"pipeline": pipeline.name, "run": run_id},
                hint="the other partitions are committed; run again to resume the failed ones",
            )
        pipeline._record_checks(combined, PARALLEL_KEY, log)
    except BaseException as exc:
        pipeline._fail(combined, exc, log)
        raise
    combined.status = "succeeded"
    combined.finished_at = now()
    store.finish_run(
        run_id,
        "succeeded",
        rows_read=combined.rows_read,
        rows_written=combined.rows_written,
        rows_quarantined=combined.rows_quarantined,
        batches=combined.batches,
    )
    return combined


def _run_here(pipeline: Pipeline, spec: Partition, reset: bool) -> RunResult:
    try:
        return pipeline._run_one(spec, reset=reset, table_checks=False)
    except ETLError as exc:
        result = getattr(exc, "result", None)
        if result is None:
            raise
        return result


def _run_in_processes(
    pipeline: Pipeline, specs: Sequence[Partition], workers: int, reset: bool
) -> list[RunResult]:
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
    results: list[RunResult] = []
    with ProcessPoolExecutor(max_workers=min(workers, len(specs)), mp_context=context) as pool:
        futures = [pool.submit(_work, payload, spec, reset) for spec in specs]
        for future in as_completed(futures):
            results.append(RunResult.from_dict(future.result()))
    order = {partition_key(s): i for i, s in enumerate(specs)}
    results.sort(key=lambda r: order.get(partition_key(r.partition), 0))
    return results


def _combine(combined: RunResult, results: Sequence[RunResult]) -> None:
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


__all__ = ["PARALLEL_KEY", "plan", "run_partitions"]
