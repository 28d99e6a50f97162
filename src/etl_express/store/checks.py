"""The owner of ``etl_express.quality_checks``: each quality check's result per run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .checkpoints import CheckpointStore
from .schema import now, quality_checks, runs


class RecordedCheck(Protocol):
    """What is stored of a check (``etl_express.quality.CheckResult`` has it)."""

    @property
    def name(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def policy(self) -> str: ...

    @property
    def details(self) -> dict[str, Any]: ...


def record(
    store: CheckpointStore,
    run_id: str,
    pipeline: str,
    partition: str,
    checks: Sequence[RecordedCheck],
) -> None:
    """Store a run's check results in a transaction of their own, as one multi-row
    ``INSERT`` (an executemany would send one statement per check)."""
    if not checks:
        return
    t = now()
    with store.transaction() as conn:
        conn.execute(
            sa.insert(quality_checks).values(
                [
                    {
                        "run_id": run_id,
                        "pipeline": pipeline,
                        "partition": partition,
                        "name": c.name,
                        "status": c.status,
                        "policy": c.policy,
                        "details": c.details,
                        "created_at": t,
                    }
                    for c in checks
                ]
            ),
        )


def recent_details(
    store: CheckpointStore, pipeline: str, partition: str, name: str, limit: int = 10
) -> list[dict[str, Any]]:
    """Details of check ``name`` in the latest succeeded runs, newest first."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(quality_checks.c.details)
            .select_from(quality_checks.join(runs, runs.c.run_id == quality_checks.c.run_id))
            .where(
                quality_checks.c.pipeline == pipeline,
                quality_checks.c.partition == partition,
                quality_checks.c.name == name,
                runs.c.status == "succeeded",
            )
            .order_by(quality_checks.c.created_at.desc())
            .limit(limit)
        ).all()
    return [dict(r[0] or {}) for r in rows]


def forget(conn: Connection, pipeline: str) -> int:
    """Delete every check result of ``pipeline``; the rows removed."""
    stmt = sa.delete(quality_checks).where(quality_checks.c.pipeline == pipeline)
    return conn.execute(stmt).rowcount


__all__ = ["RecordedCheck", "forget", "recent_details", "record"]
