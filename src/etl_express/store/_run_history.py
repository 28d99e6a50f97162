"""What the store recorded of runs, read for the engine and the Airflow tasks: a partition's
latest runs (the history its end-of-run checks compare with), the batches committed for a
partition so far (a file sink's part numbers) and the outcome of given runs.

Reads only: every write of ``etl_express.runs`` is the run ledger's (:mod:`.ledger`), and
what a run starts from is read by the ledger in the transaction that takes its lease
(:class:`~.ledger.RunStart`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .checkpoints import CheckpointStore
from .schema import quality_checks, runs


def recent_runs(
    store: CheckpointStore,
    pipeline: str,
    partition: str,
    limit: int = 10,
    status: str = "succeeded",
) -> list[dict[str, Any]]:
    """The latest ``limit`` runs of a pipeline's partition with ``status``, newest first."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(runs)
            .where(
                runs.c.pipeline == pipeline, runs.c.partition == partition, runs.c.status == status
            )
            .order_by(runs.c.started_at.desc())
            .limit(limit)
        ).mappings()
        return [dict(r) for r in rows]


def committed_batches(conn: Connection, run_id: str) -> tuple[str, str, int] | None:
    """``(pipeline, partition, batches committed for them so far)`` of the run ``run_id``,
    read on ``conn`` (in a batch's transaction: the batches before it); ``None`` for a run
    the ledger does not know."""
    row = conn.execute(
        sa.select(runs.c.pipeline, runs.c.partition).where(runs.c.run_id == run_id)
    ).first()
    if row is None:
        return None
    committed = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(runs.c.batches), 0)).where(
            runs.c.pipeline == row.pipeline, runs.c.partition == row.partition
        )
    ).scalar_one()
    return row.pipeline, row.partition, int(committed)


def outcomes(store: CheckpointStore, run_ids: Sequence[str]) -> list[dict[str, Any]]:
    """What the store holds for ``run_ids``: one dict per recorded run with ``run_id``,
    ``partition``, ``status`` and ``failed_checks`` (names of checks that failed)."""
    if not run_ids:
        return []
    with store.engine.connect() as conn:
        stored = conn.execute(
            sa.select(runs.c.run_id, runs.c.partition, runs.c.status).where(
                runs.c.run_id.in_(list(run_ids))
            )
        ).all()
        failed = conn.execute(
            sa.select(quality_checks.c.run_id, quality_checks.c.name).where(
                quality_checks.c.run_id.in_(list(run_ids)),
                quality_checks.c.status == "failed",
            )
        ).all()
    return [
        {
            "run_id": row.run_id,
            "partition": row.partition,
            "status": row.status,
            "failed_checks": [c.name for c in failed if c.run_id == row.run_id],
        }
        for row in stored
    ]


__all__ = ["committed_batches", "outcomes", "recent_runs"]
