"""``Generalize``: coarsen values so that many people share each one."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import re2

from .._validate import name_list
from ..errors import AnonymizationError
from .base import Anonymizer
from .columns import canonical_all, column_index
from .normalize import on_distinct
from .regions import REGIONS

_TEMPORAL = ("day", "month", "quarter", "year")
_REGION_RX = r"(?:^|[^\p{L}])(?P<m>" + "|".join(f"(?:{stems})" for _, stems in REGIONS) + ")"
_REGION_OF = [(name, re2.compile(f"^(?:{stems})")) for name, stems in REGIONS]


def _number_label(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def region_of(text: pa.Array) -> pa.Array:
    """The federal subject named in each address or city (``None`` when none is recognized);
    once per distinct value when values repeat (a city column)."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    return on_distinct(pc.cast(text, pa.string()), _region_of)


def _region_of(text: pa.Array) -> pa.Array:
    norm = pc.replace_substring(pc.utf8_lower(text), "ё", "е")
    extracted = pc.extract_regex(norm, _REGION_RX)
    found = pc.if_else(
        pc.is_valid(extracted), pc.struct_field(extracted, "m"), pa.scalar(None, pa.string())
    )
    encoded = pc.dictionary_encode(found)
    names = []
    for matched in encoded.dictionary.to_pylist():
        names.append(next((name for name, rx in _REGION_OF if rx.search(matched)), None))
    return pc.take(pa.array(names, pa.string()), encoded.indices)


class Generalize(Anonymizer):
    """Replaces precise values with coarser ones: dates by month or year, numbers by
    buckets, addresses and cities by region.

    Logic: exactly one rule applies to all the named columns. ``to="month"`` (or
    ``"day"``, ``"quarter"``, ``"year"``) truncates dates and timestamps to the start of that
    period with Arrow's ``floor_temporal``, keeping the column's type: a birth date becomes
    its year. ``bins=[18, 30, 45, 65]`` puts numbers into half-open buckets labelled
    ``"<18"``, ``"18-30"``, ..., ``"65+"``; ``width=10`` into equal buckets ``"30-40"``
    (ages, amounts, salaries). ``to="region"`` reads an address or city name and keeps only
    the federal subject (``"г. Химки, ул. Ленина 5"`` -> ``"Московская область"``), from a
    built-in table of all subjects with their centres and largest cities; anything it does
    not recognize becomes null, never the original text. The precise value is discarded and
    many different inputs map to each output, so it cannot be recovered; combine with
    :class:`KAnonymity` to check that every combination is shared by at least k people.

    Example::

        Generalize(["birth_date"], to="year")
        Generalize(["age"], bins=[18, 30, 45, 65])
        Generalize(["address"], to="region")
    """

    def __init__(
        self,
        columns: str | Sequence[str],
        *,
        to: str | None = None,
        bins: Sequence[float] | None = None,
        width: float | None = None,
    ):
        self.columns = canonical_all(name_list(columns, "columns", type(self).__name__))
        given = [x for x in (to, bins, width) if x is not None]
        if len(given) != 1:
            raise AnonymizationError(
                "Generalize needs exactly one of to=, bins= or width=",
                hint="Generalize(['birth_date'], to='year'), Generalize(['age'], bins=[18, 30, 45]), "
                "Generalize(['salary'], width=10000) or Generalize(['city'], to='region')",
            )
        if to is not None and to not in (*_TEMPORAL, "region"):
            raise AnonymizationError(
                f"Generalize: to={to!r} is not one of {[*_TEMPORAL, 'region']}"
            )
        if bins is not None:
            edges = [float(b) for b in bins]
            if not edges or any(b >= a for a, b in zip(edges[1:], edges)):
                raise AnonymizationError(
                    "Generalize: bins must be a non-empty increasing list of numbers"
                )
            self.bins: np.ndarray | None = np.array(edges)
        else:
            self.bins = None
        if width is not None and width <= 0:
            raise AnonymizationError(f"Generalize: width must be > 0, got {width}")
        self.to = to
        self.width = width

    def __repr__(self) -> str:
        rule = (
            f"to={self.to!r}"
            if self.to
            else f"bins={self.bins.tolist()!r}"
            if self.bins is not None
            else f"width={self.width!r}"
        )
        return f"Generalize(columns={list(self.columns)!r}, {rule})"

    def generalize(self, arr: pa.Array, column: str = "column") -> pa.Array:
        """The generalized copy of one column."""
        if self.to == "region":
            return region_of(arr)
        if self.to is not None:
            if not (pa.types.is_date(arr.type) or pa.types.is_timestamp(arr.type)):
                raise AnonymizationError(
                    f"Generalize(to={self.to!r}) needs a date or timestamp column, but {column!r} is {arr.type}",
                    hint="cast it to a date first (Cast transformer)",
                )
            return pc.floor_temporal(arr, unit=self.to)
        if not (
            pa.types.is_integer(arr.type)
            or pa.types.is_floating(arr.type)
            or pa.types.is_decimal(arr.type)
        ):
            raise AnonymizationError(
                f"Generalize(bins/width) needs a numeric column, but {column!r} is {arr.type}",
                hint="cast it to a number first (Cast transformer)",
            )
        values = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        valid = ~np.isnan(values)
        if self.bins is not None:
            edges = self.bins
            labels = [f"<{_number_label(edges[0])}"]
            labels += [
                f"{_number_label(a)}-{_number_label(b)}" for a, b in itertools.pairwise(edges)
            ]
            labels.append(f"{_number_label(edges[-1])}+")
            idx = np.searchsorted(edges, np.where(valid, values, 0), side="right")
            out = pa.array(labels, pa.string()).take(pa.array(idx))
        else:
            assert self.width is not None
            low = np.floor(np.where(valid, values, 0) / self.width) * self.width
            distinct, inverse = np.unique(low, return_inverse=True)
            labels = [f"{_number_label(x)}-{_number_label(x + self.width)}" for x in distinct]
            out = pa.array(labels, pa.string()).take(pa.array(inverse.reshape(-1)))
        return pc.if_else(pa.array(valid), out, pa.scalar(None, pa.string()))

    def anonymize(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        for column in self.columns:
            i = column_index(batch.schema, column, "Generalize")
            col = batch.column(i)
            col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
            out = self.generalize(col, column)
            batch = batch.set_column(i, pa.field(column, out.type), out)
        return batch


__all__ = ["Generalize", "region_of"]
