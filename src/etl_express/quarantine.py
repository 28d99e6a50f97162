"""Quarantine: keep the bad rows out, let the rest of the batch land.

A record goes to ``etl_express.quarantine`` when it cannot be converted to the common
format (stage ``convert``), when a source rejects it itself (stage ``source``), or when the
target refuses it (stage ``sink``: NOT NULL, CHECK, a unique key other than the primary
key, a value too long...). For the sink stage the batch is written under a savepoint; when
the write fails on a row-level error (SQLSTATE class 22 or 23) the savepoint is rolled back
and the batch is bisected, each half under its own savepoint, until the bad rows are
isolated — O(bad x log n) writes, all in the batch's transaction, so the good rows, the
quarantined ones and the checkpoint commit together.

Stored records are anonymized (the sink stage stores the already anonymized row; the other
stages pass the raw record through :meth:`Pipeline.anonymize_record`) and reasons never
contain values (:func:`~etl_express.sinks.postgres.safe_pg_message`).

:func:`replay` re-submits quarantined records once their cause is fixed (for example a
constraint on the target was relaxed, or a transformer now casts the column).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .errors import ETLError, SinkError
from .format import LINEAGE_COLUMNS, TIMESTAMP, add_lineage, records_to_batch, to_records
from .retry import sqlstate
from .sinks.base import Sink

if TYPE_CHECKING:
    from .pipeline import Pipeline

#: a batch with more rows refused by the target than this fails instead of being bisected
BISECT_LIMIT = 1000


def is_row_error(exc: BaseException) -> bool:
    """Did the target refuse some row's data (rather than fail as a whole)?"""
    state = sqlstate(exc)
    if state is not None:
        return state[:2] in ("22", "23")
    return getattr(exc, "row_error", False) is True


_STAGE_RELATION = re.compile(r'relation "_etl_stage_\w+"')


def row_reason(exc: BaseException, table: str | None = None) -> str:
    """Why the target refused a row, without any value from the row (``table`` replaces
    the name of the sink's staging table in PostgreSQL's message)."""
    from .sinks.postgres import safe_pg_message

    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if getattr(e, "diag", None) is not None:
            reason = safe_pg_message(e)
            constraint = getattr(e.diag, "constraint_name", None)  # type: ignore[attr-defined]
            if constraint and constraint not in reason:
                reason += f" [constraint {constraint}]"
            if table:
                reason = _STAGE_RELATION.sub(f'relation "{table}"', reason)
            return reason
        e = e.__cause__ or e.__context__
    if isinstance(exc, ETLError):
        return exc.what
    return type(exc).__name__


@dataclass
class SinkOutcome:
    """What a batch write did: rows written and the rows refused, as (index, reason)."""

    written: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)


def write_isolating(
    conn: Connection, sink: Sink, batch: pa.RecordBatch, primary_key: Sequence[str]
) -> SinkOutcome:
    """Write ``batch``, isolating rows the target refuses by bisection under savepoints."""
    outcome = SinkOutcome()
    table = getattr(sink, "table", None)
    if batch.num_rows == 0:
        return outcome
    # DDL (create, add column, widen) happens outside the savepoints, so it survives them
    sink.prepare(conn, batch.schema, primary_key)

    # an explicit stack, not a recursive closure: a closure that calls itself is a reference
    # cycle, which would keep every batch alive until the cyclic garbage collector runs
    pending = [(0, batch.num_rows)]
    while pending:
        lo, hi = pending.pop()
        try:
            with conn.begin_nested():
                outcome.written += sink.write(conn, batch.slice(lo, hi - lo), primary_key)
            continue
        except Exception as exc:
            if not is_row_error(exc):
                raise
            if hi - lo == 1:
                outcome.refused.append(
                    (lo, row_reason(exc, table if isinstance(table, str) else None))
                )
                if len(outcome.refused) > BISECT_LIMIT:
                    raise SinkError(
                        f"more than {BISECT_LIMIT} rows of one batch were refused by the target, "
                        f"e.g.: {outcome.refused[0][1]}",
                        hint="fix the target's constraints or the data (a transformer) and run again",
                    ) from None
                continue
        mid = (lo + hi) // 2
        pending += [(mid, hi), (lo, mid)]  # the lower half first, as before
    outcome.refused.sort()
    return outcome


def refused_records(
    batch: pa.RecordBatch, refused: Sequence[tuple[int, str]]
) -> list[tuple[dict[str, Any], str]]:
    """The refused rows as JSON-like records without lineage columns, with their reasons."""
    keep = [i for i, n in enumerate(batch.schema.names) if n not in LINEAGE_COLUMNS]
    out = []
    for index, reason in refused:
        row = batch.slice(index, 1).select(keep)
        out.append((to_records(row)[0], reason))
    return out


def drop_rows(batch: pa.RecordBatch, indices: Sequence[int]) -> pa.RecordBatch:
    if not indices:
        return batch
    bad = set(indices)
    return batch.take(pa.array([i for i in range(batch.num_rows) if i not in bad], type=pa.int64()))


# -- replay -----------------------------------------------------------------------------


@dataclass
class ReplayResult:
    """What :func:`replay` did."""

    run_id: str
    replayed: int = 0
    still_failing: int = 0
    ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "replayed": self.replayed,
            "still_failing": self.still_failing,
            "ids": self.ids,
        }


def _pg_arrow_type(data_type: str, precision: int | None, scale: int | None) -> pa.DataType:
    if data_type in ("bigint", "integer", "smallint"):
        return pa.int64()
    if data_type in ("double precision", "real"):
        return pa.float64()
    if data_type == "numeric":
        return (
            pa.decimal128(precision, scale or 0) if precision and precision <= 38 else pa.string()
        )
    if data_type == "boolean":
        return pa.bool_()
    if data_type == "date":
        return pa.date32()
    if data_type == "timestamp with time zone":
        return TIMESTAMP
    if data_type == "timestamp without time zone":
        return pa.timestamp("us")
    return pa.string()


def target_schema(conn: Connection, sink: Sink) -> pa.Schema | None:
    """The Arrow schema of a PostgreSQL sink's existing table (``None`` for other sinks)."""
    schema_name = getattr(sink, "schema_name", None)
    table_name = getattr(sink, "table_name", None)
    if not schema_name or not table_name:
        return None
    rows = conn.execute(
        sa.text(
            "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns "
            "WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position"
        ),
        {"s": schema_name, "t": table_name},
    ).all()
    if not rows:
        return None
    return pa.schema(
        [
            pa.field(r[0], _pg_arrow_type(r[1], r[2], r[3]))
            for r in rows
            if r[0] not in LINEAGE_COLUMNS
        ]
    )


def replay(
    pipeline: Pipeline, *, ids: Sequence[int] | None = None, run_id: str | None = None
) -> ReplayResult:
    """Re-submit quarantined records of ``pipeline`` to its sink.

    Records refused by the sink are written as stored (they are already transformed and
    anonymized); records that could not be converted first go through the pipeline's
    transformers (not its anonymizers: they were anonymized when quarantined). Rows that
    land are marked ``replayed_at``; rows still refused stay quarantined with the new
    reason. Everything commits in one transaction.
    """
    store = pipeline.store
    items = store.quarantined(pipeline.name, ids=ids, run_id=run_id)
    replay_id = str(uuid.uuid4())
    result = ReplayResult(run_id=replay_id)
    if not items:
        return result
    store.start_run(replay_id, pipeline.name, "replay")
    status, error = "failed", None
    try:
        with store.transaction() as conn:
            schema = target_schema(conn, pipeline.sink)
            for stage in ("sink", "convert", "source"):
                group = [it for it in items if it.get("stage", "sink") == stage]
                if group:
                    _replay_group(pipeline, conn, group, schema, stage, replay_id, result)
            store.record_batch(conn, replay_id, len(items), result.replayed, result.still_failing)
        status = "succeeded"
    except ETLError as exc:
        error = str(exc)
        raise
    finally:
        store.finish_run(replay_id, status, error)
    return result


def _replay_group(
    pipeline: Pipeline,
    conn: Connection,
    group: list[dict[str, Any]],
    schema: pa.Schema | None,
    stage: str,
    replay_id: str,
    result: ReplayResult,
) -> None:
    import datetime as dt

    records = [it["record"] for it in group]
    if stage == "sink" and schema is not None:
        known = [f for f in schema if any(f.name in r for r in records)]
        batch, rejected = records_to_batch(records, pa.schema(known))
    else:
        batch, rejected = records_to_batch(records, pipeline.source.schema())
    index = [i for i in range(len(group)) if i not in {r.index for r in rejected}]
    for r in rejected:
        pipeline.store.update_quarantine_reason(conn, group[r.index]["id"], r.reason)
    if stage != "sink":
        for step in pipeline.transformers:
            batch = step.transform(batch)
        if batch.num_rows != len(index):
            raise SinkError(
                "a transformer filtered rows during replay; replay cannot tell which",
                hint="replay only sink-stage records, or make the transformer keep every row",
            )
    batch = add_lineage(batch, replay_id, pipeline.source.name, dt.datetime.now(dt.timezone.utc))
    outcome = write_isolating(conn, pipeline.sink, batch, list(pipeline.source.primary_key))
    refused = dict(outcome.refused)
    landed = []
    for pos, item_index in enumerate(index):
        item = group[item_index]
        if pos in refused:
            pipeline.store.update_quarantine_reason(conn, item["id"], refused[pos])
        else:
            landed.append(item["id"])
    pipeline.store.mark_replayed(conn, landed, replay_id)
    result.replayed += len(landed)
    result.ids += landed
    result.still_failing += len(group) - len(landed)


__all__ = [
    "BISECT_LIMIT",
    "ReplayResult",
    "SinkOutcome",
    "drop_rows",
    "is_row_error",
    "refused_records",
    "replay",
    "row_reason",
    "target_schema",
    "write_isolating",
]
