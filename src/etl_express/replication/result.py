"""What one replication run returns: a :class:`RunResult` per table, and how a table's
partitions' results (or a failure) become its result."""

from __future__ import annotations

import copy
import datetime as dt
import socket
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from .._engine.parallel import sum_partitions
from .._engine.run import failed_result, result_or_failure, run_partition
from .._engine.spec import ledger_for
from ..anonymizers.guard import check_partitions
from ..pipeline import Pipeline
from ..result import RunResult
from ..sinks.postgres import PostgresSink
from ..sources.base import Partition
from ..store.schema import partition_key


@dataclass
class ReplicationResult:
    """The outcome of one replication run: a :class:`RunResult` per table (by table name),
    the overall status (``"succeeded"`` when every table did) and the totals.

    ``new_tables`` are tables met for the first time (picked up by ``include``);
    ``gone_tables`` tables replicated before that the source no longer has (their targets
    are left as they are)."""

    replication: str
    status: str
    tables: dict[str, RunResult] = field(default_factory=dict)
    new_tables: list[str] = field(default_factory=list)
    gone_tables: list[str] = field(default_factory=list)
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    def __getitem__(self, table: str) -> RunResult:
        return self.tables[table]

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def failed(self) -> list[str]:
        return [name for name, r in self.tables.items() if not r.ok]

    @property
    def rows_read(self) -> int:
        return sum(r.rows_read for r in self.tables.values())

    @property
    def rows_written(self) -> int:
        return sum(r.rows_written for r in self.tables.values())

    @property
    def rows_quarantined(self) -> int:
        return sum(r.rows_quarantined for r in self.tables.values())

    @property
    def seconds(self) -> float:
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "replication": self.replication,
            "status": self.status,
            "tables": {name: r.to_dict() for name, r in self.tables.items()},
            "new_tables": list(self.new_tables),
            "gone_tables": list(self.gone_tables),
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_quarantined": self.rows_quarantined,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "seconds": round(self.seconds, 3),
            "failed": self.failed,
        }


def _run_unit(
    pipeline: Pipeline, spec: Partition | None, *, reset: bool, coverage_checked: bool = False
) -> RunResult:
    """One table (or one partition of it); a failure comes back as a failed RunResult.
    ``coverage_checked``: the replication checked the pipeline's personal-data coverage
    before any table ran (it is not checked again per unit)."""
    if not coverage_checked:
        return result_or_failure(pipeline.name, spec, lambda: pipeline.run(spec, reset=reset))

    def run() -> RunResult:
        check_partitions(pipeline, [spec])  # as Pipeline.run: bounds over a personal column
        return run_partition(pipeline, spec, reset=reset, coverage_checked=True)

    return result_or_failure(pipeline.name, spec, run)


def _died(pipeline: Pipeline, spec: Partition | None, pid: int | None, how: str) -> RunResult:
    """The result of a unit whose worker process died before reporting (``how``: ``killed
    by SIGKILL``, ``exit code 3``): its run row, left ``running`` by the dead process, is
    closed as failed, so the next run takes the unit over at once from its checkpoint."""
    part = "" if spec is None else f" (partition {partition_key(spec)})"
    error = (
        f"the worker process (pid {pid}) replicating table {pipeline.source.name}{part} died "
        f"({how}) before reporting; its committed batches stay and the next run resumes "
        "it from its checkpoint"
    )
    from sqlalchemy.exc import SQLAlchemyError

    try:
        ledger_for(pipeline).abandon(
            pipeline.name, partition_key(spec), f"{socket.gethostname()}:{pid}", error
        )
    except SQLAlchemyError as exc:  # the store is unreachable: the next run takes the lease
        # of the dead owner over anyway (store._leases.owner_is_dead)
        logger.warning(
            "could not close the run row of table {} left by worker process {} ({}); the "
            "next run takes it over",
            pipeline.source.name,
            pid,
            type(exc).__name__,
        )
    return failed_result(pipeline.name, spec, error)


def _own(pipeline: Pipeline, spec: Partition | None) -> Pipeline:
    """The pipeline a unit runs: a partition gets a copy with a sink of its own, since the
    partitions of one table run at once on threads and a sink keeps what it prepared."""
    if spec is None:
        return pipeline
    own = copy.copy(pipeline)
    sink = pipeline.sink
    assert isinstance(sink, PostgresSink)  # a replication's sinks are (see Replication)
    own.sink = sink.for_table(sink.table_name)
    return own


def _combined(results: list[RunResult]) -> RunResult:
    """One table's result from its partitions' results."""
    first = results[0]
    failed = [r for r in results if not r.ok]
    combined = RunResult(
        run_id="",
        pipeline=first.pipeline,
        status="failed" if failed else "succeeded",
        started_at=min((r.started_at for r in results if r.started_at), default=None),
        finished_at=max((r.finished_at for r in results if r.finished_at), default=None),
        error="; ".join(r.error or "" for r in failed[:3]) or None,
    )
    sum_partitions(combined, results)
    return combined
