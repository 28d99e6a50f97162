"""One run's delete reconciliation: which strategy the source allows, whether it is due,
and the ``deletes`` check with its counts.

Re-read rows go through the engine's public unit of work
(:meth:`~etl_express._engine.batches.PartitionRunner.load_batch`), like the batch loop's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import ETLConfigError, ETLError, QualityError, SourceError, safe_pg_message
from ..format import normalize_name
from ..quality import Policy, judge, skipped
from ..retry import is_transient
from ..store import reconciliation as saved_state
from ..store.schema import now
from ..store.tables import TableName
from .options import MAX_DELETE_SHARE

if TYPE_CHECKING:
    from .._engine.batches import PartitionRunner
    from .._engine.spec import PipelineSpec

#: the counts of a reconciliation that found no target table
NOTHING = {
    "segments_compared": 0,
    "keys_fetched": 0,
    "rows_reread": 0,
    "deletes_applied": 0,
    "resumed": False,
    "seconds": 0.0,
}


def _target(pipeline: PipelineSpec, where: dict[str, Any]) -> TableName:
    """The upserting PostgreSQL table reconciled with the source, or why there is none."""
    from ..sinks.postgres import PostgresSink

    sink = pipeline.sink
    if not isinstance(sink, PostgresSink) or sink.write_mode != "upsert":
        raise ETLConfigError(
            f"deletes= needs an upserting PostgresSink, got {sink!r}",
            where=where,
            hint="write to PostgresSink(table=...) or leave deletes=None",
        )
    covered = {normalize_name(c) for a in pipeline.anonymizers for c in a.covers()}
    hidden = [c for c in pipeline.source.primary_key if c in covered]
    if hidden:
        raise ETLConfigError(
            f"deletes= cannot match keys: primary key column(s) {hidden} are anonymized",
            where=where,
            hint="reconcile on a key that is not personal data, or leave deletes=None",
        )
    return sink.target_table()


def _strategy(runner: PartitionRunner, mode: str, where: dict[str, Any]) -> str:
    """How the source's keys are compared with the target's: ``range_checksums``,
    ``key_set``, ``deletion_mark``, ``key_listing`` or ``deleted_records``. Prepares the
    source for it (a SQL source then reads each row with its keyed hash)."""
    from ..sources.onec import OneCODataSource
    from ..sources.rest import RESTSource
    from ..sources.sql import SQLSource

    pipeline, source = runner.pipeline, runner.pipeline.source
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
        if hashing:  # keyed by a secret from the secret store, over what the target holds in clear
            from ..anonymizers.rowhash import row_hash_columns, row_hash_key

            source.row_hash_key = row_hash_key(pipeline)
            source.row_hash_columns = row_hash_columns(
                pipeline, list(source.selectable(engine).c.keys())
            )
            saved_state.forget_stored_key(runner.store, pipeline.name)
        else:
            source.row_hash_key = source.row_hash_columns = None
        return "range_checksums" if ranges else "key_set"
    if isinstance(source, OneCODataSource):
        for t in pipeline.transformers:
            if hasattr(t, "marked"):
                t.marked = 0
        if mode != "soft":
            raise ETLConfigError(
                "a 1C source marks deletions (DeletionMark): use deletes='soft'",
                where=where,
                hint="deleted objects keep their row, with _etl_deleted_at set",
            )
        return "deletion_mark"
    if isinstance(source, RESTSource) and (source.keys_path or source.deleted_path):
        if runner.partition:
            raise ETLConfigError(
                "deletes= on a REST source lists keys for the whole source: run it without "
                "partitions",
                where=where,
            )
        return "key_listing" if source.keys_path else "deleted_records"
    raise ETLConfigError(
        f"deletes= is not supported for {type(source).__name__}",
        where=where,
        hint="delete reconciliation works for SQLSource, OneCODataSource and RESTSource "
        "with keys_path= or deleted_path=",
    )


class Reconciliation:
    """The reconciliation of one run of one partition (built before the incremental pass,
    which it prepares)."""

    def __init__(self, runner: PartitionRunner):
        self.runner = runner
        self.pipeline = pipeline = runner.pipeline
        self.where = {"pipeline": pipeline.name, "partition": runner.pkey or "all"}
        if pipeline.deletes is None:
            raise ETLConfigError(
                "a reconciliation needs deletes='soft' or 'hard'", where=self.where
            )
        self.mode: str = pipeline.deletes
        self.target = _target(pipeline, self.where)
        self.kind = _strategy(runner, self.mode, self.where)

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
            counts = self._compare(self._guard(policy, warned))
        except ETLError:
            raise
        except Exception as exc:
            # from None: a driver's message may quote a value (its parameters, never)
            err = ETLError(
                f"delete reconciliation ({self.kind}) failed: {safe_pg_message(exc)}",
                where=self.where,
                hint="what is committed stays committed; the next run resumes the reconciliation",
            )
            err.transient = is_transient(exc)
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

    def _guard(self, policy: Policy, warned: list[str]) -> Callable[[int, int], None]:
        """What stops a reconciliation that would delete more than ``MAX_DELETE_SHARE`` of
        the target's live rows (a ``fail`` policy), or warns about it."""

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
                    where=self.where,
                    hint="check the source (an empty or unreadable table?); if the deletes are "
                    'real, run once with checks={"deletes": "warn"}',
                )
            self.runner.log.warning("{}", what)
            warned.append(what)

        return guard

    def _compare(self, guard: Callable[[int, int], None]) -> dict[str, Any]:
        from .keysets import KeySetReconciler
        from .listings import listing_for
        from .ranges import RangeReconciler
        from .target import TargetChecksums

        runner, pipeline = self.runner, self.pipeline
        source = pipeline.source
        key = getattr(source, "row_hash_key", None)
        target = TargetChecksums(
            self.target,
            list(source.primary_key),
            source.name,
            history=bool(getattr(pipeline.sink, "history", False)),
            partition=runner.partition,
        )
        with runner.store.transaction() as conn:
            if not target.exists(conn):
                return dict(NOTHING)
        if self.kind == "range_checksums":
            from ..sources.sql import SQLSource
            from ..sources.sql.checksums import SQLChecksums

            # chosen for a SQL source that hashes its rows (_strategy)
            assert isinstance(source, SQLSource) and source.row_hash_key is not None
            checksums = SQLChecksums(source, source.row_hash_key, runner.partition)
            return RangeReconciler(runner, checksums, target, self.mode, guard).run()
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


__all__ = ["Reconciliation"]
