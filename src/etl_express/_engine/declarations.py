"""What a pipeline declares, kept in the store so ``etl-express status`` and the dashboard
judge it without its code: its freshness, tagged columns and target (when the pipeline
first opens its store), and its target's columns after each run (only when they changed)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Connection

from ..format import normalize_name
from ..store import declarations, tables
from ..store.checkpoints import CheckpointStore
from .spec import PipelineSpec


def position_columns(pipeline: PipelineSpec) -> set[str]:
    """The columns whose values a source position may hold: its key and cursor columns."""
    source = pipeline.source
    cursor = getattr(source, "cursor", None)
    names = [*source.primary_key, *([cursor] if isinstance(cursor, str) else [])]
    return {normalize_name(c) for c in names}


def declare(store: CheckpointStore, pipeline: PipelineSpec) -> None:
    """Record what ``pipeline`` declares (freshness, personal-data columns, target)."""
    declare_all(store, [pipeline])


def declare_all(store: CheckpointStore, pipelines: Sequence[PipelineSpec]) -> None:
    """Record what each of ``pipelines`` declares, in one transaction (a replication's
    tables)."""
    declared = []
    for pipeline in pipelines:
        freshness = pipeline.freshness
        target = pipeline.sink.target_table()
        declared.append(
            declarations.Declaration(
                pipeline.name,
                freshness_s=None if freshness is None else freshness.total_seconds(),
                pii=pipeline.pii,
                # fail closed: any tagged key column means positions may hold personal data
                position_pii=bool(position_columns(pipeline) & set(pipeline.pii)),
                target=None if target is None else str(target),
            )
        )
    with store.transaction() as conn:
        declarations.declare_many(conn, declared)


def record_target_columns(pipeline: PipelineSpec, store: CheckpointStore, run_id: str) -> None:
    """Record the target's columns in ``table_schemas`` when they changed since last time
    (every partition may: a parallel run has no other hook)."""
    target = pipeline.sink.target_table()
    if target is None:
        return
    with store.transaction() as conn:
        found = tables.column_types(conn, target)
        if found:
            declarations.record_columns(conn, pipeline.name, str(target), found, run_id)


def record_target_columns_on(conn: Connection, pipeline: PipelineSpec, run_id: str) -> None:
    """:func:`record_target_columns` in the caller's transaction (the run's closing one),
    in one statement."""
    target = pipeline.sink.target_table()
    if target is not None:
        declarations.record_catalog_columns(conn, pipeline.name, target, run_id)


__all__ = [
    "declare",
    "declare_all",
    "position_columns",
    "record_target_columns",
    "record_target_columns_on",
]
