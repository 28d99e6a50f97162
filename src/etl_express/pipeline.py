"""``Pipeline``: wires a source, transformers, anonymizers and a sink, and owns runs,
checkpoints, partitions, quarantine and quality checks."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from loguru import logger

from . import _speedups
from ._status import declare, observe_run, parse_duration
from .anonymizers.base import Anonymizer
from .errors import AnonymizationError, ETLConfigError, ETLError, QualityError
from .format import normalize_name, records_to_batch, to_json_text, to_records
from .logs import start_run_log
from .quality import (
    ROW_COUNT_HISTORY,
    CheckResult,
    QualityTracker,
    duplicate_keys_check,
    error_rate_check,
    reconciliation,
    resolve_policies,
    row_count_check,
    skipped,
    target_count_check,
)
from .reconcile import Reconciliation, check_options, deletion_mark_steps, forget_reconciliation
from .result import RunResult
from .retry import RetryPolicy
from .runner import Heartbeat, PartitionRunner
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
        max_error_rate: the largest share of quarantined rows a run may have and succeed
            (default 0.0001, one row in 10,000).
        required: columns that must never be null or empty (the ``required_columns`` check).
        checks: policy per quality check, ``"fail"``, ``"warn"`` or ``"ignore"``, e.g.
            ``{"row_count_range": "fail"}``; see :mod:`etl_express.quality` for the names.
        retry: how transient errors are retried (default: 5 times, 0.5 s doubling).
        lease_seconds: a run whose heartbeat is older than this is taken to be dead and is
            taken over by the next run (a dead owner on the same host is detected at once).
        progress: show a progress bar (``None``: only when output is a terminal).
        deletes: ``"soft"`` or ``"hard"``: after the incremental pass, reconcile the source's
            keys with the target's (read-only range checksums, see :mod:`etl_express.reconcile`)
            and mark (``_etl_deleted_at``) or delete rows gone from the source; ``None``: never.
        reconcile_every: space the reconciliations out (``"24h"``, seconds or a timedelta);
            ``None``: every run. An interrupted reconciliation always resumes on the next run.
        freshness: how old the newest successful load may be, e.g. ``"26h"`` (or a
            ``timedelta``); the basis of ``etl-express status`` and availability figures.
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
        required: Sequence[str] = (),
        checks: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        lease_seconds: float = 120.0,
        progress: bool | None = None,
        deletes: str | None = None,
        reconcile_every: str | float | dt.timedelta | None = None,
        freshness: str | dt.timedelta | None = None,
    ):
        if not name or not isinstance(name, str):
            raise ETLConfigError(
                "Pipeline needs a non-empty name", hint='Pipeline(name="crm_customers", ...)'
            )
        if not isinstance(source, Source):
            raise ETLConfigError(
                f"source must be a Source, got {type(source).__name__}", where={"pipeline": name}
            )
        if not 0 <= max_error_rate <= 1:
            raise ETLConfigError(
                f"max_error_rate must be between 0 and 1, got {max_error_rate}",
                where={"pipeline": name},
            )
        if lease_seconds <= 0:
            raise ETLConfigError(
                f"lease_seconds must be positive, got {lease_seconds}", where={"pipeline": name}
            )
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
        self.required = [normalize_name(c) for c in required]
        self.check_policies = resolve_policies(checks)
        self.retry = retry or RetryPolicy()
        self.lease_seconds = float(lease_seconds)
        self.progress = progress
        self.deletes = deletes
        self.reconcile_every = check_options(name, deletes, reconcile_every)
        if deletes is not None:
            self.transformers.extend(deletion_mark_steps(source))
        self.freshness = parse_duration(freshness, where={"pipeline": name})
        self._store: CheckpointStore | None = None

    def __getstate__(self) -> dict[str, Any]:
        # the store holds an engine (connections); worker processes open their own
        state = dict(self.__dict__)
        state["_store"] = None
        return state

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between lease refreshes: a quarter of the lease, at most 30 s."""
        return min(self.lease_seconds / 4, 30.0)

    def __repr__(self) -> str:
        return f"Pipeline(name={self.name!r}, source={self.source!r}, sink={self.sink!r})"

    # -- state -------------------------------------------------------------------------

    @property
    def store(self) -> CheckpointStore:
        """The checkpoint store in the sink's PostgreSQL database."""
        if self._store is None:
            self._store = CheckpointStore(
                resolve_url(self.sink.state_url),  # type: ignore[arg-type]
                lease_seconds=self.lease_seconds,
            )
            self._store.ensure_schema()
            declare(self._store, self)  # freshness and tagged columns, for status and the UI
        return self._store

    def reset(self, partition: Partition | None = None) -> None:
        """Forget the checkpoints: the next run starts from the beginning."""
        self.store.reset(self.name, None if partition is None else partition_key(partition))
        if self.deletes is not None:
            forget_reconciliation(
                self.store, self.name, None if partition is None else partition_key(partition)
            )

    def partitions(self, n: int | None = None) -> list[Partition]:
        """The source split into about ``n`` JSON-serializable partition specs.

        Each spec can be run with ``run(partition=spec)`` (in any process or machine, e.g.
        one Airflow mapped task each); each keeps its own checkpoint.
        """
        specs = list(self.source.partitions(n))
        try:
            json.dumps(specs)
        except TypeError as exc:
            raise ETLConfigError(
                f"{type(self.source).__name__}.partitions returned specs that are not "
                f"JSON-serializable ({exc})",
                where={"pipeline": self.name},
                hint="encode values as str/int/float/bool/None, lists and dicts",
            ) from None
        return specs

    def replay_quarantine(
        self, *, ids: Sequence[int] | None = None, run_id: str | None = None
    ) -> Any:
        """Re-submit quarantined records to the sink once their cause is fixed
        (see :func:`etl_express.quarantine.replay`)."""
        from .quarantine import replay

        self.check_pii_coverage()
        return replay(self, ids=ids, run_id=run_id)

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
                hint="add an anonymizer covering them, e.g. Pseudonymize("
                + repr(missing)
                + ", key=etl.secret('ANON_KEY'))",
            )

    # -- running -----------------------------------------------------------------------

    def run(
        self,
        partition: Partition | None = None,
        *,
        reset: bool = False,
        workers: int | None = None,
        partitions: Sequence[Partition] | None = None,
        repartition: bool = False,
    ) -> RunResult:
        """Run one partition (``None``: the whole source) from its last checkpoint.

        With ``workers=n`` (or explicit ``partitions``) the source's partitions run in ``n``
        parallel processes instead, each from its own checkpoint, and the combined result
        lists them in ``partitions``. The partition plan is stored, so a restarted parallel
        run resumes the same partitions; ``repartition=True`` computes a new plan (whose
        partitions start from the beginning).

        Raises an :class:`~etl_express.errors.ETLError` (with the :class:`RunResult` as
        ``.result``) when the run fails; everything committed before the failure stays
        committed and the next run resumes from there.
        """
        if workers is not None or partitions is not None:
            if partition is not None:
                raise ETLConfigError(
                    "pass either partition= or workers=/partitions=, not both",
                    where={"pipeline": self.name},
                )
            from .parallel import run_partitions

            return run_partitions(
                self,
                workers=workers or 1,
                partitions=partitions,
                reset=reset,
                repartition=repartition,
            )
        return self._run_one(partition, reset=reset)

    def _run_one(
        self, partition: Partition | None, *, reset: bool = False, table_checks: bool = True
    ) -> RunResult:
        self.check_pii_coverage()
        store = self.store
        pkey = partition_key(partition)
        if reset:
            store.reset(self.name, pkey)
            if self.deletes is not None:
                forget_reconciliation(store, self.name, pkey)
        run_id = str(uuid.uuid4())
        log = logger.bind(pipeline=self.name, run_id=run_id, partition=pkey or "all")
        result = RunResult(
            run_id=run_id,
            pipeline=self.name,
            status="running",
            partition=partition,
            started_at=now(),
        )
        store.start_run(run_id, self.name, pkey)
        start_run_log(store, run_id)  # logs.py: this run's lines to its database; purge old rows
        for a in self.anonymizers:
            a.reset()
        if _speedups.native is None:  # the same results, about half the anonymized throughput
            log.info(
                "run started (compiled speedups {}: hashing and COPY encoding take the pure-Python paths)",
                _speedups.describe(),
            )
        else:
            log.info("run started")
        tracker = QualityTracker(self.required)
        try:
            with (
                Heartbeat(store, run_id, self.heartbeat_interval, log) as beat,
                self._progress(pkey) as bar,
            ):
                runner = PartitionRunner(self, store, partition, pkey, result, tracker, log, bar)
                runner.lease_lost = beat.lost
                deletes = Reconciliation(runner) if self.deletes else None
                runner.run()
                if deletes is not None:
                    deletes.run()
            result.checks.extend(self._run_checks(result, tracker, pkey))
            if table_checks:
                result.checks.extend(
                    self._table_checks(result.full_load and not partition, result.rows_written)
                )
            self._record_checks(result, pkey, log)
        except BaseException as exc:
            self._fail(result, exc, log)
            raise
        result.status = "succeeded"
        result.finished_at = now()
        store.finish_run(run_id, "succeeded")
        log.info(
            "run succeeded: {} read, {} written, {} quarantined in {:.1f} s",
            result.rows_read,
            result.rows_written,
            result.rows_quarantined,
            result.seconds,
        )
        return result

    def _fail(self, result: RunResult, exc: BaseException, log: Any) -> None:
        result.status = "failed"
        result.finished_at = now()
        result.error = str(exc) if isinstance(exc, ETLError) else f"{type(exc).__name__}"
        try:
            self.store.finish_run(result.run_id, "failed", result.error)
        except Exception:  # the database itself may be what failed
            log.exception("could not record the failed run")
        log.error("run failed: {}", result.error)
        if isinstance(exc, ETLError):
            exc.result = result  # type: ignore[attr-defined]

    def _record_checks(self, result: RunResult, pkey: str, log: Any) -> None:
        """Store the checks; warn about warned ones; raise when a ``fail`` check failed."""
        self.store.add_checks(result.run_id, self.name, pkey, result.checks)
        for c in result.checks:
            if c.status == "warned":
                log.warning("quality check {} warned: {}", c.name, c.details)
        failed = [c for c in result.checks if not c.ok]
        if failed:
            raise QualityError(
                "quality check(s) failed: " + "; ".join(_describe(c) for c in failed),
                where={"pipeline": self.name, "partition": pkey or "all", "run": result.run_id},
                hint="what is valid is committed; inspect etl_express.quality_checks and "
                "`etl-express quarantine list` for this run",
            )

    @contextmanager
    def _progress(self, pkey: str) -> Iterator[Any]:
        disable = None if self.progress is None else not self.progress
        if disable:
            from tqdm import tqdm  # no notebook-widget probing when the bar is off
        else:
            from tqdm.auto import tqdm
        bar = tqdm(
            desc=f"{self.name} [{pkey or 'all'}]", unit=" rows", unit_scale=True, disable=disable
        )
        try:
            yield bar
        finally:
            bar.close()

    # -- quality checks ------------------------------------------------------------------

    def _run_checks(
        self, result: RunResult, tracker: QualityTracker, pkey: str
    ) -> list[CheckResult]:
        """Checks over what this run read and wrote."""
        p = self.check_policies
        checks = [
            reconciliation(
                result.rows_read,
                result.rows_written,
                result.rows_quarantined,
                result.rows_filtered,
                p["reconciliation"],
                tracker.unbalanced_batches,
            ),
            error_rate_check(
                result.rows_quarantined, result.rows_read, self.max_error_rate, p["error_rate"]
            ),
            tracker.required_check(p["required_columns"]),
            tracker.empty_columns_check(
                p["empty_columns"], self.store.recent_checks(self.name, pkey, "empty_columns")
            ),
        ]
        history = [
            r["rows_read"] for r in self.store.recent_runs(self.name, pkey, limit=ROW_COUNT_HISTORY)
        ]
        checks.append(row_count_check(result.rows_read, history, p["row_count_range"]))
        checks.extend(observe_run(self, self.store, pkey, result))  # freshness, target schema
        for a in self.anonymizers:  # e.g. KAnonymity's smallest equivalence class
            checks.extend(a.checks())
        return checks

    def _table_checks(self, full_load: bool, rows_written: int) -> list[CheckResult]:
        """Checks over the whole target table (once per run, also for a parallel run)."""
        p = self.check_policies
        schema_name = getattr(self.sink, "schema_name", None)
        table_name = getattr(self.sink, "table_name", None)
        if not schema_name or not table_name:
            why = f"{type(self.sink).__name__} is not a PostgreSQL table"
            return [
                skipped("duplicate_keys", p["duplicate_keys"], why),
                skipped("target_count", p["target_count"], why),
            ]
        with self.store.transaction() as conn:
            checks = [
                duplicate_keys_check(
                    conn,
                    schema_name,
                    table_name,
                    list(self.source.primary_key),
                    p["duplicate_keys"],
                )
            ]
            if full_load:
                checks.append(
                    target_count_check(
                        conn,
                        schema_name,
                        table_name,
                        self.source.name,
                        rows_written,
                        p["target_count"],
                    )
                )
            else:
                checks.append(skipped("target_count", p["target_count"], "not a full load"))
        return checks

    def anonymize_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """Anonymize one raw record (a quarantined one) before it is stored.

        The record's values are taken as text; each anonymizer is applied (except those that
        judge a population of rows, such as ``KAnonymity``), and where one cannot handle the
        raw value its columns are removed entirely. Columns tagged as personal data that are
        still present are removed as well. Finally every remaining text value that no
        anonymizer covered goes through a default ``ScrubPII``, so stray personal data in an
        unexpected field never lands in quarantine.
        """
        from .anonymizers.scrub import ScrubPII

        row = {
            normalize_name(k): (v if v is None or isinstance(v, str) else to_json_text(v))
            for k, v in record.items()
        }
        batch, _ = records_to_batch([row], pa.schema([pa.field(k, pa.string()) for k in row]))
        for a in self.anonymizers:
            if not a.row_wise:
                continue
            try:
                batch = a.anonymize(batch)
            except Exception:
                for col in a.covers():
                    i = batch.schema.get_field_index(normalize_name(col))
                    if i >= 0:
                        batch = batch.remove_column(i)
        covered = {normalize_name(c) for a in self.anonymizers if a.row_wise for c in a.covers()}
        for col in self.pii:
            i = batch.schema.get_field_index(col)
            if i >= 0 and col not in covered:
                batch = batch.remove_column(i)
        rest = [
            f.name for f in batch.schema if f.name not in covered and pa.types.is_string(f.type)
        ]
        if rest:
            batch = ScrubPII(rest).anonymize(batch)
        records = to_records(batch)
        return records[0] if records else {}


def _describe(check: CheckResult) -> str:
    if check.name == "error_rate":
        d = check.details
        return (
            f"error rate {d['error_rate']:.4%} ({d['rows_quarantined']} of {d['rows_read']} rows quarantined) "
            f"is above max_error_rate {d['max_error_rate']:.4%}"
        )
    shown = {k: v for k, v in check.details.items() if k not in ("non_empty",)}
    return f"{check.name} {shown}"


__all__ = ["DEFAULT_MAX_ERROR_RATE", "Pipeline"]
