"""The owner of ``etl_express.quality_checks``: each quality check's result per run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from .checkpoints import CheckpointStore
from .database import SCHEMA
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


#: a run's check rows from one jsonb parameter (``:checks``, a list of objects with name,
#: status, policy and details), by one statement whose text never changes (compiled once,
#: whatever the number of checks); the ledger runs it with the run's closing UPDATE
INSERT_ROWS = f"""
INSERT INTO {SCHEMA}.quality_checks
    (run_id, pipeline, partition, name, status, policy, details, created_at)
SELECT :run_id, :pipeline, :partition, x.name, x.status, x.policy, x.details, :t
FROM jsonb_to_recordset(:checks) AS x(name text, status text, policy text, details jsonb)
"""


def rows(found: Sequence[RecordedCheck]) -> list[dict[str, Any]]:
    """The ``:checks`` parameter of :data:`INSERT_ROWS`."""
    return [
        {"name": c.name, "status": c.status, "policy": c.policy, "details": c.details}
        for c in found
    ]


def record(
    store: CheckpointStore,
    run_id: str,
    pipeline: str,
    partition: str,
    found: Sequence[RecordedCheck],
) -> None:
    """Store check results of a run in a transaction of their own (a run's own checks are
    stored with its final status instead, see :meth:`~etl_express.store.ledger.RunLedger.finish`)."""
    if not found:
        return
    with store.transaction() as conn:
        conn.execute(
            sa.text(INSERT_ROWS).bindparams(sa.bindparam("checks", type_=JSONB)),
            {
                "run_id": run_id,
                "pipeline": pipeline,
                "partition": partition,
                "t": now(),
                "checks": rows(found),
            },
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


__all__ = ["INSERT_ROWS", "RecordedCheck", "forget", "recent_details", "record", "rows"]
