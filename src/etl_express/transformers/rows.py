"""Row and value transformers: ``Filter``, ``Derive``, ``NormalizeEmpty``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from .._validate import name_list
from ..errors import ETLConfigError
from ..format import normalize_name
from ._trace import Untraceable, references
from .base import Lineage, Transformer

Expression = Callable[[pa.RecordBatch], pa.Array]


class Filter(Transformer):
    """Keeps the rows for which a vectorized predicate is true.

    Logic: the predicate is a function from the batch to a boolean Arrow array (built with
    ``pyarrow.compute``, e.g. ``lambda b: pc.greater(b["balance"], 0)``) or a
    ``pyarrow.compute.Expression`` such as ``pc.field("is_active")``. Rows where it is false
    or null are dropped. The pipeline counts dropped rows as *filtered*, so reconciliation
    still proves that every row read was written, quarantined or deliberately filtered —
    nothing disappears without a trace.
    """

    def __init__(self, predicate: Expression | pc.Expression):
        self.predicate = predicate

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if isinstance(self.predicate, pc.Expression):
            return (
                pa.Table.from_batches([batch])
                .filter(self.predicate)
                .combine_chunks()
                .to_batches()[0]
                if batch.num_rows
                else batch
            )
        mask = self.predicate(batch)
        if not pa.types.is_boolean(mask.type) or len(mask) != batch.num_rows:
            raise ETLConfigError("Filter: the predicate must return one boolean per row")
        return batch.filter(mask, null_selection_behavior="drop")

    def lineage(self, schema: pa.Schema) -> Lineage:
        return {n: (n,) for n in schema.names}

    def carried(self, schema: pa.Schema) -> dict[str, str]:
        return {n: n for n in schema.names}

    def __repr__(self) -> str:
        return "Filter(<predicate>)"


class Derive(Transformer):
    """Adds or replaces a column computed from the batch.

    Logic: ``Derive("full_name", lambda b: pc.binary_join_element_wise(b["first"],
    b["last"], " "))`` evaluates the function once per batch — vectorized, no Python loop
    over rows — and appends the result as a new column, or replaces the column if it already
    exists. The result must have one value per row; its type is kept as returned, so return
    canonical types (string, int64, float64, decimal, bool, date32, timestamp UTC). Use it
    for derived features, flags and normalizations that the ML team needs in the table.
    When the expression fails on some values (an Arrow kernel refusing a value: a checked
    division by zero, a string that does not parse), ``on_error="quarantine"`` (the default)
    finds those records by bisection and quarantines them — anonymized, with a reason naming
    the column, counted against ``max_error_rate`` — and the rest of the batch goes on;
    ``on_error="fail"`` stops the run naming the column. Neither ever shows the value.
    """

    def __init__(self, column: str, expression: Expression, *, on_error: str = "quarantine"):
        if on_error not in ("quarantine", "fail"):
            raise ETLConfigError(
                f"Derive: on_error={on_error!r} is not 'quarantine' or 'fail'",
                hint='on_error="quarantine" sets bad records aside; "fail" stops the run',
            )
        self.column = normalize_name(column)
        self.expression = expression
        self.on_error = on_error

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        try:
            return self._derive(batch)
        except pa.ArrowInvalid:
            raise self._failed() from None

    def transform_rows(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[tuple[int, str]]]:
        try:
            return self._derive(batch), []
        except pa.ArrowInvalid:
            if self.on_error == "fail":
                raise self._failed() from None
        bad = self._failing_rows(batch)
        if not bad:  # the batch fails as a whole, no record alone does: not a value's fault
            raise self._failed() from None
        keep = [r for r in range(batch.num_rows) if r not in set(bad)]
        reason = f"Derive: column {self.column!r}: the expression fails on this record's values"
        kept = batch.take(pa.array(keep, type=pa.int64()))
        return self._derive(kept), [(row, reason) for row in bad]

    def _derive(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        values = self.expression(batch)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if len(values) != batch.num_rows:
            raise ETLConfigError(
                f"Derive({self.column!r}): expression returned {len(values)} values for "
                f"{batch.num_rows} rows"
            )
        i = batch.schema.get_field_index(self.column)
        if i >= 0:
            return batch.set_column(i, self.column, values)
        return batch.append_column(self.column, values)

    def _failing_rows(self, batch: pa.RecordBatch) -> list[int]:
        """The rows on which the expression fails alone, by bisection (a clean half costs one
        evaluation)."""
        bad: list[int] = []
        pending = [(0, batch.num_rows)]
        while pending:
            start, length = pending.pop()
            try:
                self._derive(batch.slice(start, length))
                continue
            except pa.ArrowInvalid:
                pass
            if length == 1:
                bad.append(start)
            else:
                half = length // 2
                pending += [(start + half, length - half), (start, half)]
        return sorted(bad)

    def _failed(self) -> ETLConfigError:
        # Arrow's message may quote the value (personal data before the anonymizers): not shown
        return ETLConfigError(
            f"Derive: the expression for column {self.column!r} fails on some values",
            hint="clean or guard the values in the expression (e.g. pc.if_else), or "
            'Derive(..., on_error="quarantine") to set such records aside',
        )

    def lineage(self, schema: pa.Schema) -> Lineage:
        """The derived column comes from the columns its expression reads (traced on an
        empty batch, see :mod:`._trace`), or from every column when the expression cannot be
        traced (it reads the batch as a whole); every other column from itself."""
        try:
            read, _ = references(self.expression, schema)
        except Untraceable:
            read = tuple(schema.names)
        out: Lineage = {n: (n,) for n in schema.names if n != self.column}
        out[self.column] = read
        if self.column in schema.names:  # replaced in place: keeps its position
            return {n: out[n] for n in schema.names}
        return out

    def carried(self, schema: pa.Schema) -> dict[str, str]:
        return {n: n for n in schema.names if n != self.column}

    def output_types(self, schema: pa.Schema) -> dict[str, pa.DataType]:
        """The derived column's type, as the traced expression returned it (when it did)."""
        try:
            _, kind = references(self.expression, schema)
        except Exception:  # untraceable: the plan takes it as text
            return {}
        return {self.column: kind} if kind is not None else {}

    def __repr__(self) -> str:
        return f"Derive({self.column!r})"


class NormalizeEmpty(Transformer):
    """Makes empty values explicit and consistent, as configured.

    Logic: in text columns an empty string, or one made only of whitespace, is either kept
    as it is (``mode="keep"``, the default for columns not listed), turned into null
    (``mode="null"``), or trimmed (``mode="strip"``). The choice is explicit per pipeline,
    never implicit, because a silent conversion between empty string and null is one of the
    data-quality bugs the library promises not to have. Only string columns are touched;
    ``columns`` limits it to some of them (default: every string column).
    """

    def __init__(self, mode: str = "null", columns: Sequence[str] | None = None):
        if mode not in ("null", "strip", "keep"):
            raise ETLConfigError(f"NormalizeEmpty: mode {mode!r} is not 'null', 'strip' or 'keep'")
        self.mode = mode
        names = name_list(columns, "columns", "NormalizeEmpty")
        self.columns = [normalize_name(c) for c in names] if names else None

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.mode == "keep":
            return batch
        for i, f in enumerate(batch.schema):
            if not pa.types.is_string(f.type) or (
                self.columns is not None and f.name not in self.columns
            ):
                continue
            col = batch.column(i)
            stripped = pc.utf8_trim_whitespace(col)
            if self.mode == "strip":
                new = stripped
            else:
                new = pc.if_else(pc.equal(stripped, ""), pa.scalar(None, pa.string()), col)
            batch = batch.set_column(i, f, new)
        return batch

    def lineage(self, schema: pa.Schema) -> Lineage:
        return {n: (n,) for n in schema.names}

    def carried(self, schema: pa.Schema) -> dict[str, str]:
        return {n: n for n in schema.names}

    def required_columns(self) -> list[str]:
        return list(self.columns or ())

    def __repr__(self) -> str:
        return f"NormalizeEmpty(mode={self.mode!r})"


__all__ = ["Derive", "Filter", "NormalizeEmpty"]
