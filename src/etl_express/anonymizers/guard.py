"""The checks a pipeline passes before it reads a row: personal data covered, every configured
column present, no personal data in a position.

:func:`check_pipeline` runs when a run (single, parallel or replay) starts. Where the source
can tell its columns before reading (:meth:`Source.discover_schema`: SQL reflection, file
headers), the transformers are run over an empty batch of that schema and every anonymizer's
columns are checked against the result, so a typo fails before any connection to the sink is
used for data. Otherwise the same check runs on the first batch, before anything is written
(:func:`check_step_columns`, called by the batch loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from loguru import logger

from ..errors import AnonymizationError, ETLConfigError
from .columns import canonical, check_columns, missing_columns_error, required_columns

if TYPE_CHECKING:
    from .._engine.spec import PipelineSpec as Pipeline


def check_pipeline(pipeline: Pipeline) -> None:
    """Refuse a pipeline that could let personal data through (see the module docstring)."""
    check_coverage(pipeline)
    check_positions(pipeline)
    check_discovered_schema(pipeline)


def covered_columns(anonymizers: Sequence[Any]) -> dict[str, str]:
    """Canonical column -> name of the first anonymizer covering it."""
    out: dict[str, str] = {}
    for a in anonymizers:
        for c in a.covers():
            out.setdefault(canonical(c), type(a).__name__)
    return out


def check_coverage(pipeline: Pipeline) -> None:
    """Every column tagged as personal data (``pii=``, ``source.pii``) has an anonymizer."""
    covered = covered_columns(pipeline.anonymizers)
    missing = [c for c in pipeline.pii if canonical(c) not in covered]
    if missing:
        raise AnonymizationError(
            f"personal-data column(s) {missing} would reach the sink without an anonymizer",
            where={"pipeline": pipeline.name},
            hint="add an anonymizer covering them, e.g. Pseudonymize("
            + repr(missing)
            + ", key=etl.secret('ANON_KEY'))",
        )


def position_columns(source: Any) -> list[tuple[str, str]]:
    """The columns whose values a source puts into its positions, as (role, canonical name):
    the primary key, and the cursor (``SQLSource(cursor=)``, ``Incremental.cursor_field``)."""
    out = [("primary key", canonical(c)) for c in source.primary_key]
    cursor = getattr(source, "cursor", None)
    incremental = getattr(source, "incremental_config", None)
    field = getattr(incremental, "cursor_field", None)
    for name in (cursor, field):
        if isinstance(name, str) and name:
            out.append(("cursor", canonical(name)))
    return out


def check_positions(pipeline: Pipeline) -> None:
    """Refuse a primary key or cursor that holds personal data.

    A position is written in clear to ``etl_express.checkpoints``, ``quarantine.position``,
    run errors, logs and export manifests; it must never be personal data. Such a pipeline is
    refused up front (fail closed) with a hint to read by a surrogate key.
    """
    personal = {canonical(c): "pii=" for c in pipeline.pii}
    for column, owner in covered_columns(pipeline.anonymizers).items():
        personal.setdefault(column, owner)
    for role, column in position_columns(pipeline.source):
        if column in personal:
            why = (
                "tagged as personal data (pii=)"
                if personal[column] == "pii="
                else f"anonymized by {personal[column]}"
            )
            option = "primary_key=" if role == "primary key" else "cursor="
            raise ETLConfigError(
                f"the {role} column {column!r} is {why}: its raw values would be written to "
                "positions (checkpoints, quarantine, run errors, logs, export manifests)",
                where={"pipeline": pipeline.name, "source": pipeline.source.name},
                hint=f"read by a non-personal surrogate column instead ({option} a sequence, "
                f"UUID or row-version column of the source) and keep {column!r} as an "
                "ordinary, anonymized column",
            )


def check_discovered_schema(pipeline: Pipeline) -> None:
    """Check every anonymizer's columns up front when the source can tell its schema."""
    discover = getattr(pipeline.source, "discover_schema", None)
    if not callable(discover):
        return
    try:
        schema = discover()
    except Exception as exc:  # unreachable now: checked on the first batch instead
        logger.debug("schema discovery failed ({}); columns are checked on the first batch", exc)
        return
    if schema is None:
        return
    batch = pa.RecordBatch.from_pylist([], schema=schema)
    for step in pipeline.transformers:
        try:
            batch = step.transform(batch)
        except ETLConfigError:
            raise
        except Exception:  # a step that cannot run on no rows: check on the first batch
            return
    check_columns(
        pipeline.anonymizers,
        batch.schema.names,
        where={"pipeline": pipeline.name, "source": pipeline.source.name},
    )


def check_step_columns(step: Any, names: Sequence[str], where: dict[str, Any]) -> None:
    """One anonymizer's configured columns against a batch's columns (the batch loop calls
    it before each anonymizer, so a source without schema discovery fails on its first
    batch, before anything is written)."""
    present = set(names)
    missing = [c for c in required_columns(step) if c not in present]
    if missing:
        raise missing_columns_error(
            type(step).__name__,
            missing,
            list(names),
            where={k: v for k, v in where.items() if k != "after position"},
        )


__all__ = [
    "check_coverage",
    "check_discovered_schema",
    "check_pipeline",
    "check_positions",
    "check_step_columns",
    "covered_columns",
    "position_columns",
]
