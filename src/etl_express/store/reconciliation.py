"""The owner of ``etl_express.reconcile_state`` (per pipeline and partition, the ranges of a
delete reconciliation still to compare and its counts so far; saved in the same transaction
as each step's deletes, so a killed reconciliation resumes with the next range) and
``etl_express.row_hash_keys`` (each pipeline's row-hash key, 32 random bytes, which readers
of the target must not be granted: see docs/reliability.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from .checkpoints import CheckpointStore
from .schema import now, reconcile_state, row_hash_keys


def forget_stored_key(store: CheckpointStore, pipeline: str) -> None:
    """Delete the row-hash key earlier versions kept in ``row_hash_keys``: row hashes are now
    keyed by a secret from the secret store only (:mod:`etl_express.anonymizers.rowhash`)."""
    with store.transaction() as conn:
        conn.execute(sa.delete(row_hash_keys).where(row_hash_keys.c.pipeline == pipeline))


def load(store: CheckpointStore, pipeline: str, partition: str) -> dict[str, Any] | None:
    """The saved reconciliation of a pipeline's partition (``None``: none yet)."""
    with store.engine.connect() as conn:
        row = (
            conn.execute(
                sa.select(reconcile_state).where(
                    reconcile_state.c.pipeline == pipeline,
                    reconcile_state.c.partition == partition,
                )
            )
            .mappings()
            .first()
        )
    return None if row is None else dict(row)


def save(
    conn: Connection,
    pipeline: str,
    partition: str,
    run_id: str,
    plan: dict[str, Any] | None,
    pending: list[Any],
    counts: dict[str, int],
    started_at: dt.datetime,
    finished: bool = False,
) -> None:
    """Save the ranges still to compare and the counts so far, in the step's transaction."""
    values = {
        "run_id": run_id,
        "plan": plan,
        "pending": pending,
        "counts": counts,
        "started_at": started_at,
        "updated_at": now(),
        "finished_at": now() if finished else None,
    }
    conn.execute(
        insert(reconcile_state)
        .values(pipeline=pipeline, partition=partition, **values)
        .on_conflict_do_update(index_elements=["pipeline", "partition"], set_=values)
    )


def reset(conn: Connection, pipeline: str, partition: str | None = None) -> int:
    """Drop the reconciliation state of ``pipeline`` (of one partition when given), so the
    next reconciliation starts over (``pipeline.reset()``); the rows removed."""
    stmt = sa.delete(reconcile_state).where(reconcile_state.c.pipeline == pipeline)
    if partition is not None:
        stmt = stmt.where(reconcile_state.c.partition == partition)
    return conn.execute(stmt).rowcount


def forget(conn: Connection, pipeline: str) -> int:
    """Delete everything reconciliation kept for ``pipeline`` (its state and its row-hash
    key); the rows removed."""
    keys = sa.delete(row_hash_keys).where(row_hash_keys.c.pipeline == pipeline)
    return reset(conn, pipeline) + conn.execute(keys).rowcount


__all__ = ["forget", "forget_stored_key", "load", "reset", "save"]
