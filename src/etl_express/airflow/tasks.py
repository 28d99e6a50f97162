"""What the Airflow tasks do, as plain functions (no Airflow import here).

Every function takes a *pipeline reference* and rebuilds the :class:`~etl_express.Pipeline`
inside the task's own process: nothing is pickled between the scheduler and the workers.
A reference is a dotted path ``"package.module:factory"`` (imported in the task), a
zero-argument callable returning a pipeline, or a pipeline object created by the DAG file
(which Airflow re-executes in every worker, so the object is rebuilt there too).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .._durations import DurationLike, parse_duration
from ..errors import ETLConfigError, QualityError
from ..pipeline import Pipeline
from ..sources.base import Partition
from ..store import runlog
from ..store._run_history import outcomes
from ..store.schema import now

PipelineRef = str | Callable[[], Pipeline] | Pipeline

_Built = TypeVar("_Built")

#: how long the run log is kept in PostgreSQL
LOG_RETENTION = dt.timedelta(days=30)


def describe_ref(ref: PipelineRef) -> str:
    """A short text naming the reference (for messages and DAG docs)."""
    if isinstance(ref, Pipeline):
        return f"pipeline {ref.name!r}"
    if isinstance(ref, str):
        return ref
    return f"{getattr(ref, '__module__', '?')}:{getattr(ref, '__qualname__', repr(ref))}"


def _import(ref: str) -> Any:
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ETLConfigError(
            f"pipeline reference {ref!r} is not of the form 'package.module:factory'",
            hint='pass e.g. "my_project.pipelines:build_crm_pipeline"',
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ETLConfigError(
            f"cannot import module {module_name!r} of pipeline reference {ref!r}: {exc}",
            hint="make the module importable on the Airflow workers (install your project there)",
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ETLConfigError(
                f"module {module_name!r} has no attribute {attr!r}",
                hint="check the name after the ':' in the pipeline reference",
            ) from None
    return obj


def load_pipeline(ref: PipelineRef) -> Pipeline:
    """Build the pipeline a reference points at, in the calling process."""
    return load_ref(ref, Pipeline)


def load_ref(ref: Any, kind: type[_Built]) -> _Built:
    """The ``kind`` (a Pipeline, a Replication) a reference points at: an object of it, a
    ``"module:attribute"`` naming one or a factory that returns one, built in the calling
    process."""
    what, name = kind.__name__.lower(), kind.__name__
    obj: Any = _import(ref) if isinstance(ref, str) else ref
    if not isinstance(obj, kind):
        if not callable(obj):
            raise ETLConfigError(
                f"{what} reference {describe_ref(ref)} is neither a {name} nor a factory",
                hint=f"point it at a function that returns an etl_express.{name}",
            )
        obj = obj()
    if not isinstance(obj, kind):
        raise ETLConfigError(
            f"{what} factory {describe_ref(ref)} returned {type(obj).__name__}, not a {name}",
            hint=f"the factory must return an etl_express.{name}",
        )
    return obj


def configure_task_logging() -> None:
    """Turn on etl-express logging in a task: each line goes to Airflow's task log at its
    own level (not to stderr, which Airflow records as errors), and into JSON files only
    where ``ETL_EXPRESS_LOG_DIR`` (or ``ETL_EXPRESS_HOME``) says — see ``configure_logging``."""
    from ..logs import configure_logging

    configure_logging()


def _flush_task_logs() -> None:
    """Wait for the run's log lines to reach the store before the task process ends."""
    from ..logs import flush_logs

    flush_logs()


def plan_partitions(ref: PipelineRef, n: int | None = None) -> list[Partition]:
    """The pipeline's partition specs, checked to survive a JSON round trip (XCom)."""
    pipeline = load_pipeline(ref)
    specs = pipeline.partitions(n)
    for spec in specs:
        try:
            same = json.loads(json.dumps(spec)) == spec
        except (TypeError, ValueError):
            same = False
        if not isinstance(spec, dict) or not same:
            raise ETLConfigError(
                f"partition spec {spec!r} of {type(pipeline.source).__name__} is not a JSON object",
                where={"pipeline": pipeline.name},
                hint="partitions() must return dicts of str, int, float, bool, None, lists and dicts",
            )
    return specs


def run_partition(ref: PipelineRef, partition: Partition | None = None) -> dict[str, Any]:
    """Run one partition from its last checkpoint; returns the ``RunResult`` as a dict.

    A failure raises (Airflow retries the task); everything committed before it stays
    committed, so the retry resumes from the last checkpoint.
    """
    configure_task_logging()
    pipeline = load_pipeline(ref)
    try:
        return pipeline.run(partition=partition).to_dict()
    finally:
        _flush_task_logs()


def quality_gate(ref: PipelineRef, results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Fail unless every partition run of this DAG run succeeded with no failed check.

    Looks at the returned results *and* at what the store recorded for those runs
    (``etl_express.runs`` and ``etl_express.quality_checks``), so a check recorded after
    the partition returned is seen too. Returns totals for the DAG run.
    """
    results = list(results)
    pipeline = load_pipeline(ref)
    run_ids = [r["run_id"] for r in results]
    problems: list[str] = []
    for r in results:
        label = json.dumps(r.get("partition") or {}, sort_keys=True)
        if r.get("status") != "succeeded":
            problems.append(f"partition {label} status {r.get('status')}")
        problems += [
            f"partition {label} check {c['name']} failed"
            for c in r.get("checks", [])
            if c.get("status") == "failed"
        ]
    if run_ids:
        stored = outcomes(pipeline.store, run_ids)
        missing = set(run_ids) - {row["run_id"] for row in stored}
        problems += [
            f"run {run_id} is not recorded in etl_express.runs" for run_id in sorted(missing)
        ]
        problems += [
            f"partition {row['partition'] or 'all'} run status {row['status']} in the store"
            for row in stored
            if row["status"] != "succeeded"
        ]
        problems += [
            f"partition {row['partition'] or 'all'} check {name} failed (etl_express.quality_checks)"
            for row in stored
            for name in row["failed_checks"]
        ]
    if problems:
        unique = list(dict.fromkeys(problems))
        raise QualityError(
            f"quality gate failed for {len(unique)} problem(s): " + "; ".join(unique[:20]),
            where={"pipeline": pipeline.name, "partitions": len(results)},
            hint="inspect etl_express.quality_checks and etl_express.quarantine for these runs, fix, then clear the task",
        )
    return {
        "pipeline": pipeline.name,
        "partitions": len(results),
        "rows_read": sum(r.get("rows_read", 0) for r in results),
        "rows_written": sum(r.get("rows_written", 0) for r in results),
        "rows_quarantined": sum(r.get("rows_quarantined", 0) for r in results),
        "run_ids": run_ids,
    }


def purge_logs(ref: PipelineRef, older_than: DurationLike = LOG_RETENTION) -> int:
    """Delete this pipeline's run-log lines older than ``older_than`` (``"30d"`` or a
    timedelta) from the store (``etl_express.logs``); returns how many."""
    retention = parse_duration(older_than, "log retention")
    pipeline = load_pipeline(ref)
    with pipeline.store.transaction() as conn:
        return runlog.purge(conn, now() - retention, pipeline=pipeline.name)


__all__ = [
    "LOG_RETENTION",
    "PipelineRef",
    "configure_task_logging",
    "describe_ref",
    "load_pipeline",
    "plan_partitions",
    "purge_logs",
    "quality_gate",
    "run_partition",
]
