"""Delete reconciliation: after the incremental pass, make the target's key set the source's.

``Pipeline(..., deletes="soft" | "hard")`` builds a :class:`Reconciliation` for each run. For a
:class:`~etl_express.sources.SQLSource` it compares range checksums computed inside each
database (:mod:`.ranges`), never writing to the source; for a
:class:`~etl_express.sources.OneCODataSource` 1C's own ``DeletionMark`` is the soft delete
(:mod:`.onec`). The counts land in ``RunResult.checks`` as the ``deletes`` check.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import ETLConfigError, ETLError, QualityError, SourceError
from ..format import normalize_name
from ..quality import CheckResult, judge, skipped
from ..store import reconciliation as saved_state
from ..store.schema import now

if TYPE_CHECKING:
    from .._engine.spec import PipelineSpec as Pipeline

DELETE_MODES = ("soft", "hard")
#: a reconciliation that would remove more than this share of the target's live rows stops
#: (the ``deletes`` check, policy ``fail``) before deleting anything: an empty or unreadable
#: source must not empty the target
MAX_DELETE_SHARE = 0.5

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def check_options(
    name: str, deletes: str | None, every: str | float | dt.timedelta | None
) -> dt.timedelta | None:
    """Validate ``deletes=`` and ``reconcile_every=``; the spacing as a timedelta."""
    if deletes is not None and deletes not in DELETE_MODES:
        raise ETLConfigError(
            f"deletes={deletes!r} is not None, 'soft' or 'hard'",
            where={"pipeline": name},
            hint='deletes="soft" marks rows gone from the source with _etl_deleted_at',
        )
    if every is None:
        return None
    if deletes is None:
        raise ETLConfigError(
            "reconcile_every= without deletes= has nothing to space out",
            where={"pipeline": name},
            hint='add deletes="soft" or "hard"',
        )
    if isinstance(every, dt.timedelta):
        spacing = every
    elif isinstance(every, (int, float)) and not isinstance(every, bool):
        spacing = dt.timedelta(seconds=float(every))
    elif isinstance(every, str) and _DURATION.match(every):
        number, unit = _DURATION.match(every).groups()  # type: ignore[union-attr]
        spacing = dt.timedelta(seconds=float(number) * _UNIT[unit])
    else:
        raise ETLConfigError(
            f"reconcile_every={every!r} is not a duration",
            where={"pipeline": name},
            hint='e.g. reconcile_every="24h" (s, m, h, d), a number of seconds or a timedelta',
        )
    if spacing.total_seconds() < 0:
        raise ETLConfigError(f"reconcile_every must not be negative, got {every!r}")
    return spacing


def combined_deletes(partitions: list[Any], policy: Any) -> list[CheckResult]:
    """The partitions' ``deletes`` checks summed, for a parallel run's result (none if the
    partitions reconciled nothing)."""
    found = [c for r in partitions for c in r.checks if c.name == "deletes"]
    if not found:
        return []
    counts = ("segments_compared", "keys_fetched", "rows_reread", "deletes_applied")
    details: dict[str, Any] = {k: sum(c.details.get(k, 0) for c in found) for k in counts}
    details["partitions"] = len(found)
    triggered = [c for c in found if c.triggered]
    if triggered:
        details["guard"] = triggered[0].details.get("guard", triggered[0].status)
    if all(c.status == "skipped" for c in found):
        return [skipped("deletes", policy, found[0].details.get("skipped", "skipped"))]
    return [judge("deletes", not triggered, policy, **details)]


def forget_reconciliation(store: Any, pipeline: str, partition: str | None) -> None:
    """Drop the reconciliation state (``pipeline.reset()``): the next one starts over."""
    with store.transaction() as conn:
        saved_state.reset(conn, pipeline, partition)


def deletion_mark_steps(source: Any) -> list[Any]:
    """The transformer mapping 1C's ``DeletionMark`` to ``_etl_deleted_at`` (for a 1C source)."""
    from ..sources.onec import OneCODataSource

    if isinstance(source, OneCODataSource):
        from .onec import DeletionMarkToDeletedAt

        return [DeletionMarkToDeletedAt()]
    return []


def row_hash_key(pipeline: Pipeline) -> str:
    from ..anonymizers.rowhash import row_hash_key as key

    return key(pipeline)


def row_hash_columns(pipeline: Pipeline, names: list[str]) -> list[str]:
    from ..anonymizers.rowhash import row_hash_columns as columns

    return columns(pipeline, names)


def _pk_anonymized(pipeline: Pipeline) -> list[str]:
    covered = {normalize_name(c) for a in pipeline.anonymizers for c in a.covers()}
    return [c for c in pipeline.source.primary_key if c in covered]


class Reconciliation:
    """The reconciliation of one run of one partition (built before the incremental pass,
    which it prepares: a SQL source then reads each row with its keyed hash)."""

    def __init__(self, runner: Any):
        from ..sinks.postgres import PostgresSink
        from ..sources.onec import OneCODataSource
        from ..sources.rest import RESTSource
        from ..sources.sql import SQLSource

        self.runner = runner
        pipeline: Pipeline = runner.pipeline
        self.pipeline = pipeline
        self.mode: str = pipeline.deletes  # type: ignore[assignment]
        where = {"pipeline": pipeline.name, "partition": runner.pkey or "all"}
        sink = pipeline.sink
        if not isinstance(sink, PostgresSink) or sink.write_mode != "upsert":
            raise ETLConfigError(
                f"deletes= needs an upserting PostgresSink, got {sink!r}",
                where=where,
                hint="write to PostgresSink(table=...) or leave deletes=None",
            )
        hidden = _pk_anonymized(pipeline)
        if hidden:
            raise ETLConfigError(
                f"deletes= cannot match keys: primary key column(s) {hidden} are anonymized",
                where=where,
                hint="reconcile on a key that is not personal data, or leave deletes=None",
            )
        source = pipeline.source
        if isinstance(source, SQLSource):
            from ..sources.sql.checksums import HASHING_DIALECTS, integer_key

            engine = source.engine()
            hashing = engine.dialect.name in HASHING_DIALECTS
            try:
                ranges = hashing and integer_key(source, engine)
            except sa.exc.SQLAlchemyError as exc:
                raise SourceError(
                    f"cannot read the key of {source.table or 'the query'} for deletes=: "
                    f"{type(exc).__name__}",
                    where=where,
                    hint="check the URL, that the database is reachable and the credentials",
                ) from None
            self.kind = "range_checksums" if ranges else "key_set"
            partition = runner.partition or {}
            column = partition.get("column", source.key_columns[0]) if partition else None
            if partition and (column != source.key_columns[0] or not ranges):
                raise ETLConfigError(
                    f"deletes= reconciles a partition by ranges of a single integer primary key; "
                    f"this one is by {column!r}",
                    where=where,
                    hint="partition by the integer primary key (source.partitions(n)), or run "
                    "without partitions",
                )
            # keyed by a secret from the secret store, over what the target holds in clear
            source.row_hash_key = row_hash_key(pipeline) if hashing else None
            source.row_hash_columns = (
                row_hash_columns(pipeline, list(source.selectable(engine).c.keys()))
                if hashing
                else None
            )
            if hashing:
                saved_state.forget_stored_key(runner.store, pipeline.name)
        elif isinstance(source, OneCODataSource):
            self.kind = "deletion_mark"
            for t in pipeline.transformers:
                if hasattr(t, "marked"):
                    t.marked = 0
            if self.mode != "soft":
                raise ETLConfigError(
                    "a 1C source marks deletions (DeletionMark): use deletes='soft'",
                    where=where,
                    hint="deleted objects keep their row, with _etl_deleted_at set",
                )
        elif isinstance(source, RESTSource) and (source.keys_path or source.deleted_path):
            self.kind = "key_listing" if source.keys_path else "deleted_records"
            if runner.partition:
                raise ETLConfigError(
                    "deletes= on a REST source lists keys for the whole source: run it without "
                    "partitions",
                    where=where,
                )
        else:
            raise ETLConfigError(
                f"deletes= is not supported for {type(source).__name__}",
                where=where,
                hint="delete reconciliation works for SQLSource, OneCODataSource and RESTSource "
                "with keys_path= or deleted_path=",
            )

    def _due(self) -> tuple[bool, str]:
        spacing = self.pipeline.reconcile_every
        if spacing is None:
            return True, ""
        saved = saved_state.load(self.runner.store, self.pipeline.name, self.runner.pkey)
        if saved is None or saved["finished_at"] is None:
            return True, ""
        due = saved["finished_at"] + spacing
        if now() >= due:
            return True, ""
        return (
            False,
            f"last reconciliation finished {saved['finished_at'].isoformat()}; next due {due.isoformat()}",
        )

    def run(self) -> None:
        """Reconcile and add the ``deletes`` check to the run's result."""
        runner, pipeline = self.runner, self.pipeline
        policy = pipeline.check_policies["deletes"]
        if self.kind == "deletion_mark":
            marked = sum(getattr(t, "marked", 0) for t in pipeline.transformers)
            runner.result.checks.append(
                judge(
                    "deletes",
                    True,
                    policy,
                    mode=self.mode,
                    strategy=self.kind,
                    segments_compared=0,
                    keys_fetched=0,
                    rows_reread=0,
                    deletes_applied=marked,  # rows loaded with DeletionMark set
                    marked=marked,
                )
            )
            return
        due, why = self._due()
        if not due:
            runner.log.info("delete reconciliation skipped: {}", why)
            runner.result.checks.append(skipped("deletes", policy, why))
            return
        warned: list[str] = []
        try:
            counts = self._ranges(policy, warned)
        except ETLError:
            raise
        except Exception as exc:
            from ..retry import is_transient
            from ..sinks.postgres import safe_pg_message

            # from None: a driver's message may quote a value (its parameters, never)
            err = ETLError(
                f"delete reconciliation ({self.kind}) failed: {safe_pg_message(exc)}",
                where={"pipeline": pipeline.name, "partition": runner.pkey or "all"},
                hint="what is committed stays committed; the next run resumes the reconciliation",
            )
            err.transient = is_transient(exc)  # type: ignore[attr-defined]
            raise err from None
        pipeline.sink.rollback()  # the target may have grown _etl_deleted_at: re-read its columns
        runner.log.info(
            "delete reconciliation ({}): {} segments compared, {} keys fetched, {} rows re-read, "
            "{} deletes applied",
            self.mode,
            counts["segments_compared"],
            counts["keys_fetched"],
            counts["rows_reread"],
            counts["deletes_applied"],
        )
        runner.result.checks.append(
            judge(
                "deletes",
                not warned,
                policy,
                mode=self.mode,
                strategy=self.kind,
                **counts,
                **({"guard": warned[0]} if warned else {}),
            )
        )

    def _ranges(self, policy: str, warned: list[str]) -> dict[str, Any]:
        from ..sources.sql.checksums import SQLChecksums
        from .ranges import RangeReconciler
        from .target import TargetChecksums

        runner, pipeline = self.runner, self.pipeline
        sink = pipeline.sink
        source = pipeline.source
        key = getattr(source, "row_hash_key", None)
        target = TargetChecksums(
            sink.schema_name,  # type: ignore[attr-defined]
            sink.table_name,  # type: ignore[attr-defined]
            list(source.primary_key),
            source.name,
            history=bool(getattr(sink, "history", False)),
            partition=runner.partition,
        )
        with runner.store.transaction() as conn:
            if not target.exists(conn):
                return {
                    "segments_compared": 0,
                    "keys_fetched": 0,
                    "rows_reread": 0,
                    "deletes_applied": 0,
                    "resumed": False,
                    "seconds": 0.0,
                }

        def guard(source_rows: int, target_rows: int) -> None:
            gone = target_rows - source_rows
            if target_rows == 0 or gone <= MAX_DELETE_SHARE * target_rows:
                return
            what = (
                f"the source has {source_rows} rows where the target has {target_rows} live "
                f"rows: reconciling would delete more than {MAX_DELETE_SHARE:.0%} of them"
            )
            if policy == "fail":
                raise QualityError(
                    what,
                    where={"pipeline": pipeline.name, "partition": runner.pkey or "all"},
                    hint="check the source (an empty or unreadable table?); if the deletes are "
                    'real, run once with checks={"deletes": "warn"}',
                )
            runner.log.warning("{}", what)
            warned.append(what)

        if self.kind == "range_checksums":
            checksums = SQLChecksums(source, key, runner.partition)  # type: ignore[arg-type]
            return RangeReconciler(runner, checksums, target, self.mode, guard).run()
        from .keysets import KeySetReconciler
        from .listings import listing_for

        listing = listing_for(source, key)
        reconciler = KeySetReconciler(
            runner, listing, target, list(source.primary_key), self.mode, guard
        )
        counts = reconciler.run()
        with runner.store.transaction() as conn:  # for reconcile_every
            saved_state.save(
                conn,
                pipeline.name,
                runner.pkey,
                runner.result.run_id,
                None,
                [],
                {k: v for k, v in counts.items() if isinstance(v, int)},
                now(),
                finished=True,
            )
        return counts


__all__ = [
    "DELETE_MODES",
    "MAX_DELETE_SHARE",
    "Reconciliation",
    "check_options",
    "combined_deletes",
    "deletion_mark_steps",
    "forget_reconciliation",
]
