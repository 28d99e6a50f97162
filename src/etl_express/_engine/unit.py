"""One unit of work per batch: rows + quarantine + checkpoint + counters, one transaction.

The batch loop and the quarantine replay both commit through :func:`commit_batch`, so the
rule "a batch's rows, its quarantined records, its checkpoint and the run's counters land
together or not at all" is written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from sqlalchemy.engine import Connection

from ..errors import ETLError
from ..sinks.base import Sink
from ..store import quarantine as quarantined_records
from ..store.checkpoints import Checkpoint, CheckpointStore
from ..store.ledger import record_batch
from ..store.quarantine import Quarantined
from .quarantine import SinkOutcome, refused_records, write_isolating


@dataclass
class BatchWork:
    """What one batch commits.

    ``rows`` carry the lineage columns; ``quarantine`` maps a stage (``convert``,
    ``source``) to records rejected before the write; rows the target refuses are added
    under stage ``sink`` when ``quarantine_refused`` (replay updates its own rows instead).
    ``position`` is the checkpoint to save (``None``: none).
    """

    run_id: str
    pipeline: str
    partition: str
    rows: pa.RecordBatch
    primary_key: Sequence[str]
    rows_in: int
    position: Any = None
    quarantine: dict[str, list[Quarantined]] = field(default_factory=dict)
    quarantine_refused: bool = True
    where: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchCommit:
    """What a committed batch did."""

    outcome: SinkOutcome
    quarantined: int

    @property
    def written(self) -> int:
        return self.outcome.written


def commit_batch(
    conn: Connection, store: CheckpointStore, sink: Sink, work: BatchWork, *, guarded: bool = True
) -> BatchCommit:
    """Write the batch's rows (isolating refused ones), its quarantine, its checkpoint and
    the run's counters on ``conn`` (inside the caller's transaction); ``guarded=False``:
    see :func:`~.quarantine.write_isolating` (a refused row fails the transaction)."""
    try:
        outcome = write_isolating(conn, sink, work.rows, work.primary_key, guarded=guarded)
    except ETLError as exc:
        exc.where.update({k: v for k, v in work.where.items() if k not in exc.where})
        raise type(exc)(exc.what, where=exc.where, hint=exc.hint) from exc
    stages = dict(work.quarantine)
    if work.quarantine_refused and outcome.refused:
        stages["sink"] = [
            (record, reason, work.position)
            for record, reason in refused_records(work.rows, outcome.refused)
        ]
    quarantined = 0
    for stage, items in stages.items():
        quarantined_records.add(conn, work.run_id, work.pipeline, work.partition, items, stage)
        quarantined += len(items)
    if not work.quarantine_refused:
        quarantined += len(outcome.refused)
    checkpoint = (
        None if work.position is None else Checkpoint(work.pipeline, work.partition, work.position)
    )
    # the checkpoint and the run's counters: one statement
    record_batch(
        conn, work.run_id, work.rows_in, outcome.written, quarantined, checkpoint=checkpoint
    )
    return BatchCommit(outcome, quarantined)


__all__ = ["BatchCommit", "BatchWork", "Quarantined", "commit_batch"]
