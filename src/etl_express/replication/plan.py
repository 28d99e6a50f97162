"""Everything a replication configures, resolved against one catalog read: per-table keys,
cursors, partitions, transformers, anonymizers and personal-data declarations (mappings whose
keys may be globs, column names written ``table.column`` or bare), and the pipeline of each
table. A name that matches nothing is an :class:`ETLConfigError` before anything runs."""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._validate import mapping_of
from ..anonymizers.base import Anonymizer
from ..errors import ETLConfigError
from ..format import normalize_name
from ..pipeline import Pipeline
from ..sinks.postgres import PostgresSink
from ..sources.sql.discovery import TableInfo

if TYPE_CHECKING:
    from ..sources.sql.database import SQLDatabase


class Replication(Protocol):
    """What a plan reads of its :class:`~etl_express.Replication` (the configuration it
    checked and normalised; a protocol, so that this module does not import ``core``)."""

    name: str
    source: SQLDatabase
    sink: PostgresSink
    anonymizers: list[Anonymizer]
    pii: list[str]
    not_pii: dict[str, str]
    transformers: dict[str, Any]
    primary_key: dict[str, list[str]]
    cursor: dict[str, Any]
    partitions: dict[str, Any]
    options: dict[str, Any]
    synchronous_commit: bool

    def pipeline_name(self, table: str) -> str: ...


_V = TypeVar("_V")


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

    def warn_differences(self) -> None:
        """Log, once per run, what the copy will answer differently from the source
        (:mod:`.fidelity`): columns whose source semantics no PostgreSQL type carries."""
        from loguru import logger

        from .fidelity import differences

        for line in differences(self.tables):
            logger.warning("replication {}: the copy answers differently: {}", self.r.name, line)

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

    def pipelines(self, *, wait_flush: bool = True) -> list[tuple[Pipeline, int]]:
        """Each table's pipeline and its number of partitions, sharing one store
        (``wait_flush``: see :func:`_share_store`)."""
        r = self.r
        out = []
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
                sink=self._sink(t),
                not_pii=self.not_pii[t.name] or None,
                progress=False,
                **r.options,
            )
            out.append((pipeline, self.partitions.get(t.name, 1)))
        _share_store(r.sink, [p for p, _ in out], wait_flush=wait_flush)
        return out

    def _sink(self, table: TableInfo) -> PostgresSink:
        """The table's sink; with ``Replication(synchronous_commit=True)`` its batches wait
        for the WAL flush too, as every other commit of the run."""
        try:
            sink = self.r.sink.for_table(table.name, small=self._small(table))
        except ETLConfigError as exc:  # a name PostgreSQL cannot hold (MariaDB allows 64 chars)
            raise ETLConfigError(
                f"replication {self.r.name!r}: {exc.what}",
                where={"replication": self.r.name, "table": table.name},
                hint=f"exclude it (exclude=[{table.name!r}]) and copy it with a Pipeline of its "
                "own whose PostgresSink names a shorter table (SQLSource(url, table=...))",
            ) from None
        if self.r.synchronous_commit:
            sink.synchronous_commit = True
        return sink

    def _small(self, table: TableInfo) -> bool:
        """A table the catalog expects to fit in one batch and read whole (one unit): its
        target is created with its primary key (see ``PostgresSink.for_table``)."""
        rows = table.rows
        return (
            rows is not None
            and rows < self.r.source.batch_size
            and self.partitions.get(table.name, 1) == 1
        )


def _share_store(sink: PostgresSink, pipelines: Sequence[Pipeline], *, wait_flush: bool) -> None:
    """One checkpoint store for all the tables of a replication: the state schema is checked
    once and every table's declaration written in one transaction, not once per table.

    ``wait_flush=False``: the store's sessions commit with ``synchronous_commit = off``
    (a replication's run, which ends with one commit that waits, see ``core._flush``)."""
    from .._engine.declarations import declare_all
    from ..store.checkpoints import CheckpointStore
    from ..store.database import engine_for, resolve_url, sqlalchemy_url

    if not pipelines:
        return
    url = resolve_url(sink.state_url)  # type: ignore[arg-type]
    store = CheckpointStore(url)
    if not wait_flush:
        given = str(sqlalchemy_url(url).query.get("options") or "")
        options = f"{given} -c synchronous_commit=off".strip()
        store.engine = engine_for(url, connect_args={"options": options})
    store.ensure_schema()
    for pipeline in pipelines:
        pipeline._store = store  # what Pipeline.store would build, built once
    declare_all(store, pipelines)


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
