"""``KAnonymity``: measure and enforce the smallest class of quasi-identifiers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._validate import name_list
from ..errors import AnonymizationError
from ..quality import CheckResult, Policy, judge
from .base import Anonymizer
from .columns import canonical_all, column_index


def _column(batch: pa.RecordBatch, name: str, owner: str) -> pa.Array:
    col = batch.column(column_index(batch.schema, name, owner))
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def class_sizes(
    batch: pa.RecordBatch, quasi_identifiers: Sequence[str], owner: str = "KAnonymity"
) -> np.ndarray:
    """For each row, how many rows of the batch share its quasi-identifier values.

    Each column is dictionary-encoded (nulls form a class of their own), the codes are
    combined into one class code per row, and the classes are counted with ``bincount``.
    """
    n = batch.num_rows
    codes = np.zeros(n, dtype=np.int64)
    for name in quasi_identifiers:
        encoded = pc.dictionary_encode(_column(batch, name, owner), null_encoding="encode")
        idx = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        codes = codes * max(len(encoded.dictionary), 1) + idx
        _, codes = np.unique(codes, return_inverse=True)  # keep codes small: no overflow
        codes = codes.reshape(-1)
    counts = np.bincount(codes, minlength=1) if n else np.zeros(0, dtype=np.int64)
    return counts[codes] if n else np.zeros(0, dtype=np.int64)


def smallest_class(batch: pa.RecordBatch, quasi_identifiers: Sequence[str]) -> int | None:
    """The size of the smallest equivalence class (``None`` for an empty batch)."""
    sizes = class_sizes(batch, quasi_identifiers)
    return int(sizes.min()) if len(sizes) else None


class KAnonymity(Anonymizer):
    """Measures k-anonymity over quasi-identifiers and fails or suppresses rows below ``k``.

    Logic: in every batch the rows are grouped by the quasi-identifier columns (age band,
    region, gender...); a group is an equivalence class and its size is how many people
    share that combination. Classes smaller than ``k`` single people out. With
    ``on_violation="fail"`` (default) the batch is refused with an
    :class:`~etl_express.AnonymizationError` naming the columns and the class size, never
    the values; with ``"suppress"`` the rows of small classes are dropped (the pipeline counts
    them as filtered). Because every written class has at least ``k`` rows in its own batch,
    the run's classes, which only add batches up, have at least ``k`` rows too. The class
    counts of the written rows are also summed over the run, and :meth:`checks` returns a
    ``k_anonymity`` :class:`~etl_express.CheckResult` with the smallest class, which the
    pipeline records in ``etl_express.quality_checks``. Generalize the quasi-identifiers
    first (:class:`Generalize`) so that few rows need suppressing.

    Args:
        quasi_identifiers: columns that together could single a person out.
        k: the smallest class size allowed (>= 2).
        on_violation: ``"fail"`` or ``"suppress"``.
        policy: policy of the recorded quality check (``fail``, ``warn`` or ``ignore``).

    Example::

        KAnonymity(["birth_year", "region", "gender"], k=5, on_violation="suppress")
    """

    row_wise = False

    def __init__(
        self,
        quasi_identifiers: Sequence[str],
        k: int,
        *,
        on_violation: Literal["fail", "suppress"] = "fail",
        policy: Policy = "fail",
    ):
        quasi_identifiers = name_list(quasi_identifiers, "quasi_identifiers", "KAnonymity")
        if not quasi_identifiers:
            raise AnonymizationError("KAnonymity needs at least one quasi-identifier column")
        if not isinstance(k, int) or k < 2:
            raise AnonymizationError(f"KAnonymity: k must be an integer >= 2, got {k!r}")
        if on_violation not in ("fail", "suppress"):
            raise AnonymizationError(
                f"KAnonymity: on_violation={on_violation!r} is not 'fail' or 'suppress'"
            )
        self.quasi_identifiers = canonical_all(quasi_identifiers)
        self.columns = self.quasi_identifiers
        self.k = k
        self.on_violation = on_violation
        self.policy = policy
        self.reset()

    def __repr__(self) -> str:
        return (
            f"KAnonymity(quasi_identifiers={list(self.quasi_identifiers)!r}, k={self.k}, "
            f"on_violation={self.on_violation!r})"
        )

    def covers(self) -> set[str]:
        """Its quasi-identifiers: every written combination of them is shared by ``k`` rows."""
        return set(self.quasi_identifiers)

    def reset(self) -> None:
        self.rows = 0
        self.rows_suppressed = 0
        self.smallest_batch_class: int | None = None
        self._counts: list[pa.Table] = []

    def measure(self, batch: pa.RecordBatch) -> int | None:
        """The smallest class of ``batch`` (no enforcement)."""
        sizes = class_sizes(batch, self.quasi_identifiers)
        return int(sizes.min()) if len(sizes) else None

    def anonymize(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        sizes = class_sizes(batch, self.quasi_identifiers)
        if not len(sizes):
            return batch
        low = sizes < self.k
        smallest = int(sizes.min())
        if self.smallest_batch_class is None or smallest < self.smallest_batch_class:
            self.smallest_batch_class = smallest
        if low.any():
            if self.on_violation == "fail":
                raise AnonymizationError(
                    f"k-anonymity violated: the smallest class of quasi-identifiers "
                    f"{list(self.quasi_identifiers)} has {smallest} row(s), k={self.k} "
                    f"({int(low.sum())} row(s) in classes below k)",
                    hint="generalize these columns further (Generalize) or use on_violation='suppress'",
                )
            self.rows_suppressed += int(low.sum())
            batch = batch.filter(pa.array(~low))
        self._count(batch)
        return batch

    def _count(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self.rows += batch.num_rows
        table = pa.Table.from_batches([batch])
        table = table.select(
            [column_index(table.schema, c, "KAnonymity") for c in self.quasi_identifiers]
        )
        table = table.rename_columns(list(self.quasi_identifiers))
        keys = list(self.quasi_identifiers)
        counted = table.group_by(keys, use_threads=False).aggregate([([], "count_all")])
        self._counts.append(counted.select([*keys, "count_all"]))

    def run_smallest_class(self) -> int | None:
        """The smallest class over all rows let through since the last :meth:`reset`."""
        if not self._counts:
            return None
        total = pa.concat_tables(self._counts, promote_options="permissive")
        keys = list(self.quasi_identifiers)
        summed = total.group_by(keys, use_threads=False).aggregate([("count_all", "sum")])
        self._counts = [
            summed.select([*keys, "count_all_sum"]).rename_columns([*keys, "count_all"])
        ]
        return int(pc.min(summed.column("count_all_sum")).as_py())

    def check(self) -> CheckResult:
        """The ``k_anonymity`` check result of the rows seen since the last reset."""
        smallest = self.run_smallest_class()
        return judge(
            "k_anonymity",
            smallest is None or smallest >= self.k,
            self.policy,
            k=self.k,
            quasi_identifiers=list(self.quasi_identifiers),
            smallest_class=smallest,
            smallest_class_in_a_batch=self.smallest_batch_class,
            rows=self.rows,
            rows_suppressed=self.rows_suppressed,
            on_violation=self.on_violation,
        )

    def checks(self) -> list[CheckResult]:
        """The run's ``k_anonymity`` result; the counts start afresh afterwards."""
        result = self.check()
        self.reset()
        return [result]


__all__ = ["KAnonymity", "class_sizes", "smallest_class"]
