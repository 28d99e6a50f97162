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
import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pyarrow as pa

from ..anonymizers.base import Anonymizer
from ..anonymizers.guard import check_step_columns
from ..anonymizers.records import anonymize_record
from ..errors import AnonymizationError, ETLError, RunLockedError, SourceError, safe_pg_message
from ..format import Batch, Rejected, add_lineage, to_records
from ..prefetch import read_ahead
from ..quality import QualityTracker, empty_counts
from ..result import RunResult
from ..retry import diagnose, is_transient
from ..sources.base import Partition
from ..store.state import CheckpointStore, now
from ..transformers.base import Transformer
from .quarantine import drop_rows
from .spec import PipelineSpec
from .unit import BatchWork, commit_batch

_T = TypeVar("_T")

# At exit the interpreter's last garbage collections traverse every object the imports made
# (pyarrow, SQLAlchemy, psycopg, and pandas, which pyarrow imports on first use): 0.1-0.5 s of
# CPU at the end of every script, for garbage the ending process need not free. Frozen
# objects are left out of those collections; until exit, collection works as usual.
atexit.register(gc.freeze)


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
        log: Any,
        bar: Any = None,
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
        self.bar = bar

    def run(self) -> None:
        """Read and commit every batch, retrying transient failures from the last checkpoint."""
        policy = self.pipeline.retry
        failures = 0
        first = True
        failed_at: Any = object()  # the committed position at the last failure
        while True:
            position = None
            try:
                position = self.store.checkpoint(self.pipeline.name, self.pkey)
                if first:
                    self.result.full_load = position is None
                    first = False
                self._stream(position)
                self._finish_load()
                return
            except Exception as exc:
                try:
                    reached = self.store.checkpoint(self.pipeline.name, self.pkey)
                except Exception:  # the state database itself may be what is down
                    reached = position
                if reached != failed_at and failures:
                    # the checkpoint moved since the last failure: a new outage, a fresh budget
                    # (a source that replays the same batch forever makes no progress and gives up)
                    failures = 0
                failed_at = reached
                if not is_transient(exc) or failures >= policy.attempts:
                    if failures and is_transient(exc):
                        self.log.error("giving up after {} retries", failures)
                    raise
                failures += 1
                self.result.retries += 1
                self.pipeline.sink.rollback()
                wait = policy.delay(failures)
                self.log.warning(
                    "transient error ({}), retry {}/{} in {:.1f} s from the last checkpoint",
                    type(exc).__name__,
                    failures,
                    policy.attempts,
                    wait,
                )
                time.sleep(wait)

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
        reconciliation read it."""
        finish = getattr(self.pipeline.sink, "finish_load", None)
        if finish is not None:
            with self.store.transaction() as conn:
                finish(conn, self.primary_key)

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
            err.transient = is_transient(exc)  # type: ignore[attr-defined]
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
        if isinstance(raw.data, list):
            self.schema = _merge_schema(self.schema, batch.schema)
        source_rejected = _rejected(raw)
        n_in = raw.num_rows + len(source_rejected)
        converted = batch.num_rows
        batch, refused = self._transform(batch, where)
        filtered = max(converted - batch.num_rows - len(refused), 0)
        convert_q = [(self._anonymized(r.record), r.reason, raw.position) for r in rejected]
        convert_q += [(self._anonymized(record), why, raw.position) for record, why in refused]
        source_q = [(self._anonymized(r.record), r.reason, raw.position) for r in source_rejected]
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
        )

    def _anonymized(self, record: dict[str, Any]) -> dict[str, Any]:
        return anonymize_record(record, self.pipeline.anonymizers, self.pipeline.pii)

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
        with store.transaction() as conn:
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
        self, batch: pa.RecordBatch, where: dict[str, Any]
    ) -> tuple[pa.RecordBatch, list[tuple[dict[str, Any], str]]]:
        """Transformers then anonymizers; also the records a transformer refused (raw, as
        they entered that step, with the reason), for quarantine."""
        steps: list[Transformer | Anonymizer] = [
            *self.pipeline.transformers,
            *self.pipeline.anonymizers,
        ]
        refused: list[tuple[dict[str, Any], str]] = []
        for step in steps:
            if not isinstance(step, Transformer):
                check_step_columns(step, batch.schema.names, where)
            try:
                if isinstance(step, Transformer):
                    before = batch
                    batch, bad = step.transform_rows(batch)
                    if bad:
                        rows = before.take(pa.array([i for i, _ in bad], type=pa.int64()))
                        refused += zip(to_records(rows), [why for _, why in bad], strict=True)
                else:
                    batch = step.anonymize(batch)
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


def _merge_schema(known: pa.Schema | None, new: pa.Schema) -> pa.Schema:
    if known is None:
        return new
    names = set(known.names)
    return pa.schema([*known, *(f for f in new if f.name not in names)])


__all__ = ["PartitionRunner"]
