"""The batch loop of one run of one partition.

For each batch from the source: convert to the common format, transform, anonymize, then in
ONE transaction write the rows (bad ones isolated into quarantine), the quarantined records,
the checkpoint and the run's counters. A transient error (dropped connection, PostgreSQL
restart, serialization failure, HTTP 5xx) rolls the batch back, waits (exponential backoff)
and reopens the source from the last committed checkpoint. The run ledger's heartbeat
keeps the run's lease fresh however long a batch takes (store/ledger.py).
"""

from __future__ import annotations

import atexit
import dataclasses
import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import pyarrow as pa

from .._copybytes import SOURCE_ROWS, SourceRows, offer
from .._privacy import PrivacyPlan
from ..anonymizers.base import Anonymizer
from ..anonymizers.detection import PIIWatch
from ..anonymizers.guard import ColumnNameWatch, check_plan, check_step_columns, plan_for
from ..anonymizers.guard_fields import NewFields
from ..errors import (
    AnonymizationError,
    ETLConfigError,
    ETLError,
    RunLockedError,
    SourceError,
    safe_pg_message,
)
from ..format import Batch, Rejected, add_lineage, to_records
from ..format_types import keep_declared_types
from ..prefetch import read_ahead
from ..quality import QualityTracker, empty_counts
from ..result import RunResult
from ..retry import LineLogger, diagnose, is_transient
from ..sources.base import Partition
from ..store.checkpoints import CheckpointStore
from ..store.schema import now
from ..transformers.base import Transformer
from .quarantine import drop_rows, is_row_error
from .spec import PipelineSpec
from .unit import BatchWork, commit_batch

_T = TypeVar("_T")

# At exit the interpreter's last garbage collections traverse every object the imports made
# (pyarrow, SQLAlchemy, psycopg, and pandas, which pyarrow imports on first use): 0.1-0.5 s of
# CPU at the end of every script, for garbage the ending process need not free. Frozen
# objects are left out of those collections; until exit, collection works as usual.
atexit.register(gc.freeze)


class ProgressBar(Protocol):
    """A progress bar counting rows (a ``tqdm`` bar)."""

    def update(self, n: int) -> object: ...


@contextmanager
def _closing(batches: Iterator[_T]) -> Iterator[Iterator[_T]]:
    """Close the source's generator (its connection) however the loop ends."""
    try:
        yield batches
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # a dead connection may fail to close; it is dropped anyway
                pass


def _rejected(raw: Batch) -> list[Rejected]:
    """Records the source itself rejected (an optional ``rejected`` list on the batch)."""
    items = getattr(raw, "rejected", None) or raw.meta.get("rejected") or []
    return [
        r if isinstance(r, Rejected) else Rejected(-1, dict(r["record"]), str(r["reason"]))
        for r in items
    ]


class PartitionRunner:
    """Runs the batches of one partition until the source is exhausted."""

    def __init__(
        self,
        pipeline: PipelineSpec,
        store: CheckpointStore,
        partition: Partition | None,
        pkey: str,
        result: RunResult,
        tracker: QualityTracker,
        log: LineLogger,
        bar: ProgressBar | None = None,
    ):
        self.pipeline = pipeline
        self.store = store
        self.partition = partition
        self.pkey = pkey
        self.result = result
        self.tracker = tracker
        self.log = log
        self.schema: pa.Schema | None = pipeline.source.schema()
        self.column_origins: dict[str, str] = {}  # normalized name -> the source's spelling
        self.primary_key = list(pipeline.source.primary_key)
        self.lease_lost: threading.Event | None = None
        # the checkpoint as the run's start read it, in the transaction that took the
        # lease: the first attempt starts there without reading it again
        self.known_position: tuple[Any] | None = None
        # the partition's latest run did not succeed: a run that writes nothing lets the
        # sink complete what it may have left (a killed first load's key and lineage)
        self.after_unfinished = False
        self.bar = bar
        self.plan: PrivacyPlan | None = None  # the privacy plan of the columns as read
        self.pii_watch = PIIWatch(pipeline, log)  # untagged personal data, before its first write
        self.new_fields = NewFields(pipeline, log)  # fields appearing mid-run, value by value
        self.column_names = ColumnNameWatch(pipeline, log)  # a header that is a record

    def run(self) -> None:
        """Read and commit every batch; a transient failure is retried from the last
        checkpoint, with a fresh budget of retries once the checkpoint moved (a source that
        replays the same batch forever makes no progress and gives up)."""
        name, pkey = self.pipeline.name, self.pkey
        started: list[Any] = []  # the position each attempt started from

        def attempt() -> None:
            if not started and self.known_position is not None:
                position = self.known_position[0]
            else:  # a retry: from what the failed attempt left committed
                position = self.store.checkpoint(name, pkey)
            if not started:
                self.result.full_load = position is None
            started.append(position)
            self._stream(position)
            self._finish_load()

        def committed() -> Any:
            try:
                return self.store.checkpoint(name, pkey)
            except Exception:  # the state database itself may be what is down
                return started[-1] if started else None

        def rolled_back() -> None:
            self.result.retries += 1
            self.pipeline.sink.rollback()

        self.pipeline.retry.call(
            attempt,
            what="loading batches (it resumes from the last checkpoint)",
            log=self.log,
            on_retry=rolled_back,
            progress=committed,
        )

    def _stream(self, position: Any) -> None:
        """Commit batches from ``position`` until the source is exhausted.

        Three stages run at once, each in its own thread (prefetch.py): the source reads
        batch *n + 2*, batch *n + 1* is converted, transformed and anonymized, and batch *n*
        is loaded and committed here. Reading (ADBC decoding), the anonymizers' kernels and
        PostgreSQL's COPY all release the GIL, so they overlap. Only committing touches the
        state database, so exactly-once is unchanged.
        """
        source = self.pipeline.source
        with _closing(read_ahead(source, self._prepared(position))) as prepared:
            for item in prepared:
                if self.lease_lost is not None and self.lease_lost.is_set():
                    raise RunLockedError(
                        "run lost its lease: another process took the partition over",
                        where=item.where,
                        hint="do not run the same partition from two places",
                    )
                self._commit(item)

    def _finish_load(self) -> None:
        """After the last batch: a sink that loaded in bulk completes its target (PostgresSink
        builds the primary key index of a table it created), before the checks and the
        reconciliation read it. A first load that read no row still creates the target from
        the columns the source declares (:meth:`_create_empty_target`)."""
        if self.result.full_load and not self.result.batches:
            self._create_empty_target()
        finish = getattr(self.pipeline.sink, "finish_load", None)
        if finish is not None:
            with self.store.transaction() as conn:
                finish(conn, self.primary_key)
        complete = getattr(self.pipeline.sink, "complete_unfinished", None)
        if complete is not None and self.after_unfinished and not self.result.batches:
            with self.store.transaction() as conn:
                complete(conn, self.primary_key)

    def _create_empty_target(self) -> None:
        """An empty table at the source is an empty table in the target, not a missing one
        (``SELECT count(*)`` answers 0 on both): a source that can say its columns without
        rows (``empty_batch(partition)``, e.g. a SQL table) has them converted, transformed
        and anonymized as any batch, and the sink creates its target from them."""
        columns = getattr(self.pipeline.source, "empty_batch", None)
        raw = columns(self.partition) if columns is not None else None
        if raw is None or raw.num_columns == 0:
            return
        where = {"pipeline": self.pipeline.name, "partition": self.pkey or "all", "batch": 0}
        item = self._prepare(Batch(raw, position=None), where)
        self._migrate(
            BatchWork(
                run_id=self.result.run_id,
                pipeline=self.pipeline.name,
                partition=self.pkey,
                rows=item.with_lineage,
                primary_key=self.primary_key,
                rows_in=0,
                where=where,
            )
        )

    def _prepared(self, position: Any) -> Iterator[_Prepared]:
        """The source's batches, each converted, transformed and anonymized."""
        index = self.result.batches
        source = self.pipeline.source
        with _closing(read_ahead(source, source.read(position, self.partition))) as batches:
            while True:
                where = {
                    "pipeline": self.pipeline.name,
                    "partition": self.pkey or "all",
                    "batch": index,
                    "after position": position,
                }
                raw = self._next(batches, where)
                if raw is None:
                    return
                yield self._prepare(raw, where)
                position = raw.position
                index += 1

    def _next(self, batches: Iterator[Batch], where: dict[str, Any]) -> Batch | None:
        try:
            raw = next(batches)
        except StopIteration:
            return None
        except ETLError:
            raise
        except Exception as exc:
            # from None: a driver's message may quote a raw value; the retry logic reads
            # the original through ``transient`` below
            found = diagnose(exc)  # a configuration error: its fix, and no retry
            err = SourceError(
                f"reading {self.pipeline.source.name} failed: "
                + (f"{found.what}: " if found else "")
                + safe_pg_message(exc),
                where=where,
                hint=found.hint if found else "the next run resumes from the last committed batch",
            )
            err.transient = is_transient(exc)
            raise err from None
        if not isinstance(raw, Batch):
            raise SourceError(
                f"{type(self.pipeline.source).__name__}.read yielded {type(raw).__name__}, not Batch",
                where=where,
                hint="yield etl_express.Batch(records, position=...)",
            )
        return raw

    def _prepare(self, raw: Batch, where: dict[str, Any]) -> _Prepared:
        """Everything before the transaction: convert, transform, anonymize, lineage."""
        pipeline, result = self.pipeline, self.result
        batch, rejected = raw.to_arrow(
            self.schema, origins=self.column_origins, source=pipeline.source.name
        )
        # names as the source spells them (a header that is a record), before any is named
        data = raw.data
        spelled = list(self.column_origins.values()) if isinstance(data, list) else []
        if not isinstance(data, list):
            spelled = list(data.schema.names)
        self.column_names.check(spelled or batch.schema.names, where)
        if isinstance(raw.data, list):
            self.schema = _merge_schema(self.schema, batch.schema)
        source_rejected = _rejected(raw)
        n_in = raw.num_rows + len(source_rejected)
        converted = batch.num_rows
        if self.plan is None or batch.schema.names != self.plan.source_columns:
            self.plan = self._planned(batch.schema, None, where)
        read = batch
        observed: list[pa.Schema] = []
        batch, refused = self._transform(batch, where, observed)
        if not self.plan.flow.complete:  # a step that says nothing and cannot run on no rows
            self.plan = self._planned(self.plan.flow.stages[0], observed, where)
        self._check_position(raw.position, read, where)
        # untagged personal data in what would be written, before its first write
        self.pii_watch.check(batch, where, skip=self.plan.skip_detection())
        self.new_fields.check(batch, where, skip=self.plan.skip_detection())  # one value each
        filtered = max(converted - batch.num_rows - len(refused), 0)
        plan = self.plan
        convert_q = [(plan.protect_record(r.record, 0), r.reason, raw.position) for r in rejected]
        convert_q += [
            (plan.protect_record(record, stage), why, raw.position)
            for record, why, stage in refused
        ]
        source_q = [
            (plan.protect_record(r.record, 0), r.reason, raw.position) for r in source_rejected
        ]
        with_lineage = add_lineage(
            batch, result.run_id, pipeline.source.name, result.started_at or now()
        )
        return _Prepared(
            raw.position,
            where,
            n_in,
            filtered,
            batch,
            with_lineage,
            convert_q,
            source_q,
            empty_counts(batch),
            _unchanged(raw.meta.pop(SOURCE_ROWS, None), batch),
        )

    def load_batch(self, raw: Batch, step: str) -> None:
        """Convert, transform, anonymize and commit one batch read outside the source's
        stream (``step`` says why: a delete reconciliation's re-read) in the same unit of
        work as the batch loop's, without moving the checkpoint."""
        where = {
            "pipeline": self.pipeline.name,
            "partition": self.pkey or "all",
            "batch": self.result.batches,
            "step": step,
        }
        self._commit(dataclasses.replace(self._prepare(raw, where), position=None))

    def _planned(
        self, columns: Any, observed: list[pa.Schema] | None, where: dict[str, Any]
    ) -> PrivacyPlan:
        """The privacy plan of the batch's columns, checked before anything of it is written:
        on the first batch, and again for a column that appears (or disappears) mid-run."""
        schema = columns if isinstance(columns, pa.Schema) else _schema_of(columns)
        before = self.plan
        plan = plan_for(self.pipeline, schema, observed, run_steps=False)
        check_plan(self.pipeline, plan, where)
        if before is not None:
            added = [c for c in plan.source_columns if c not in before.source_columns]
            if added:
                self.log.info("new column(s) {} planned before their first write", added)
        elif plan.declared_safe:
            for name, reason in plan.declared_safe.items():
                self.log.info("column {!r} declared not personal data (not_pii): {}", name, reason)
        return plan

    def _check_position(self, position: Any, batch: pa.RecordBatch, where: dict[str, Any]) -> None:
        """A position holding a personal value of its batch is never committed."""
        leak = self.plan.position_leak(position, batch) if self.plan is not None else None
        if leak is None:
            return
        raise ETLConfigError(
            f"{self.pipeline.source.name}'s position after this batch holds {leak}"
            ": it would be written to checkpoints, run records and logs; nothing was written",
            where={k: v for k, v in where.items() if k != "after position"},
            hint="read by a non-personal surrogate key (a sequence, UUID or row-version column; "
            "for a REST API an offset or page paginator, or a cursor on such a field; for "
            "files, names that do not name a person: a file's name is part of its position)",
        )

    def _commit(self, item: _Prepared) -> None:
        """One transaction: rows, quarantine, counters and the checkpoint (unit.py)."""
        pipeline, store, result = self.pipeline, self.store, self.result
        n_in, filtered, batch = item.n_in, item.filtered, item.batch
        work = BatchWork(
            run_id=result.run_id,
            pipeline=pipeline.name,
            partition=self.pkey,
            rows=item.with_lineage,
            primary_key=self.primary_key,
            rows_in=n_in,
            position=item.position,
            quarantine={"convert": item.convert_q, "source": item.source_q},
            where=item.where,
        )
        if work.rows.num_rows:
            self._migrate(work)
        try:
            # without savepoints where the sink allows it (a table it created in this run)
            with store.transaction() as conn, offer(item.source_rows):
                done = commit_batch(conn, store, pipeline.sink, work, guarded=False)
        except Exception as exc:
            if not is_row_error(exc):
                raise
            # a row refused with no savepoint to undo it: the batch is rolled back whole,
            # and done again with each write under a savepoint (refused rows isolated)
            pipeline.sink.rollback()
            if work.rows.num_rows:
                self._migrate(work)
            with store.transaction() as conn, offer(item.source_rows):
                done = commit_batch(conn, store, pipeline.sink, work)
        outcome, quarantined, where = done.outcome, done.quarantined, item.where
        if result.first_commit_at is None:
            result.first_commit_at = now()
        landed = drop_rows(batch, [i for i, _ in outcome.refused])
        self.tracker.observe(
            landed,
            rows_in=n_in,
            written=outcome.written,
            quarantined=quarantined,
            filtered=filtered,
            empties=None if outcome.refused else item.empties,
        )
        result.rows_read += n_in
        result.rows_written += outcome.written
        result.rows_quarantined += quarantined
        result.rows_filtered += filtered
        result.batches += 1
        self.log.debug(
            "batch {} committed: {} rows, {} quarantined", where["batch"], n_in, quarantined
        )
        if self.bar is not None:
            self.bar.update(n_in)

    def _migrate(self, work: BatchWork) -> None:
        """Create or alter the target in a short transaction of its own, before the batch's.

        A schema change takes an exclusive lock on the target that blocks its readers until
        the transaction ends: committed alone it is held for milliseconds, not for the whole
        batch load. The sink bounds its wait for readers' locks (``ddl_lock_timeout``); a
        timeout is retried here with the run's backoff. A column added for a batch that then
        rolls back stays, empty (the next attempt needs it anyway).
        """
        sink, store = self.pipeline.sink, self.store

        def prepare() -> None:
            try:
                with store.transaction() as conn:
                    sink.prepare(conn, work.rows.schema, work.primary_key)
            except ETLError as exc:
                sink.rollback()
                exc.where.update({k: v for k, v in work.where.items() if k not in exc.where})
                raise type(exc)(exc.what, where=exc.where, hint=exc.hint) from exc
            except BaseException:
                sink.rollback()
                raise

        def count() -> None:
            self.result.retries += 1

        self.pipeline.retry.call(
            prepare, what="changing the target's schema", log=self.log, on_retry=count
        )

    def _transform(
        self, batch: pa.RecordBatch, where: dict[str, Any], observed: list[pa.Schema]
    ) -> tuple[pa.RecordBatch, list[tuple[dict[str, Any], str, int]]]:
        """Transformers then anonymizers; also the records a transformer refused (raw, as
        they entered that step, with the reason and the step's index: the plan's stage of
        their columns), for quarantine. ``observed`` gets each transformer's output schema."""
        steps: list[Transformer | Anonymizer] = [
            *self.pipeline.transformers,
            *self.pipeline.anonymizers,
        ]
        refused: list[tuple[dict[str, Any], str, int]] = []
        for index, step in enumerate(steps):
            if not isinstance(step, Transformer):
                check_step_columns(step, batch.schema.names, where)
            try:
                before = batch
                if isinstance(step, Transformer):
                    batch, bad = step.transform_rows(batch)
                    observed.append(batch.schema)
                    if bad:
                        rows = before.take(pa.array([i for i, _ in bad], type=pa.int64()))
                        refused += [
                            (record, why, index)
                            for record, (_, why) in zip(to_records(rows), bad, strict=True)
                        ]
                    batch = keep_declared_types(before.schema, batch)
                else:
                    batch = step.anonymize(batch)
                    # an anonymized column takes the type its anonymizer produces
                    batch = keep_declared_types(before.schema, batch, step.covers())
            except ETLError:
                raise
            except Exception as exc:
                kind = ETLError if isinstance(step, Transformer) else AnonymizationError
                raise kind(
                    f"{type(step).__name__} failed: {type(exc).__name__}",
                    where=where,
                    hint="check the step's configuration against the batch's columns and types",
                ) from None
        return batch, refused


@dataclass
class _Prepared:
    """A batch ready to commit (built in the read-ahead thread)."""

    position: Any
    where: dict[str, Any]
    n_in: int
    filtered: int
    batch: pa.RecordBatch
    with_lineage: pa.RecordBatch
    convert_q: list[tuple[dict[str, Any], str, Any]]
    source_q: list[tuple[dict[str, Any], str, Any]]
    empties: dict[str, int]  # quality.empty_counts of batch, counted before the load
    # the source's own binary COPY of the rows, offered to the sink (etl_express._copybytes)
    source_rows: SourceRows | None = None


def _unchanged(rows: SourceRows | None, batch: pa.RecordBatch) -> SourceRows | None:
    """The source's bytes of a batch whose columns are still the ones decoded from them;
    ``None`` once a step changed one (the bytes are not kept while the batch waits)."""
    return rows if rows is not None and rows.describes(batch) else None


def _schema_of(stage: dict[str, Any]) -> pa.Schema:
    return pa.schema([pa.field(n.name, n.type) for n in stage.values()])


def _merge_schema(known: pa.Schema | None, new: pa.Schema) -> pa.Schema:
    if known is None:
        return new
    names = set(known.names)
    return pa.schema([*known, *(f for f in new if f.name not in names)])


__all__ = ["PartitionRunner", "ProgressBar"]
