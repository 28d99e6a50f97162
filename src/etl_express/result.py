"""``RunResult``: what a pipeline run did."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .quality import CheckResult


@dataclass
class RunResult:
    """The outcome of one run (one partition, or a whole multi-partition run).

    ``to_dict()`` gives a JSON-like dict. It never holds secrets or record contents.
    """

    run_id: str
    pipeline: str
    status: str
    partition: dict[str, Any] | None = None
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    rows_filtered: int = 0
    batches: int = 0
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    checks: list[CheckResult] = field(default_factory=list)
    error: str | None = None
    partitions: list[RunResult] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "status": self.status,
            "partition": self.partition,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_quarantined": self.rows_quarantined,
            "rows_filtered": self.rows_filtered,
            "batches": self.batches,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "checks": [c.to_dict() for c in self.checks],
            "error": self.error,
            "partitions": [p.to_dict() for p in self.partitions],
        }


__all__ = ["RunResult"]
