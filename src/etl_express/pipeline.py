"""``Pipeline``: wires a source, transformers, anonymizers and a sink, and owns runs,
checkpoints, partitions, quarantine and quality checks."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from loguru import logger

from .anonymizers.base import Anonymizer
from .errors import AnonymizationError, ETLConfigError, ETLError, QualityError, SinkError, SourceError
from .format import Batch, Rejected, add_lineage, normalize_name, records_to_batch, to_json_text, to_records
from .prefetch import read_ahead
from .quality import CheckResult, reconciliation
from .result import RunResult
from .sinks.base import Sink
from .sources.base import Partition, Source
from .store.database import resolve_url
from .store.state import CheckpointStore, now, partition_key
from .transformers.base import Transformer

DEFAULT_MAX_ERROR_RATE = 0.0001


class Pipeline:
    """Moves data from a source through transformers and anonymizers into a sink.

    Each batch's rows and its checkpoint commit in one PostgreSQL transaction, so a run
    killed at any point and started again ends with exactly the rows of an uninterrupted
    run. Example::

        pipeline = etl.Pipeline(
            name="crm_customers",
            source=SQLSource(url=etl.secret("CRM_DB_URL"), table="customers",
                             primary_key="id", cursor="updated_at"),
            anonymizers=[Pseudonymize(["email"], key=etl.secret("ANON_KEY"))],
            sink=PostgresSink(table="crm.customers"),
        )
        result = pipeline.run()

    Args:
        name: unique pipeline name; checkpoints and runs are keyed by it.
        source: where rows come from.
        transformers: applied in order to each batch.
        anonymizers: applied in order after the transformers, before anything is written.
        sink: where rows go (default ``PostgresSink(table=name)``).
        pii: extra columns tagged as personal data (besides ``source.pii``); the run refuses
            to start unless an anonymizer covers each of them.
        max_error_rate: the largest share of quarantined rows a run may have and succeed.
        progress: show a progress bar (``None``: only when output is a terminal).
    """

    def __init__(
        self,
        name: str,
        source: Source,
        *,
        transformers: Sequence[Transformer] = (),
        anonymizers: Sequence[Anonymizer] = (),
        sink: Sink | None = None,
        pii: Sequence[str] = (),
        max_error_rate: float = DEFAULT_MAX_ERROR_RATE,
        progress: bool | None = None,
    ):
        if not name or not isinstance(name, str):
            raise ETLConfigError("Pipeline needs a non-empty name", hint='Pipeline(name="crm_customers", ...)')
        if not isinstance(source, Source):
            raise ETLConfigError(f"source must be a Source, got {type(source).__name__}", where={"pipeline": name})
        if not 0 <= max_error_rate <= 1:
            raise ETLConfigError(f"max_error_rate must be between 0 and 1, got {max_error_rate}", where={"pipeline": name})
        if sink is None:
            from .sinks.postgres import PostgresSink

            sink = PostgresSink(table=normalize_name(name))
        self.name = name
        self.source = source
        self.transformers = list(transformers)
        self.anonymizers = list(anonymizers)
        self.sink = sink
        self.pii = sorted({normalize_name(c) for c in (*source.pii, *pii)})
        self.max_error_rate = max_error_rate
        self.progress = progress
        self._store: CheckpointStore | None = None

    def __repr__(self) -> str:
        return f"Pipeline(name={self.name!r}, source={self.source!r}, sink={self.sink!r})"

    # -- state -------------------------------------------------------------------------

    @property
    def store(self) -> CheckpointStore:
        """The checkpoint store in the sink's PostgreSQL database."""
        if self._store is None:
            self._store = CheckpointStore(resolve_url(self.sink.state_url))  # type: ignore[arg-type]
            self._store.ensure_schema()
        return self._store

    def reset(self, partition: Partition | None = None) -> None:
        """Forget the checkpoints: the next run starts from the beginning."""
        self.store.reset(self.name, None if partition is None else partition_key(partition))

    def partitions(self, n: int | None = None) -> list[Partition]:
        """JSON-serializable partition specs of the source."""
        return self.source.partitions(n)

    def check_pii_coverage(self) -> None:
        """Refuse to run when a column tagged as personal data has no anonymizer."""
        covered: set[str] = set()
        for a in self.anonymizers:
            covered |= {normalize_name(c) for c in a.covers()}
        missing = [c for c in self.pii if c not in covered]
        if missing:
            raise AnonymizationError(
                f"personal-data column(s) {missing} would reach the sink without an anonymizer",
                where={"pipeline": self.name},
                hint="add an anonymizer covering them, e.g. Pseudonymize(" + repr(missing) + ", key=etl.secret('ANON_KEY'))",
            )

    # -- running -----------------------------------------------------------------------

    def run(self, partition: Partition | None = None, *, reset: bool = False) -> RunResult:
        """Run one partition (``None``: the whole source) from its last checkpoint.

        Raises an :class:`~etl_express.errors.ETLError` (with the :class:`RunResult` as
        ``.result``) when the run fails; everything committed before the failure stays
        committed and the next run resumes from there.
        """
        self.check_pii_coverage()
        store = self.store
        pkey = partition_key(partition)
        if reset:
            store.reset(self.name, pkey)
        run_id = str(uuid.uuid4())
        log = logger.bind(pipeline=self.name, run_id=run_id, partition=pkey or "all")
        result = RunResult(run_id=run_id, pipeline=self.name, status="running", partition=partition,
                           started_at=now())
        store.start_run(run_id, self.name, pkey)
        log.info("run started")
        try:
            self._run_batches(store, partition, pkey, result, log)
            result.checks.extend(self._checks(result))
            store.add_checks(run_id, self.name, pkey, result.checks)
            failed = [c for c in result.checks if not c.ok]
            if failed:
                raise QualityError(
                    "quality check(s) failed: " + ", ".join(f"{c.name} {c.details}" for c in failed),
                    where={"pipeline": self.name, "partition": pkey or "all", "run": run_id},
                    hint="inspect etl_express.quality_checks and etl_express.quarantine for this run",
                )
        except BaseException as exc:
            result.status = "failed"
            result.finished_at = now()
            result.error = str(exc) if isinstance(exc, ETLError) else f"{type(exc).__name__}"
            try:
                store.finish_run(run_id, "failed", result.error)
            except Exception:  # the database itself may be what failed
                log.exception("could not record the failed run")
            log.error("run failed: {}", result.error)
            if isinstance(exc, ETLError):
                exc.result = result  # type: ignore[attr-defined]
            raise
        result.status = "succeeded"
        result.finished_at = now()
        store.finish_run(run_id, "succeeded")
        log.info("run succeeded: {} read, {} written, {} quarantined in {:.1f} s",
                 result.rows_read, result.rows_written, result.rows_quarantined, result.seconds)
        return result

    def _progress(self, pkey: str) -> Any:
        from tqdm.auto import tqdm

        disable = None if self.progress is None else not self.progress
        return tqdm(desc=f"{self.name} [{pkey or 'all'}]", unit=" rows", unit_scale=True, disable=disable)

    def _run_batches(self, store: CheckpointStore, partition: Partition | None, pkey: str,
                     result: RunResult, log: Any) -> None:
        position = store.checkpoint(self.name, pkey)
        schema: pa.Schema | None = self.source.schema()
        loaded_at = result.started_at or now()
        primary_key = list(self.source.primary_key)
        bar = self._progress(pkey)
        batches = None
        try:
            batches = read_ahead(self.source, self.source.read(position, partition))
            index = 0
            while True:
                where = {"pipeline": self.name, "partition": pkey or "all", "batch": index,
                         "after position": position}
                try:
                    raw = next(batches)
                except StopIteration:
                    break
                except ETLError:
                    raise
                except Exception as exc:
                    raise SourceError(f"reading {self.source.name} failed: {type(exc).__name__}",
                                      where=where, hint="the next run resumes from the last committed batch") from exc
                if not isinstance(raw, Batch):
                    raise SourceError(f"{type(self.source).__name__}.read yielded {type(raw).__name__}, not Batch",
                                      where=where, hint="yield etl_express.Batch(records, position=...)")
                batch, rejected = raw.to_arrow(schema)
                if isinstance(raw.data, list):
                    schema = _merge_schema(schema, batch.schema)
                n_in = raw.num_rows
                batch = self._transform(batch, where)
                filtered = n_in - len(rejected) - batch.num_rows
                quarantined = [(self.anonymize_record(r.record), r.reason, raw.position) for r in rejected]
                batch = add_lineage(batch, result.run_id, self.source.name, loaded_at)
                with store.transaction() as conn:
                    try:
                        written = self.sink.write(conn, batch, primary_key) if batch.num_rows else 0
                    except ETLError as exc:
                        exc.where.update({k: v for k, v in where.items() if k not in exc.where})
                        raise type(exc)(exc.what, where=exc.where, hint=exc.hint) from None
                    store.add_quarantine(conn, result.run_id, self.name, pkey, quarantined)
                    if raw.position is not None:
                        store.save_checkpoint(conn, self.name, pkey, raw.position, result.run_id)
                    store.record_batch(conn, result.run_id, n_in, written, len(quarantined))
                position = raw.position
                result.rows_read += n_in
                result.rows_written += written
                result.rows_quarantined += len(quarantined)
                result.rows_filtered += max(filtered, 0)
                result.batches += 1
                index += 1
                bar.update(n_in)
                log.debug("batch {} committed: {} rows", index, n_in)
        finally:
            if batches is not None:
                batches.close()
            bar.close()

    def _transform(self, batch: pa.RecordBatch, where: dict[str, Any]) -> pa.RecordBatch:
        for step in (*self.transformers, *self.anonymizers):
            try:
                batch = step.transform(batch) if isinstance(step, Transformer) else step.anonymize(batch)
            except ETLError:
                raise
            except Exception as exc:
                kind = AnonymizationError if isinstance(step, Anonymizer) else ETLError
                raise kind(f"{type(step).__name__} failed: {type(exc).__name__}", where=where,
                           hint="check the step's configuration against the batch's columns and types") from None
        return batch

    def anonymize_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """Anonymize one raw record (a quarantined one) before it is stored.

        The record's values are taken as text; each anonymizer is applied, and where one
        cannot handle the raw value its columns are removed entirely. Columns tagged as
        personal data that are still present are removed as well.
        """
        row = {normalize_name(k): (v if v is None or isinstance(v, str) else to_json_text(v)) for k, v in record.items()}
        batch, _ = records_to_batch([row], pa.schema([pa.field(k, pa.string()) for k in row]))
        for a in self.anonymizers:
            try:
                batch = a.anonymize(batch)
            except Exception:
                for col in a.covers():
                    i = batch.schema.get_field_index(normalize_name(col))
                    if i >= 0:
                        batch = batch.remove_column(i)
        for col in self.pii:
            i = batch.schema.get_field_index(col)
            covered = any(normalize_name(c) == col for a in self.anonymizers for c in a.covers())
            if i >= 0 and not covered:
                batch = batch.remove_column(i)
        records = to_records(batch)
        return records[0] if records else {}

    def _checks(self, result: RunResult) -> list[CheckResult]:
        checks = [reconciliation(result.rows_read, result.rows_written, result.rows_quarantined, result.rows_filtered)]
        rate = result.error_rate
        from .quality import judge

        checks.append(judge("error_rate", rate <= self.max_error_rate, "fail",
                            rows_quarantined=result.rows_quarantined, rows_read=result.rows_read,
                            error_rate=rate, max_error_rate=self.max_error_rate))
        return checks


def _merge_schema(known: pa.Schema | None, new: pa.Schema) -> pa.Schema:
    if known is None:
        return new
    fields = list(known)
    names = set(known.names)
    fields += [f for f in new if f.name not in names]
    return pa.schema(fields)


__all__ = ["DEFAULT_MAX_ERROR_RATE", "Pipeline"]
