"""The owner of ``etl_express.quarantine``: records rejected at the source, on conversion to
the common format or by the sink, stored anonymized with their reason and position."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .checkpoints import CheckpointStore
from .schema import now, quarantine

#: a quarantined record: (anonymized record, reason, source position)
Quarantined = tuple[dict[str, Any], str, Any]


def add(
    conn: Connection,
    run_id: str,
    pipeline: str,
    partition: str,
    items: Sequence[Quarantined],
    stage: str = "sink",
) -> None:
    """Store anonymized records, in the caller's (the batch's) transaction."""
    if not items:
        return
    t = now()
    conn.execute(
        sa.insert(quarantine),
        [
            {
                "run_id": run_id,
                "pipeline": pipeline,
                "partition": partition,
                "record": record,
                "reason": reason,
                "position": position,
                "created_at": t,
                "stage": stage,
            }
            for record, reason, position in items
        ],
    )


def records(
    store: CheckpointStore,
    pipeline: str,
    *,
    run_id: str | None = None,
    ids: Sequence[int] | None = None,
    include_replayed: bool = False,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Quarantined records of ``pipeline``, oldest first (not yet replayed unless asked)."""
    q = sa.select(quarantine).where(quarantine.c.pipeline == pipeline).order_by(quarantine.c.id)
    if run_id is not None:
        q = q.where(quarantine.c.run_id == run_id)
    if ids is not None:
        q = q.where(quarantine.c.id.in_(list(ids)))
    if not include_replayed:
        q = q.where(quarantine.c.replayed_at.is_(None))
    if limit is not None:
        q = q.limit(limit)
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings().all()]


def mark_replayed(conn: Connection, ids: Sequence[int], run_id: str) -> None:
    """Mark records that landed on replay (their reason says by which run)."""
    if ids:
        conn.execute(
            sa.update(quarantine)
            .where(quarantine.c.id.in_(list(ids)))
            .values(replayed_at=now(), reason=quarantine.c.reason + f" [replayed by run {run_id}]")
        )


def set_reason(conn: Connection, item_id: int, reason: str) -> None:
    """Replace a record's reason (still refused on replay, for a new reason)."""
    conn.execute(sa.update(quarantine).where(quarantine.c.id == item_id).values(reason=reason))


def forget(conn: Connection, pipeline: str) -> int:
    """Delete every quarantined record of ``pipeline``; the rows removed."""
    return conn.execute(sa.delete(quarantine).where(quarantine.c.pipeline == pipeline)).rowcount


__all__ = ["Quarantined", "add", "forget", "mark_replayed", "records", "set_reason"]
