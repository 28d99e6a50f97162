"""``Redact``, ``Mask`` and ``Suppress``: remove values, parts of values, columns or rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._validate import name_list
from ..errors import AnonymizationError
from .base import Anonymizer
from .columns import canonical_all, column_index
from .kanonymity import class_sizes


def _columns(columns: str | Sequence[str], owner: str) -> tuple[str, ...]:
    return canonical_all(name_list(columns, "columns", owner))


class Redact(Anonymizer):
    """Replaces every value of the columns with one constant.

    Logic: each non-null value of each named column is replaced by ``replacement`` (default
    ``"<REDACTED>"``; ``None`` turns the whole column into nulls of its own type). Nulls stay
    null, so "no value" remains distinguishable from "value removed". The column stays in the
    table with the same name, so downstream code and schemas keep working, but nothing of the
    original value is left: not its length, its characters or its format. Use it for columns
    nobody downstream needs at all but whose presence the schema expects; use
    :class:`Suppress` to drop the column instead and :class:`Pseudonymize` when joins on the
    value must keep working.

    Example::

        Redact(["comment", "home_address"])
    """

    def __init__(self, columns: str | Sequence[str], replacement: str | None = "<REDACTED>"):
        self.columns = _columns(columns, type(self).__name__)
        self.replacement = replacement

    def anonymize(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        for column in self.columns:
            i = column_index(batch.schema, column, "Redact")
            col = batch.column(i)
            if self.replacement is None:
                batch = batch.set_column(
                    i, batch.schema.field(i), pa.nulls(batch.num_rows, col.type)
                )
                continue
            filled = pc.if_else(
                pc.is_valid(col),
                pa.scalar(self.replacement, pa.string()),
                pa.scalar(None, pa.string()),
            )
            batch = batch.set_column(i, pa.field(column, pa.string()), filled)
        return batch


class Mask(Anonymizer):
    """Keeps a declared prefix and/or suffix of each value and hides the rest.

    Logic: each value is taken as text; its first ``keep_first`` and last ``keep_last``
    characters are kept and everything between is replaced by a fixed run of ``width`` mask
    characters (``+7****67``), so the hidden part's length is not revealed either. Keeping
    characters is only allowed where it is safe: when the kept characters would be more than
    ``max_revealed`` (default one third, at most one half) of a value's length, that value is
    masked completely. So a short value is never "masked" down to almost itself, and a card
    number cannot keep its first six and last four digits. Configuring more than half as
    revealed is refused. Everything runs as Arrow string kernels.

    Example::

        Mask(["phone"], keep_last=2)        # "+79161234567" -> "****67"
    """

    def __init__(
        self,
        columns: str | Sequence[str],
        *,
        keep_first: int = 0,
        keep_last: int = 0,
        char: str = "*",
        width: int = 4,
        max_revealed: float = 1 / 3,
    ):
        if keep_first < 0 or keep_last < 0:
            raise AnonymizationError("Mask: keep_first and keep_last must be >= 0")
        if len(char) != 1:
            raise AnonymizationError(f"Mask: char must be one character, got {len(char)}")
        if width < 1:
            raise AnonymizationError("Mask: width must be >= 1")
        if not 0 <= max_revealed <= 0.5:
            raise AnonymizationError(
                f"Mask: max_revealed={max_revealed} would reveal more than half of a value",
                hint="keep max_revealed between 0 and 0.5, or use Pseudonymize to keep values joinable",
            )
        self.columns = _columns(columns, type(self).__name__)
        self.keep_first = keep_first
        self.keep_last = keep_last
        self.char = char
        self.width = width
        self.max_revealed = max_revealed

    def __repr__(self) -> str:
        return f"Mask(columns={list(self.columns)!r}, keep_first={self.keep_first}, keep_last={self.keep_last})"

    def mask(self, arr: pa.Array) -> pa.Array:
        text = arr if pa.types.is_string(arr.type) else pc.cast(arr, pa.string())
        fill = pa.scalar(self.char * self.width, pa.string())
        kept = self.keep_first + self.keep_last
        if kept == 0:
            return pc.if_else(pc.is_valid(text), fill, pa.scalar(None, pa.string()))
        length = pc.utf8_length(text)
        safe = pc.less_equal(
            pa.scalar(float(kept)), pc.multiply(pc.cast(length, pa.float64()), self.max_revealed)
        )
        head = pc.utf8_slice_codeunits(text, 0, self.keep_first)
        tail = (
            pc.utf8_slice_codeunits(text, -self.keep_last, 2**31 - 1)
            if self.keep_last
            else pa.repeat(pa.scalar("", pa.string()), len(text))
        )
        partial = pc.binary_join_element_wise(head, fill, tail, "")
        return pc.if_else(
            pc.fill_null(safe, False),
            partial,
            pc.if_else(pc.is_valid(text), fill, pa.scalar(None, pa.string())),
        )

    def anonymize(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        for column in self.columns:
            i = column_index(batch.schema, column, "Mask")
            col = batch.column(i)
            col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
            batch = batch.set_column(i, pa.field(column, pa.string()), self.mask(col))
        return batch


class Suppress(Anonymizer):
    """Drops columns, or the rows whose quasi-identifier class is too small.

    Logic: ``Suppress(columns)`` removes the named columns from every batch before anything
    is written, so the target table never gets them; it covers those columns for the
    personal-data check. ``Suppress(quasi_identifiers=[...], k=5)`` groups each batch by the
    quasi-identifier columns and drops every row whose group has fewer than ``k`` rows: the
    rare combinations (one 97-year-old in a small town) that would single a person out. The
    dropped rows are counted as filtered by the pipeline, and :attr:`rows_suppressed` tells
    how many. Both forms can be combined: rows first, then columns. Nothing is kept of what
    is dropped. For a measured, recorded k-anonymity gate use :class:`KAnonymity`.

    Example::

        Suppress(["passport_scan", "free_comment"])
        Suppress(quasi_identifiers=["birth_year", "city"], k=5)
    """

    def __init__(
        self,
        columns: str | Sequence[str] = (),
        *,
        quasi_identifiers: Sequence[str] | None = None,
        k: int | None = None,
    ):
        self.columns = _columns(columns, type(self).__name__)
        if (quasi_identifiers is None) != (k is None):
            raise AnonymizationError(
                "Suppress: give quasi_identifiers and k together",
                hint="Suppress(quasi_identifiers=['birth_year', 'city'], k=5)",
            )
        if k is not None and (not isinstance(k, int) or k < 2):
            raise AnonymizationError(f"Suppress: k must be an integer >= 2, got {k!r}")
        if not self.columns and not quasi_identifiers:
            raise AnonymizationError("Suppress needs columns to drop or quasi_identifiers and k")
        self.quasi_identifiers = canonical_all(quasi_identifiers or ())
        self.k = k
        self.rows_suppressed = 0
        # with a row rule it judges populations: not applied to single quarantined records
        self.row_wise = not self.quasi_identifiers

    def __repr__(self) -> str:
        extra = (
            f", quasi_identifiers={list(self.quasi_identifiers)!r}, k={self.k}" if self.k else ""
        )
        return f"Suppress(columns={list(self.columns)!r}{extra})"

    def anonymize(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.k is not None and batch.num_rows:
            low = class_sizes(batch, self.quasi_identifiers, "Suppress") < self.k
            if low.any():
                self.rows_suppressed += int(low.sum())
                batch = batch.filter(pa.array(np.logical_not(low)))
        for column in self.columns:
            batch = batch.remove_column(column_index(batch.schema, column, "Suppress"))
        return batch

    def covers(self) -> set[str]:
        """The dropped columns and the quasi-identifiers of the row rule."""
        return {*self.columns, *self.quasi_identifiers}

    def required_columns(self) -> list[str]:
        return [
            *self.quasi_identifiers,
            *(c for c in self.columns if c not in self.quasi_identifiers),
        ]

    def output_columns(self, names: list[str]) -> list[str]:
        return [n for n in names if n not in self.columns]


__all__ = ["Mask", "Redact", "Suppress"]
