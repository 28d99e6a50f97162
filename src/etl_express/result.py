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
    A parallel run (``pipeline.run(workers=n)``) sums its partitions' counts and lists
    them in ``partitions``. ``error_rate`` is ``rows_quarantined / rows_read``;
    ``first_commit_at`` is when the run's first batch committed (how fast a resumed run
    starts moving rows); ``retries`` counts transient errors survived; ``full_load`` says
    the run started from no checkpoint.
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
    retries: int = 0
    full_load: bool = False
    first_commit_at: dt.datetime | None = None

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
            "error_rate": self.error_rate,
            "retries": self.retries,
            "full_load": self.full_load,
            "first_commit_at": self.first_commit_at.isoformat() if self.first_commit_at else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """Rebuild a result from :meth:`to_dict` output (results cross process boundaries so)."""

        def when(key: str) -> dt.datetime | None:
            return dt.datetime.fromisoformat(data[key]) if data.get(key) else None

        return cls(
            run_id=data["run_id"],
            pipeline=data["pipeline"],
            status=data["status"],
            partition=data.get("partition"),
            rows_read=data.get("rows_read", 0),
            rows_written=data.get("rows_written", 0),
            rows_quarantined=data.get("rows_quarantined", 0),
            rows_filtered=data.get("rows_filtered", 0),
            batches=data.get("batches", 0),
            started_at=when("started_at"),
            finished_at=when("finished_at"),
            checks=[CheckResult(**c) for c in data.get("checks", [])],
            error=data.get("error"),
            partitions=[cls.from_dict(p) for p in data.get("partitions", [])],
            retries=data.get("retries", 0),
            full_load=data.get("full_load", False),
            first_commit_at=when("first_commit_at"),
        )


__all__ = ["RunResult"]
