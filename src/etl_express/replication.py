"""``Replication``: every table of a database into PostgreSQL, one ordinary ``Pipeline`` each.

Logic: one catalog read (:class:`~etl_express.sources.sql.SQLDatabase`) finds the tables,
their keys and column types; everything configured — anonymizer columns (``table.column``
or a bare ``column``), personal-data tags, per-table keys, cursors, partitions and
transformers (mappings whose keys may be glob patterns) — is resolved against it before
anything is read or written, and a name that matches nothing stops the replication there.
Each table then becomes a :class:`~etl_express.Pipeline` named ``"<name>.<table>"`` writing
a target table of the same name in the sink's schema; ``run(workers=n)`` runs them (and the
partitions of the big ones) on ``n`` threads of this process, sharing its connections.
"""

from __future__ import annotations

import copy
import datetime as dt
import fnmatch
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from loguru import logger

from ._validate import mapping_of, name_list
from .anonymizers.base import Anonymizer
from .errors import ETLConfigError, ETLError
from .format import normalize_name
from .pipeline import DEFAULT_MAX_ERROR_RATE, Pipeline
from .result import RunResult
from .retry import RetryPolicy
from .sinks.postgres import PostgresSink
from .sources.base import Partition
from .sources.sql.database import SQLDatabase
from .sources.sql.discovery import TableInfo
from .store.schema import now
from .transformers.base import Transformer

_V = TypeVar("_V")


@dataclass
class ReplicationResult:
    """The outcome of one replication run: a :class:`RunResult` per table (by table name),
    the overall status (``"succeeded"`` when every table did) and the totals.

    ``new_tables`` are tables met for the first time (picked up by ``include``);
    ``gone_tables`` tables replicated before that the source no longer has (their targets
    are left as they are)."""

    replication: str
    status: str
    tables: dict[str, RunResult] = field(default_factory=dict)
    new_tables: list[str] = field(default_factory=list)
    gone_tables: list[str] = field(default_factory=list)
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    def __getitem__(self, table: str) -> RunResult:
        return self.tables[table]

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def failed(self) -> list[str]:
        return [name for name, r in self.tables.items() if not r.ok]

    @property
    def rows_read(self) -> int:
        return sum(r.rows_read for r in self.tables.values())

    @property
    def rows_written(self) -> int:
        return sum(r.rows_written for r in self.tables.values())

    @property
    def rows_quarantined(self) -> int:
        return sum(r.rows_quarantined for r in self.tables.values())

    @property
    def seconds(self) -> float:
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "replication": self.replication,
            "status": self.status,
            "tables": {name: r.to_dict() for name, r in self.tables.items()},
            "new_tables": list(self.new_tables),
            "gone_tables": list(self.gone_tables),
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_quarantined": self.rows_quarantined,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "seconds": round(self.seconds, 3),
            "failed": self.failed,
        }


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
        tables met for the first time (how the Airflow helper maps a replication)."""
        tables = self.source.tables()
        planned = _Plan(self, tables).pipelines()
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
        self, *, workers: int = 1, reset: bool = False, progress: bool | None = False
    ) -> ReplicationResult:
        """Replicate every selected table (and each partition of the partitioned ones) on
        ``workers`` threads; each from its own last checkpoint (``reset``: from the start).

        Every table runs even when another fails; then an :class:`ETLError` naming the
        failed tables is raised, carrying the :class:`ReplicationResult` as ``.result``.
        """
        if not isinstance(workers, int) or workers < 1:
            raise ETLConfigError(
                f"workers must be a positive integer, got {workers!r}",
                where={"replication": self.name},
            )
        result = ReplicationResult(self.name, "running", started_at=now())
        tables = self.source.tables()
        planned = _Plan(self, tables).pipelines()
        pipelines = [p for p, _ in planned]
        for pipeline in pipelines:
            if progress is not None:
                pipeline.progress = progress and workers == 1
            pipeline.check_pii_coverage()  # every table, before any of them writes
        self._note_changes(result, [t.name for t in tables], pipelines)
        _create_schema(pipelines[0], self.sink.schema_name)  # once, not raced by the tables
        units = [(_own(p, spec), spec) for p, n in planned for spec in _specs(p, n)]
        outcomes = _map(workers, lambda unit: _run_unit(*unit, reset=reset), units)
        by_table: dict[str, list[RunResult]] = {}
        for (pipeline, _), outcome in zip(units, outcomes):
            by_table.setdefault(pipeline.source.name, []).append(outcome)
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


class _Plan:
    """Everything configured, resolved against one catalog read."""

    def __init__(self, replication: Replication, tables: list[TableInfo]):
        self.r = replication
        self.tables = tables
        self.names = [t.name for t in tables]
        if not tables:
            raise ETLConfigError(
                f"replication {replication.name!r}: no table of {replication.source!r} "
                "matches include/exclude",
                hint="check the schema and the include/exclude patterns",
            )
        where = {"replication": replication.name}
        self.transformers = _per_table(replication.transformers, self.names, "transformers", where)
        self.keys = self._keys(where)
        self.cursors = self._cursors(where)
        self.partitions = _per_table(replication.partitions, self.names, "partitions", where)
        self.columns = {t.name: _ColumnNames(t) for t in tables}
        self.anonymizers = self._anonymizers(where)
        self.pii = self._pii(where)
        self.not_pii = self._not_pii(where)

    def _keys(self, where: dict[str, Any]) -> dict[str, list[str]]:
        declared = _per_table(self.r.primary_key, self.names, "primary_key", where)
        exact = {k for k in self.r.primary_key if k in self.names}
        keys: dict[str, list[str]] = {}
        refused = []
        for t in self.tables:
            cols = _ColumnNames(t)
            if t.name in exact or (t.name in declared and not t.primary_key):
                keys[t.name] = [
                    cols.resolve(c, t.name, "primary key", where) for c in declared[t.name]
                ]
            elif t.primary_key:
                keys[t.name] = list(t.primary_key)
            else:
                refused.append(t.name)
        if refused:
            raise ETLConfigError(
                f"replication {self.r.name!r}: table(s) {refused} have no primary key, so rows "
                "could not be upserted or resumed",
                where=where,
                hint="declare one: Replication(..., primary_key={"
                + ", ".join(f"{n!r}: 'id'" for n in refused[:3])
                + "}) naming unique, non-null columns, or exclude the tables",
            )
        return keys

    def _cursors(self, where: dict[str, Any]) -> dict[str, str]:
        found: dict[str, str] = {}
        for pattern, column in self.r.cursor.items():
            if not isinstance(column, str):
                raise ETLConfigError(
                    f"cursor[{pattern!r}] must be one column name, got {column!r}", where=where
                )
        chosen = _per_table(self.r.cursor, self.names, "cursor", where)
        for t in self.tables:
            if t.name not in chosen:
                continue
            cols = _ColumnNames(t)
            column = chosen[t.name]
            if cols.has(column):
                found[t.name] = cols.raw(column)
            elif t.name in self.r.cursor:  # named exactly: the column must be there
                cols.resolve(column, t.name, "cursor", where)
        unused = [
            p
            for p, c in self.r.cursor.items()
            if not any(fnmatch.fnmatchcase(n, p) and self.columns_of(n).has(c) for n in self.names)
        ]
        if unused:
            raise ETLConfigError(
                f"cursor patterns {unused} match no table that has the column",
                where=where,
                hint="correct the pattern or the column name",
            )
        return found

    def columns_of(self, table: str) -> _ColumnNames:
        return _ColumnNames(next(t for t in self.tables if t.name == table))

    def _resolve(self, entries: Sequence[str]) -> tuple[dict[str, dict[str, str]], list[str]]:
        """``entry -> {table: column}`` for configured column names (``table.column`` or
        bare, canonical spelling), and the entries that match nothing."""
        matches: dict[str, dict[str, str]] = {}
        for entry in entries:
            hit: dict[str, str] = {}
            for t in self.tables:
                column = self.columns[t.name].match(entry)
                if column is not None:
                    hit[t.name] = column
            matches[entry] = hit
        return matches, [e for e, hit in matches.items() if not hit]

    def _anonymizers(self, where: dict[str, Any]) -> dict[str, list[Anonymizer]]:
        per_table: dict[str, list[Anonymizer]] = {n: [] for n in self.names}
        unknown: list[str] = []
        for anonymizer in self.r.anonymizers:
            entries = list(anonymizer.required_columns() or anonymizer.columns)
            matches, missing = self._resolve(entries)
            unknown += [f"{type(anonymizer).__name__}: {m}" for m in missing]
            whole = not anonymizer.row_wise or list(anonymizer.columns) != entries
            for table in self.names:
                mapping = {e: hit[table] for e, hit in matches.items() if table in hit}
                if not mapping or (whole and len(mapping) < len(entries)):
                    continue
                per_table[table].append(_for_table(anonymizer, mapping))
        if unknown:
            raise ETLConfigError(
                f"replication {self.r.name!r}: anonymizer column(s) match no selected table: "
                + ", ".join(unknown),
                where=where,
                hint="write 'table.column' for one table's column or 'column' for every table "
                "that has it; check the spelling and include/exclude",
            )
        return per_table

    def _pii(self, where: dict[str, Any]) -> dict[str, list[str]]:
        matches, missing = self._resolve([normalize_name(c) for c in self.r.pii])
        if missing:
            raise ETLConfigError(
                f"replication {self.r.name!r}: pii column(s) {missing} match no selected table",
                where=where,
                hint="write 'table.column' or a bare 'column'",
            )
        out: dict[str, list[str]] = {n: [] for n in self.names}
        for hit in matches.values():
            for table, column in hit.items():
                out[table].append(column)
        return out

    def _not_pii(self, where: dict[str, Any]) -> dict[str, dict[str, str]]:
        reasons = {normalize_name(c): why for c, why in self.r.not_pii.items()}
        matches, missing = self._resolve(list(reasons))
        if missing:
            raise ETLConfigError(
                f"replication {self.r.name!r}: not_pii column(s) {missing} match no selected table",
                where=where,
                hint="write 'table.column' or a bare 'column'",
            )
        out: dict[str, dict[str, str]] = {n: {} for n in self.names}
        for entry, hit in matches.items():
            for table, column in hit.items():
                out[table][column] = reasons[entry]
        return out

    def pipelines(self) -> list[tuple[Pipeline, int]]:
        """Each table's pipeline and its number of partitions."""
        r = self.r
        out = []
        store = _SharedStore(r.sink)
        for t in self.tables:
            pipeline = Pipeline(
                r.pipeline_name(t.name),
                r.source.source(
                    t,
                    primary_key=self.keys[t.name],
                    cursor=self.cursors.get(t.name),
                    pii=self.pii[t.name],
                ),
                transformers=[copy.copy(s) for s in self.transformers.get(t.name, ())],
                anonymizers=self.anonymizers[t.name],
                sink=r.sink.for_table(t.name),
                not_pii=self.not_pii[t.name] or None,
                progress=False,
                **r.options,
            )
            store.share(pipeline)
            out.append((pipeline, self.partitions.get(t.name, 1)))
        return out


class _SharedStore:
    """One checkpoint store for all the tables of a replication: the state schema is checked
    once per run, not once per table (each pipeline still declares itself in it)."""

    def __init__(self, sink: PostgresSink):
        self.sink = sink
        self.store: Any = None

    def share(self, pipeline: Pipeline) -> None:
        from ._engine.declarations import declare
        from .store.checkpoints import CheckpointStore
        from .store.database import resolve_url

        if self.store is None:
            self.store = CheckpointStore(resolve_url(self.sink.state_url))  # type: ignore[arg-type]
            self.store.ensure_schema()
        pipeline._store = self.store  # what Pipeline.store would build, built once
        declare(self.store, pipeline)


class _ColumnNames:
    """A table's columns by their common-format names, and what a configured name means."""

    def __init__(self, table: TableInfo):
        self.table = table
        self.by_name = {normalize_name(c): c for c in table.column_names()}
        self.qualified = {normalize_name(f"{table.name}.{c}"): n for n, c in self.by_name.items()}
        self.qualified = {q: n for q, n in self.qualified.items() if q}

    def has(self, name: str) -> bool:
        return normalize_name(name) in self.by_name

    def raw(self, name: str) -> str:
        return self.by_name[normalize_name(name)]

    def match(self, entry: str) -> str | None:
        """The common-format column ``entry`` (canonical) names in this table: itself when
        the table has it, or the column of a ``table.column`` entry naming this table."""
        if entry in self.by_name:
            return entry
        return self.qualified.get(entry)

    def resolve(self, name: str, table: str, what: str, where: dict[str, Any]) -> str:
        if not self.has(name):
            raise ETLConfigError(
                f"{what} column {name!r} does not exist in table {table!r}",
                where={**where, "columns": ", ".join(list(self.by_name.values())[:30])},
                hint=f"name an existing column of {table}",
            )
        return self.raw(name)


def _for_table(anonymizer: Anonymizer, mapping: dict[str, str]) -> Anonymizer:
    """A copy of ``anonymizer`` acting on one table: its configured columns (``entry ->
    the table's column``) that the table has, under the table's names; its per-column
    settings (a dict keyed by its columns, e.g. Pseudonymize's entities) follow them."""
    if all(e == c for e, c in mapping.items()) and len(mapping) == len(anonymizer.columns):
        scoped = copy.copy(anonymizer)
    else:
        scoped = copy.copy(anonymizer)
        old = list(anonymizer.columns)
        for attr, value in vars(anonymizer).items():
            if attr in ("columns", "quasi_identifiers") and isinstance(value, (tuple, list)):
                setattr(scoped, attr, type(value)(mapping[c] for c in value if c in mapping))
            elif isinstance(value, dict) and value and set(value) == set(old):
                setattr(scoped, attr, {mapping[c]: v for c, v in value.items() if c in mapping})
    scoped.reset()  # its own counters and gathered state, not the original's
    return scoped


def _specs(pipeline: Pipeline, n: int) -> list[Partition | None]:
    """The units of one table: its stored plan of ``n`` partitions, or the whole table."""
    if n <= 1:
        return [None]
    from ._engine.parallel import plan

    return list(plan(pipeline, n))


def _mapping(value: Any, parameter: str) -> dict[str, Any]:
    if value is None:
        return {}
    return dict(mapping_of(value, parameter, "Replication"))


def _per_table(
    settings: Mapping[str, _V],
    names: Sequence[str],
    parameter: str,
    where: dict[str, Any],
) -> dict[str, _V]:
    """``{table: value}`` from ``{pattern: value}``: an exact name wins over a pattern,
    among patterns the first that matches; a pattern matching no table is an error."""
    out: dict[str, _V] = {}
    unused = []
    for pattern, value in settings.items():
        if pattern in names:
            out[pattern] = value
    for pattern, value in settings.items():
        hit = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hit:
            unused.append(pattern)
        for n in hit:
            out.setdefault(n, value)
    if unused:
        raise ETLConfigError(
            f"{parameter}= names tables {unused} that match no selected table",
            where={**where, "tables": ", ".join(list(names)[:30])},
            hint="correct the table names or patterns (glob: 'orders_*')",
        )
    return out


def _map(workers: int, work: Callable[[Any], RunResult], units: Sequence[Any]) -> list[RunResult]:
    if workers == 1 or len(units) <= 1:
        return [work(u) for u in units]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="etl-express") as pool:
        return list(pool.map(work, units))


def _own(pipeline: Pipeline, spec: Partition | None) -> Pipeline:
    """The pipeline a unit runs: a partition gets a copy with a sink of its own, since the
    partitions of one table run at once on threads and a sink keeps what it prepared."""
    if spec is None:
        return pipeline
    own = copy.copy(pipeline)
    sink = pipeline.sink
    assert isinstance(sink, PostgresSink)  # a replication's sinks are (see __init__)
    own.sink = sink.for_table(sink.table_name)
    return own


def _run_unit(pipeline: Pipeline, spec: Partition | None, *, reset: bool) -> RunResult:
    """One table (or one partition of it); a failure comes back as a failed RunResult."""
    started = now()
    try:
        return pipeline.run(spec, reset=reset)
    except ETLError as exc:
        failed = getattr(exc, "result", None)
        if failed is not None:
            return failed  # type: ignore[no-any-return]
        return _failed(pipeline.name, spec, str(exc), started)
    except Exception as exc:
        from .errors import safe_pg_message

        return _failed(pipeline.name, spec, safe_pg_message(exc), started)


def _failed(name: str, spec: Partition | None, error: str, started: dt.datetime) -> RunResult:
    return RunResult(
        run_id="",
        pipeline=name,
        status="failed",
        partition=spec,
        started_at=started,
        finished_at=now(),
        error=error,
    )


def _combined(results: list[RunResult]) -> RunResult:
    """One table's result from its partitions' results."""
    first = results[0]
    failed = [r for r in results if not r.ok]
    combined = RunResult(
        run_id="",
        pipeline=first.pipeline,
        status="failed" if failed else "succeeded",
        started_at=min((r.started_at for r in results if r.started_at), default=None),
        finished_at=max((r.finished_at for r in results if r.finished_at), default=None),
        error="; ".join(r.error or "" for r in failed[:3]) or None,
        partitions=results,
    )
    for r in results:
        combined.rows_read += r.rows_read
        combined.rows_written += r.rows_written
        combined.rows_quarantined += r.rows_quarantined
        combined.rows_filtered += r.rows_filtered
        combined.batches += r.batches
        combined.retries += r.retries
    combined.full_load = all(r.full_load for r in results)
    return combined


def _create_schema(pipeline: Pipeline, schema: str) -> None:
    import sqlalchemy as sa

    with pipeline.store.transaction() as conn:
        quoted = conn.dialect.identifier_preparer.quote(schema)
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('etl_express.schema'))"))
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))


def _replicated_tables(pipeline: Pipeline, prefix: str) -> set[str]:
    """The tables a replication has run before: its pipelines with a run in the store."""
    import sqlalchemy as sa

    from .store.schema import runs

    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with pipeline.store.transaction() as conn:
        names = conn.execute(
            sa.select(runs.c.pipeline).where(runs.c.pipeline.like(pattern)).distinct()
        ).scalars()
        return {n[len(prefix) :] for n in names}


__all__ = ["Replication", "ReplicationResult"]
