"""``Replication``: every table of a database into PostgreSQL, one ordinary ``Pipeline`` each.

Logic: one catalog read (:class:`~etl_express.sources.sql.SQLDatabase`) finds the tables,
their keys and column types; everything configured — anonymizer columns (``table.column``
or a bare ``column``), personal-data tags, per-table keys, cursors, partitions and
transformers (mappings whose keys may be glob patterns) — is resolved against it before
anything is read or written, and a name that matches nothing stops the replication there.
Each table then becomes a :class:`~etl_express.Pipeline` named ``"<name>.<table>"`` writing
a target table of the same name in the sink's schema; ``run(workers=n)`` runs them (and the
partitions of the big ones) in ``n`` processes forked once everything is planned
(:mod:`.workers`), or on ``n`` threads of this process where it cannot fork.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.process import BaseProcess
from typing import Any

from loguru import logger

from .._validate import name_list
from ..anonymizers.base import Anonymizer
from ..errors import ETLConfigError, ETLError
from ..format import normalize_name
from ..pipeline import DEFAULT_MAX_ERROR_RATE, Pipeline
from ..result import RunResult
from ..retry import RetryPolicy
from ..sinks.postgres import PostgresSink
from ..sources.base import Partition
from ..sources.sql.database import SQLDatabase
from ..sources.sql.discovery import TableInfo
from ..store.checkpoints import CheckpointStore
from ..store.schema import now
from ..transformers.base import Transformer
from . import workers as _workers
from .plan import _mapping, _Plan
from .result import ReplicationResult, _combined, _died, _own, _run_unit

#: one unit of a run: a table's pipeline, its partition (``None``: the whole table) and
#: the rows it is estimated to hold
_Unit = tuple[Pipeline, Partition | None, float]


class Replication:
    """Replicates every table of a database that ``source`` selects into a target table of
    the same name in the sink's schema. Example::

        replication = etl.Replication(
            name="crm",
            source=SQLDatabase(url=etl.secret("CRM_DB_URL"), schema="public",
                               include=["*"], exclude=["audit_*"]),
            sink=PostgresSink(schema="crm"),
            anonymizers=[Pseudonymize(["email", "customers.phone"], key=etl.secret("ANON_KEY"))],
            deletes="soft", freshness="26h",
        )
        result = replication.run(workers=2)

    Each table is an ordinary :class:`Pipeline` named ``"<name>.<table>"`` (see
    :meth:`pipelines`), with its own checkpoint, runs and checks, so everything a pipeline
    does — exactly-once batches, quarantine, deletes, history, freshness, the privacy
    checks — holds per table. A column keeps the PostgreSQL type it is declared with at
    the source (``char(10)`` stays ``char(10)``), unless an anonymizer rewrites it.

    Args:
        name: the replication's name, the prefix of its pipelines' names.
        source: the database (:class:`~etl_express.sources.SQLDatabase`).
        sink: ``PostgresSink(schema=...)``: the target schema and the options of every
            table's sink (``history=True``...); default ``PostgresSink(schema=name)``.
        anonymizers: applied to every table that has their columns: a column written
            ``"table.column"`` is that table's, a bare ``"column"`` every table's that has
            it; a name that matches no table is an ``ETLConfigError`` before anything runs.
        pii: personal-data columns (``"table.column"`` or bare), each must be covered.
        not_pii: ``{column: reason}`` declarations that a column is not personal data
            (``"table.column"`` or bare), as on :class:`Pipeline`.
        detect_pii: ``"refuse"`` (default), ``"warn"`` or ``"off"``: what each table's run
            does when an untagged column looks like personal data, as on :class:`Pipeline`.
        transformers: ``{table pattern: [transformers]}``, applied to the matching tables.
        primary_key: ``{table pattern: column(s)}``: the key of a table the catalog gives
            none (an exact table name also replaces a table's own key). A table without a
            key is refused, naming the fix.
        cursor: ``{table pattern: column}``: incremental reads by that column (a pattern
            applies to the matching tables that have the column).
        partitions: ``{table pattern: n}``: big tables read as ``n`` key ranges, run in
            parallel by ``run(workers=...)`` and mapped by the Airflow helper.
        deletes: as on :class:`Pipeline`, for every table; so are ``reconcile_every``,
            ``freshness``, ``max_error_rate``, ``required``, ``checks``, ``retry`` and
            ``lease_seconds``.
        synchronous_commit: ``False`` (default): within :meth:`run` the tables' commits
            (batches with their checkpoints, run records, checks, target DDL) do not wait
            for the WAL flush one by one; the run ends with one commit that does, so all
            of it is on disk when ``run`` returns (or raises). A server crash during the
            run loses the last commits in order — rows and checkpoint together — and the
            next run resumes from the checkpoint left. ``True``: every commit waits, as
            a single :class:`Pipeline`'s do (and as the Airflow helper's tasks always do).

    Patterns are globs over source table names (``"*"``, ``"audit_*"``); an exact name wins
    over a pattern, and among patterns the first that matches.
    """

    def __init__(
        self,
        name: str,
        source: SQLDatabase,
        *,
        sink: PostgresSink | None = None,
        anonymizers: Sequence[Anonymizer] = (),
        pii: Sequence[str] = (),
        not_pii: Mapping[str, str] | None = None,
        detect_pii: str = "refuse",
        transformers: Mapping[str, Sequence[Transformer]] | None = None,
        primary_key: Mapping[str, str | Sequence[str]] | None = None,
        cursor: Mapping[str, str] | None = None,
        partitions: Mapping[str, int] | None = None,
        deletes: str | None = None,
        reconcile_every: str | float | dt.timedelta | None = None,
        freshness: str | dt.timedelta | None = None,
        max_error_rate: float = DEFAULT_MAX_ERROR_RATE,
        required: Sequence[str] = (),
        checks: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        lease_seconds: float = 120.0,
        synchronous_commit: bool = False,
    ):
        if not name or not isinstance(name, str):
            raise ETLConfigError(
                "Replication needs a non-empty name", hint='Replication(name="crm", ...)'
            )
        if not isinstance(source, SQLDatabase):
            raise ETLConfigError(
                f"Replication's source must be an SQLDatabase, got {type(source).__name__}",
                where={"replication": name},
                hint='source=SQLDatabase(url=etl.secret("CRM_DB_URL"), schema="public")',
            )
        if sink is None:
            sink = PostgresSink(schema=normalize_name(name))
        if not isinstance(sink, PostgresSink) or sink.table_name != "*":
            raise ETLConfigError(
                f"Replication's sink must be PostgresSink(schema=...), got {sink!r}",
                where={"replication": name},
                hint='sink=PostgresSink(schema="crm"): one target table per source table',
            )
        self.name = name
        self.source = source
        self.sink = sink
        self.anonymizers = list(anonymizers)
        self.pii = name_list(pii, "pii", "Replication")
        self.not_pii = {str(k): v for k, v in _mapping(not_pii, "not_pii").items()}
        self.transformers = _mapping(transformers, "transformers")
        self.primary_key = {
            k: name_list(v, "primary_key", "Replication")
            for k, v in _mapping(primary_key, "primary_key").items()
        }
        self.cursor = _mapping(cursor, "cursor")
        self.partitions = _mapping(partitions, "partitions")
        for pattern, n in self.partitions.items():
            if not isinstance(n, int) or n < 1:
                raise ETLConfigError(
                    f"partitions[{pattern!r}] must be a positive integer, got {n!r}",
                    where={"replication": name},
                )
        self.synchronous_commit = bool(synchronous_commit)
        self.options: dict[str, Any] = {
            "deletes": deletes,
            "reconcile_every": reconcile_every,
            "freshness": freshness,
            "max_error_rate": max_error_rate,
            "required": required,
            "checks": checks,
            "retry": retry,
            "lease_seconds": lease_seconds,
            "detect_pii": detect_pii,
        }

    def __repr__(self) -> str:
        return f"Replication(name={self.name!r}, source={self.source!r}, sink={self.sink!r})"

    # -- the tables --------------------------------------------------------------------

    def pipeline_name(self, table: str) -> str:
        """The name of the pipeline replicating ``table``."""
        return f"{self.name}.{table}"

    def pipelines(self, tables: Sequence[TableInfo] | None = None) -> list[Pipeline]:
        """One ordinary :class:`Pipeline` per selected table, from one catalog read (or
        ``tables`` from :meth:`SQLDatabase.tables`); every configured name is checked
        against the catalog first."""
        tables = self.source.tables() if tables is None else list(tables)
        return [p for p, _ in _Plan(self, tables).pipelines()]

    def pipeline(self, table: str) -> Pipeline:
        """The pipeline of one table (the whole configuration is checked against one catalog
        read first, as for :meth:`pipelines`)."""
        for p in self.pipelines():
            if p.source.name == table:
                return p
        raise ETLConfigError(
            f"replication {self.name!r} selects no table {table!r}",
            hint="check the table name and the source's include/exclude",
        )

    def units(self) -> list[dict[str, Any]]:
        """The work of one run as JSON units, ``{"table": name, "partition": spec or None}``:
        one per table, one per partition of a partitioned table (its stored plan). Checks
        every configured name and every table's personal-data coverage first, and logs the
        tables met for the first time and what the copy will answer differently from the
        source, as :meth:`run` does (how the Airflow helper maps a replication)."""
        tables = self.source.tables()
        plan = _Plan(self, tables)
        planned = plan.pipelines()
        plan.warn_differences()
        for pipeline, _ in planned:
            pipeline.check_pii_coverage()
        self._note_changes(
            ReplicationResult(self.name, "planned"),
            [t.name for t in tables],
            [p for p, _ in planned],
        )
        return [
            {"table": p.source.name, "partition": spec} for p, n in planned for spec in _specs(p, n)
        ]

    def run(
        self,
        *,
        workers: int = 1,
        reset: bool = False,
        progress: bool | None = False,
        processes: bool | None = None,
    ) -> ReplicationResult:
        """Replicate every selected table (and each partition of the partitioned ones) with
        ``workers`` at a time, each from its own last checkpoint (``reset``: from the start).

        With ``workers > 1`` the tables run in that many worker processes, forked after the
        catalog is read and every table planned and checked (so the tables' Python work
        uses every core); the biggest tables are handed out first, one at a time.
        ``processes=False`` runs them on threads of this process instead (the default where
        the platform cannot fork, e.g. Windows, on macOS, and inside a daemonic worker
        process);
        ``processes=True`` requires processes. A worker process that dies (killed, out of
        memory) fails only the table it was running, naming it; the next run resumes that
        table from its checkpoint.

        Every table runs even when another fails; then an :class:`ETLError` naming the
        failed tables is raised, carrying the :class:`ReplicationResult` as ``.result``.
        """
        if not isinstance(workers, int) or workers < 1:
            raise ETLConfigError(
                f"workers must be a positive integer, got {workers!r}",
                where={"replication": self.name},
            )
        if processes and not _workers.fork_available():
            raise ETLConfigError(
                "run(processes=True) needs worker processes forked from this one, which this "
                "platform or process cannot do",
                where={"replication": self.name},
                hint="run(processes=False) runs the tables on threads of this process",
            )
        in_processes = _workers.processes_by_default() if processes is None else processes
        result = ReplicationResult(self.name, "running", started_at=now())
        tables = self.source.tables()
        plan = _Plan(self, tables)
        planned = plan.pipelines(wait_flush=self.synchronous_commit)
        plan.warn_differences()
        pipelines = [p for p, _ in planned]
        for pipeline in pipelines:
            if progress is not None:
                pipeline.progress = progress and workers == 1
            pipeline.check_pii_coverage()  # every table, before any of them writes
        self._note_changes(result, [t.name for t in tables], pipelines)
        _create_schema(pipelines[0], self.sink.schema_name)  # once, not raced by the tables
        # the biggest units first (the catalog's row estimates), so the long ones do not
        # start last and leave the other workers idle at the end
        rows = {t.name: t.rows or 0 for t in tables}
        units = sorted(
            (
                (_own(p, spec), spec, rows[p.source.name] / n)
                for p, n in planned
                for spec in _specs(p, n)
            ),
            key=lambda unit: -unit[2],
        )
        outcomes = _map(
            workers,
            # each unit's coverage was checked above, with every table's, before any ran
            lambda unit: _run_unit(unit[0], unit[1], reset=reset, coverage_checked=True),
            units,
            in_processes=in_processes,
        )
        if not self.synchronous_commit:
            # every unit has finished (its worker process, if any, has reported or died):
            # their commits that did not wait for the WAL flush are all in the WAL before
            # this commit's own record, and PostgreSQL flushes the WAL in order, whichever
            # session wrote it, so this one waiting commit puts them all on disk
            _flush(pipelines[0].store, self.name)
        by_table: dict[str, list[RunResult]] = {p.source.name: [] for p in pipelines}
        for (pipeline, _, _), outcome in zip(units, outcomes):
            by_table[pipeline.source.name].append(outcome)
        for table, results in by_table.items():
            result.tables[table] = results[0] if len(results) == 1 else _combined(results)
        result.finished_at = now()
        result.status = "failed" if result.failed else "succeeded"
        if result.failed:
            error = ETLError(
                f"{len(result.failed)} of {len(result.tables)} tables failed: "
                + "; ".join(f"{t}: {result.tables[t].error}" for t in result.failed[:3]),
                where={"replication": self.name},
                hint="the other tables are committed; run again to resume the failed ones",
            )
            error.result = result  # type: ignore[attr-defined]
            raise error
        return result

    def _note_changes(
        self, result: ReplicationResult, names: list[str], pipelines: list[Pipeline]
    ) -> None:
        """Which tables are met for the first time, and which went away (logged, and in the
        result)."""
        if not pipelines:
            return
        known = _replicated_tables(pipelines[0], self.name + ".")
        if known:
            result.new_tables = [n for n in names if n not in known]
            result.gone_tables = sorted(known - set(names))
        else:
            result.new_tables = list(names)
        if known and result.new_tables:
            logger.info(
                "replication {}: {} new table(s) picked up: {}",
                self.name,
                len(result.new_tables),
                ", ".join(result.new_tables),
            )
        if result.gone_tables:
            logger.warning(
                "replication {}: {} table(s) no longer at the source (targets left as they "
                "are): {}",
                self.name,
                len(result.gone_tables),
                ", ".join(result.gone_tables),
            )


def _specs(pipeline: Pipeline, n: int) -> list[Partition | None]:
    """The units of one table: its stored plan of ``n`` partitions, or the whole table."""
    if n <= 1:
        return [None]
    from .._engine.parallel import plan

    return list(plan(pipeline, n))


def _map(
    workers: int,
    work: Callable[[_Unit], RunResult],
    units: Sequence[_Unit],
    *,
    in_processes: bool,
) -> list[RunResult]:
    """``work(unit)`` for every unit, in its order: here when there is one worker or one
    unit, else in forked worker processes or on threads."""
    if workers == 1 or len(units) <= 1:
        return [work(u) for u in units]
    if in_processes:
        return _workers.run_in_processes(units, workers, work, _dead_worker)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="etl-express") as pool:
        return list(pool.map(work, units))


def _dead_worker(unit: _Unit, process: BaseProcess) -> RunResult:
    """The result of a unit whose worker process died, said in the log too."""
    pipeline, spec, _ = unit
    how = _workers.describe_exit(process)
    logger.warning(
        "replication worker process {} died ({}) while replicating table {}",
        process.pid,
        how,
        pipeline.source.name,
    )
    return _died(pipeline, spec, process.pid, how)


def _create_schema(pipeline: Pipeline, schema: str) -> None:
    import sqlalchemy as sa

    with pipeline.store.transaction() as conn:
        quoted = conn.dialect.identifier_preparer.quote(schema)
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('etl_express.schema'))"))
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))


def _flush(store: CheckpointStore, name: str) -> None:
    """One commit that waits for the WAL flush, so every commit of the run before it (which
    did not wait) is on disk too: PostgreSQL flushes its log in order. It records when the
    replication last finished in the store's ``meta``."""
    import sqlalchemy as sa

    from ..store.schema import set_meta

    with store.transaction() as conn:
        conn.execute(sa.text("SET LOCAL synchronous_commit = on"))
        set_meta(conn, f"replication:{name}", now().isoformat())


def _replicated_tables(pipeline: Pipeline, prefix: str) -> set[str]:
    """The tables a replication has run before: its pipelines with a run in the store."""
    import sqlalchemy as sa

    from ..store.schema import runs

    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with pipeline.store.transaction() as conn:
        names = conn.execute(
            sa.select(runs.c.pipeline).where(runs.c.pipeline.like(pattern)).distinct()
        ).scalars()
        return {n[len(prefix) :] for n in names}
