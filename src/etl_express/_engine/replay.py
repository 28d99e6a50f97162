"""Replaying quarantined records once their cause is fixed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
from loguru import logger
from sqlalchemy.engine import Connection

from ..errors import SinkError
from ..format import LINEAGE_COLUMNS, TIMESTAMP, add_lineage, records_to_batch
from ..retry import as_etl_error
from ..sinks.base import Sink
from ..store import quarantine as quarantined_records
from ..store import tables
from ..store.schema import now
from .run import SinkCloser
from .spec import PipelineSpec, ledger_for
from .unit import BatchWork, commit_batch

#: the partition key of a replay's row in ``etl_express.runs``
REPLAY_KEY = "replay"


@dataclass
class ReplayResult:
    """What :func:`replay` did."""

    run_id: str
    replayed: int = 0
    still_failing: int = 0
    ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    target = sink.target_table()
    found = tables.columns(conn, target) if target is not None else {}
    if not found:
        return None
    return pa.schema(
        [
            pa.field(c.name, _pg_arrow_type(c.data_type, c.precision, c.scale))
            for c in found.values()
            if c.name not in LINEAGE_COLUMNS
        ]
    )


def replay(
    pipeline: PipelineSpec, *, ids: Sequence[int] | None = None, run_id: str | None = None
) -> ReplayResult:
    """Re-submit quarantined records of ``pipeline`` to its sink.

    Records refused by the sink are written as stored (they are already transformed and
    anonymized); records that could not be converted first go through the pipeline's
    transformers (not its anonymizers: they were anonymized when quarantined). Rows that
    land are marked ``replayed_at``; rows still refused stay quarantined with the new
    reason. Everything commits in one transaction; the replay is a run of its own in the
    ledger (partition ``replay``), with its heartbeat.
    """
    store = pipeline.store
    where = {"pipeline": pipeline.name, "partition": REPLAY_KEY}
    try:
        items = quarantined_records.records(store, pipeline.name, ids=ids, run_id=run_id)
    except Exception as exc:
        raise as_etl_error(exc, what="reading the quarantine failed", where=where) from None
    if not items:
        return ReplayResult(run_id="")
    sink = SinkCloser(pipeline.sink)
    try:
        with ledger_for(pipeline).open(pipeline.name, REPLAY_KEY) as run:
            result = ReplayResult(run_id=run.run_id)
            try:
                with store.transaction() as conn:
                    schema = target_schema(conn, pipeline.sink)
                    for stage in ("sink", "convert", "source"):
                        group = [it for it in items if it.get("stage", "sink") == stage]
                        if group:
                            _replay_group(pipeline, conn, group, schema, stage, run.run_id, result)
            except Exception as exc:  # wrapped here, so the ledger stores the clear message
                error = as_etl_error(exc, what="the replay failed", where=where)
                if error is exc:
                    raise
                raise error from None
            sink.close()
            run.succeed()
    except BaseException:
        sink.close_after_failure(logger)
        raise
    return result


def _replay_group(
    pipeline: PipelineSpec,
    conn: Connection,
    group: list[dict[str, Any]],
    schema: pa.Schema | None,
    stage: str,
    replay_id: str,
    result: ReplayResult,
) -> None:
    store = pipeline.store
    records = [it["record"] for it in group]
    if stage == "sink" and schema is not None:
        known = [f for f in schema if any(f.name in r for r in records)]
        batch, rejected = records_to_batch(records, pa.schema(known))
    else:
        batch, rejected = records_to_batch(records, pipeline.source.schema())
    index = [i for i in range(len(group)) if i not in {r.index for r in rejected}]
    for r in rejected:
        quarantined_records.set_reason(conn, group[r.index]["id"], r.reason)
    if stage != "sink":
        for step in pipeline.transformers:
            batch = step.transform(batch)
        if batch.num_rows != len(index):
            raise SinkError(
                "a transformer filtered rows during replay; replay cannot tell which",
                hint="replay only sink-stage records, or make the transformer keep every row",
            )
    batch = add_lineage(batch, replay_id, pipeline.source.name, now())
    done = commit_batch(
        conn,
        store,
        pipeline.sink,
        BatchWork(
            run_id=replay_id,
            pipeline=pipeline.name,
            partition=REPLAY_KEY,
            rows=batch,
            primary_key=list(pipeline.source.primary_key),
            rows_in=len(group),
            quarantine_refused=False,  # the refused rows are already in quarantine
            where={"pipeline": pipeline.name, "replay": replay_id, "stage": stage},
        ),
    )
    refused = dict(done.outcome.refused)
    landed = []
    for pos, item_index in enumerate(index):
        item = group[item_index]
        if pos in refused:
            quarantined_records.set_reason(conn, item["id"], refused[pos])
        else:
            landed.append(item["id"])
    quarantined_records.mark_replayed(conn, landed, replay_id)
    result.replayed += len(landed)
    result.ids += landed
    result.still_failing += len(group) - len(landed)


__all__ = ["REPLAY_KEY", "ReplayResult", "replay", "target_schema"]
