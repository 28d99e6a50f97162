"""Reconciliation state in the ``etl_express`` schema.

``reconcile_state`` holds, per pipeline and partition, the ranges still to compare and the
counts so far; it is written in the same transaction as each step's deletes, so a killed
reconciliation resumes with the next range. ``row_hash_keys`` held each pipeline's row-hash
key in earlier versions; row hashes are now keyed by a secret that lives only in the secret
store (:mod:`etl_express.anonymizers.rowhash`), and a stored key is deleted on first use.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Connection

from ..store.state import SCHEMA, CheckpointStore, now

metadata = sa.MetaData(schema=SCHEMA)

reconcile_state = sa.Table(
    "reconcile_state",
    metadata,
    sa.Column("pipeline", sa.Text, primary_key=True),
    sa.Column("partition", sa.Text, primary_key=True, server_default=""),
    sa.Column("run_id", sa.String(36)),
    sa.Column("plan", JSONB),  # origin, root width; None when finished
    sa.Column("pending", JSONB, nullable=False),
    sa.Column("counts", JSONB, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)

row_hash_keys = sa.Table(
    "row_hash_keys",
    metadata,
    sa.Column("pipeline", sa.Text, primary_key=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

_ready: set[str] = set()


def ensure_tables(store: CheckpointStore) -> None:
    if store.url in _ready:
        return
    with store.transaction() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('etl_express.schema'))"))
        metadata.create_all(conn, checkfirst=True)
    _ready.add(store.url)


def forget_stored_key(store: CheckpointStore, pipeline: str) -> None:
    """Remove the row-hash key earlier versions kept in this table: row hashes are now keyed
    by a secret from the secret store only (:mod:`etl_express.anonymizers.rowhash`)."""
    ensure_tables(store)
    with store.transaction() as conn:
        conn.execute(sa.delete(row_hash_keys).where(row_hash_keys.c.pipeline == pipeline))


def load(store: CheckpointStore, pipeline: str, partition: str) -> dict[str, Any] | None:
    with store.transaction() as conn:
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


def forget(store: CheckpointStore, pipeline: str, partition: str | None) -> None:
    """Drop the reconciliation state (``pipeline.reset()``): the next one starts over."""
    ensure_tables(store)
    with store.transaction() as conn:
        stmt = sa.delete(reconcile_state).where(reconcile_state.c.pipeline == pipeline)
        if partition is not None:
            stmt = stmt.where(reconcile_state.c.partition == partition)
        conn.execute(stmt)


__all__ = ["ensure_tables", "forget", "forget_stored_key", "load", "reconcile_state", "save"]
