"""What one replication run returns: a :class:`RunResult` per table, and how a table's
partitions' results (or a failure) become its result."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ..errors import ETLError
from ..pipeline import Pipeline
from ..result import RunResult
from ..sources.base import Partition
from ..store.schema import now


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


def _run_unit(pipeline: Pipeline, spec: Partition | None, *, reset: bool) -> RunResult:
    """One table (or one partition of it); a failure comes back as a failed RunResult."""
    started = now()
    try:
        return pipeline.run(spec, reset=reset)
    except ETLError as exc:
        failed = getattr(exc, "result", None)
        if failed is not None:
            return failed  # type: ignore[no-any-return]
        return _failed(pipeline.name, spec, str(exc), started)
    except Exception as exc:
        from ..errors import safe_pg_message

        return _failed(pipeline.name, spec, safe_pg_message(exc), started)


def _failed(name: str, spec: Partition | None, error: str, started: dt.datetime) -> RunResult:
    return RunResult(
        run_id="",
        pipeline=name,
        status="failed",
        partition=spec,
        started_at=started,
        finished_at=now(),
        error=error,
    )


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
        partitions=results,
    )
    for r in results:
        combined.rows_read += r.rows_read
        combined.rows_written += r.rows_written
        combined.rows_quarantined += r.rows_quarantined
        combined.rows_filtered += r.rows_filtered
        combined.batches += r.batches
        combined.retries += r.retries
    combined.full_load = all(r.full_load for r in results)
    return combined
