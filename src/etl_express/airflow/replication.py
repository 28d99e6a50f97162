"""What the tasks of a replication DAG do, as plain functions (no Airflow import here).

Each function takes a *replication reference* — ``"package.module:factory"``, a zero-argument
callable returning an :class:`~etl_express.Replication`, or one built by the DAG file — and
rebuilds the replication inside the task's own process (nothing is pickled).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import QualityError
from ..replication import Replication
from ..sources.base import Partition
from .tasks import _flush_task_logs, configure_task_logging, load_ref, purge_logs, quality_gate

ReplicationRef = str | Callable[[], Replication] | Replication


def load_replication(ref: ReplicationRef) -> Replication:
    """Build the replication a reference points at, in the calling process."""
    return load_ref(ref, Replication)


def plan_tables(ref: ReplicationRef) -> list[dict[str, Any]]:
    """The run's units (``Replication.units``): a table each, a partition each of the big ones."""
    configure_task_logging()
    return load_replication(ref).units()


def unit_label(unit: dict[str, Any]) -> str:
    """A unit's task label: the table, and ``lo..hi`` of its partition (no values of
    personal columns: partitions are ranges of keys or cursors)."""
    spec = unit.get("partition")
    if not spec:
        return str(unit["table"])
    return f"{unit['table']} [{spec.get('lo')}, {spec.get('hi')})"


def run_table(ref: ReplicationRef, unit: dict[str, Any]) -> dict[str, Any]:
    """Run one unit from its last checkpoint; returns the ``RunResult`` as a dict (a failure
    raises, and Airflow's retry resumes from the last committed batch)."""
    configure_task_logging()
    pipeline = load_replication(ref).pipeline(unit["table"])
    partition: Partition | None = unit.get("partition")
    try:
        return pipeline.run(partition=partition).to_dict()
    finally:
        _flush_task_logs()


def replication_gate(ref: ReplicationRef, results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Fail unless every unit succeeded with no failed check, per table as
    :func:`~etl_express.airflow.tasks.quality_gate` judges a pipeline; returns totals."""
    replication = load_replication(ref)
    by_pipeline: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_pipeline.setdefault(r["pipeline"], []).append(r)
    problems: list[str] = []
    totals = {"tables": len(by_pipeline), "rows_read": 0, "rows_written": 0, "rows_quarantined": 0}
    pipelines = {p.name: p for p in replication.pipelines()}
    for name, group in by_pipeline.items():
        try:
            found = quality_gate(pipelines[name], group)
        except QualityError as exc:
            problems.append(f"{name}: {exc.what}")
            continue
        for key in ("rows_read", "rows_written", "rows_quarantined"):
            totals[key] += found[key]
    if problems:
        raise QualityError(
            f"{len(problems)} of {len(by_pipeline)} tables failed the quality gate: "
            + "; ".join(problems[:10]),
            where={"replication": replication.name},
            hint="inspect etl_express.quality_checks and the quarantine of these tables",
        )
    return {"replication": replication.name, **totals}


def purge_replication_logs(ref: ReplicationRef, older_than: dt.timedelta) -> int:
    """Delete the run-log lines older than ``older_than`` of every table's pipeline."""
    return sum(purge_logs(p, older_than) for p in load_replication(ref).pipelines())


__all__ = [
    "ReplicationRef",
    "load_replication",
    "plan_tables",
    "purge_replication_logs",
    "replication_gate",
    "run_table",
    "unit_label",
]
