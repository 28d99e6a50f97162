"""Column-shaping transformers: ``Rename``, ``Select``, ``Cast``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from .._validate import mapping_of, name_list
from ..errors import ETLConfigError
from ..format import ROW_HASH, canonical_type, normalize_name
from .base import Lineage, Transformer

_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "text": pa.string(),
    "int64": pa.int64(),
    "int": pa.int64(),
    "float64": pa.float64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "date32": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def _require(batch: pa.RecordBatch, columns: Sequence[str], step: str) -> None:
    missing = [c for c in columns if c not in batch.schema.names]
    if missing:
        raise ETLConfigError(
            f"{step}: column(s) {missing} are not in the batch",
            where={"columns": ", ".join(batch.schema.names[:30])},
            hint="column names are normalized to snake_case before transformers run",
        )


class Rename(Transformer):
    """Renames columns.

    Logic: takes a mapping of old to new names. Both sides are normalized to snake_case
    first, because every batch arrives in the common format with snake_case names, so
    ``Rename({"CustomerID": "client_id"})`` works on the normalized ``customer_id`` column.
    A name that is not in the batch is an error naming the missing column and listing the
    available ones, so a typo never silently passes a column through under its old name.
    Renaming onto an existing column is refused as well, since it would drop data.
    """

    def __init__(self, mapping: Mapping[str, str]):
        mapping = mapping_of(mapping, "mapping", "Rename")
        self.mapping = {normalize_name(k): normalize_name(v) for k, v in mapping.items()}

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        _require(batch, list(self.mapping), "Rename")
        names = [self.mapping.get(n, n) for n in batch.schema.names]
        if len(set(names)) != len(names):
            raise ETLConfigError(f"Rename would give two columns the same name: {names}")
        return batch.rename_columns(names)

    def lineage(self, schema: pa.Schema) -> Lineage:
        return {self.mapping.get(n, n): (n,) for n in schema.names}

    def carried(self, schema: pa.Schema) -> dict[str, str]:
        return {self.mapping.get(n, n): n for n in schema.names}

    def required_columns(self) -> list[str]:
        return list(self.mapping)

    def __repr__(self) -> str:
        return f"Rename({self.mapping!r})"


class Select(Transformer):
    """Keeps only the listed columns, in the listed order.

    Logic: projection by name. The columns to keep are normalized to snake_case and looked
    up in the batch; each missing one is reported with the list of available columns, so a
    renamed source column fails loudly instead of vanishing. Lineage columns are added by
    the pipeline after the transformers run, so they never need to be listed here. Use it to
    drop wide or sensitive columns the ML team does not need, which is also the simplest
    form of data minimisation.
    """

    def __init__(self, columns: Sequence[str]):
        self.columns = [normalize_name(c) for c in name_list(columns, "columns", "Select")]

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        _require(batch, self.columns, "Select")
        # the source's row hash (Pipeline(deletes=...)) belongs to the row, like lineage
        keep = [c for c in (ROW_HASH,) if c in batch.schema.names and c not in self.columns]
        return batch.select([*self.columns, *keep])

    def lineage(self, schema: pa.Schema) -> Lineage:
        present = set(schema.names)
        keep = [c for c in self.columns if c in present]
        if ROW_HASH in present and ROW_HASH not in keep:
            keep.append(ROW_HASH)
        return {c: (c,) for c in keep}

    def carried(self, schema: pa.Schema) -> dict[str, str]:
        return {c: c for c in self.lineage(schema)}

    def required_columns(self) -> list[str]:
        return list(self.columns)

    def __repr__(self) -> str:
        return f"Select({self.columns!r})"


class Cast(Transformer):
    """Casts columns to canonical types (vectorized, safe casts).

    Logic: each listed column is converted with Arrow's cast kernel to the requested type —
    a name such as ``"int64"``, ``"float64"``, ``"bool"``, ``"date"``, ``"timestamp"``,
    ``"string"``, ``"decimal(12,2)"`` or an Arrow type. Casts are safe: a value that would
    overflow or lose information is never truncated. With ``on_error="quarantine"`` (the
    default) a record holding such a value is quarantined — anonymized, with a reason naming
    the column and the target type, counted against ``max_error_rate`` — and the rest of the
    batch goes on; the bad rows are found by bisection, so a clean batch costs one cast per
    column. With ``on_error="fail"`` the run stops at the first such value, naming the column.
    Strings parse as ISO 8601 for dates and timestamps. The result is brought to the
    canonical form (timestamps in UTC, microseconds). A cast Arrow cannot do at all (e.g.
    date to bool) is a configuration error either way.
    """

    def __init__(self, types: Mapping[str, str | pa.DataType], *, on_error: str = "quarantine"):
        if on_error not in ("quarantine", "fail"):
            raise ETLConfigError(
                f"Cast: on_error={on_error!r} is not 'quarantine' or 'fail'",
                hint='on_error="quarantine" sets bad records aside; "fail" stops the run',
            )
        types = mapping_of(types, "types", "Cast")
        self.types = {normalize_name(k): self._parse(v) for k, v in types.items()}
        self.on_error = on_error

    @staticmethod
    def _parse(value: str | pa.DataType) -> pa.DataType:
        if isinstance(value, pa.DataType):
            return canonical_type(value)
        text = value.strip().lower().replace(" ", "")
        if text.startswith("decimal(") and text.endswith(")"):
            p, _, s = text[8:-1].partition(",")
            return pa.decimal128(int(p), int(s or 0))
        if text not in _TYPES:
            raise ETLConfigError(
                f"Cast: unknown type {value!r}", hint=f"use one of {sorted(_TYPES)} or decimal(p,s)"
            )
        return _TYPES[text]

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        return self._cast(batch, isolate=False)[0]

    def transform_rows(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[tuple[int, str]]]:
        return self._cast(batch, isolate=self.on_error == "quarantine")

    def _cast(
        self, batch: pa.RecordBatch, *, isolate: bool
    ) -> tuple[pa.RecordBatch, list[tuple[int, str]]]:
        _require(batch, list(self.types), "Cast")
        refused: dict[int, str] = {}
        for name, target in self.types.items():
            i = batch.schema.get_field_index(name)
            source_type = batch.schema.field(i).type
            try:
                _cast_column(batch.column(i), target)
            except pa.ArrowNotImplementedError:
                raise ETLConfigError(
                    f"Cast: column {name!r} cannot be cast from {source_type} to {target}",
                    hint="cast through another type (e.g. string) or choose another target type",
                ) from None
            except pa.ArrowInvalid:
                if not isolate:
                    raise ETLConfigError(
                        f"Cast: column {name!r} holds values that cannot be cast from "
                        f"{source_type} to {target}",
                        hint="clean the values first (Derive/Filter), choose a wider type, or "
                        'Cast(..., on_error="quarantine") to set such records aside',
                    ) from None
                reason = (
                    f"Cast: column {name!r}: value cannot be cast from {source_type} to {target}"
                )
                for row in _bad_rows(batch.column(i), target):
                    refused.setdefault(row, reason)
        if refused:
            keep = [r for r in range(batch.num_rows) if r not in refused]
            batch = batch.take(pa.array(keep, type=pa.int64()))
        for name, target in self.types.items():
            i = batch.schema.get_field_index(name)
            col = _cast_column(batch.column(i), target)
            batch = batch.set_column(i, pa.field(name, target), col)
        return batch, sorted(refused.items())

    def lineage(self, schema: pa.Schema) -> Lineage:
        return {n: (n,) for n in schema.names}

    def carried(self, schema: pa.Schema) -> dict[str, str]:
        return {n: n for n in schema.names}

    def required_columns(self) -> list[str]:
        return list(self.types)

    def __repr__(self) -> str:
        return f"Cast({ {k: str(v) for k, v in self.types.items()}!r})"


def _cast_column(col: pa.Array, target: pa.DataType) -> pa.Array:
    if pa.types.is_integer(col.type) and pa.types.is_decimal(target):
        # go through a decimal wide enough for any int64; the narrowing checks values
        col = pc.cast(col, pa.decimal128(min(19 + target.scale, 38), target.scale))
    return pc.cast(col, target)


def _bad_rows(col: pa.Array, target: pa.DataType) -> list[int]:
    """The rows whose value cannot be cast: bisection, O(bad x log n) casts."""
    bad: list[int] = []
    pending = [(0, len(col))]
    while pending:
        lo, hi = pending.pop()
        try:
            _cast_column(col.slice(lo, hi - lo), target)
            continue
        except pa.ArrowInvalid:
            if hi - lo == 1:
                bad.append(lo)
                continue
        mid = (lo + hi) // 2
        pending += [(mid, hi), (lo, mid)]
    return bad


__all__ = ["Cast", "Rename", "Select"]
