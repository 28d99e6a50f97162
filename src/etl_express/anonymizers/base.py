"""The ``Anonymizer`` contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from .columns import canonical_all

if TYPE_CHECKING:
    from ..quality import CheckResult


class Anonymizer(ABC):
    """Destroys personal data in a batch, irreversibly.

    Anonymizers run after the transformers and before anything is written anywhere — the
    sink, quarantine, logs or error messages. Implement :meth:`anonymize`; declare the
    columns you protect in ``columns`` so the pipeline can check that every column tagged
    as personal data is covered and that every configured column exists (any spelling
    resolves to the common format's snake_case name; look columns up with
    :func:`etl_express.anonymizers.columns.column_index`, which raises on a missing one).
    Nothing reversible belongs here: no encryption, no mapping tables. Example::

        from etl_express.anonymizers.columns import canonical, column_index

        class DropColumn(Anonymizer):
            def __init__(self, column):
                self.columns = (canonical(column),)

            def anonymize(self, batch):
                i = column_index(batch.schema, self.columns[0], "DropColumn")
                return batch.remove_column(i)

            def output_columns(self, names):
                return [n for n in names if n != self.columns[0]]
    """

    columns: Sequence[str] = ()

    #: ``False`` for anonymizers that judge a population of rows (k-anonymity, small-class
    #: suppression): a single quarantined record is a class of one, so instead of running
    #: them there, every column they need (their quasi-identifiers) is dropped from it.
    row_wise: bool = True

    #: what covering a column means: ``"any"`` — the column is protected whatever it holds
    #: (Pseudonymize, Redact, Mask, Generalize, Suppress); ``"free_text"`` — only personal
    #: data found inside free text is replaced (ScrubPII), so it never covers a column tagged
    #: as personal data nor one derived from structured personal data.
    protects: str = "any"

    @abstractmethod
    def anonymize(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Return the batch with the covered columns anonymized."""

    def covers(self) -> set[str]:
        """The columns this anonymizer protects (used by the personal-data check), by their
        canonical (snake_case) names."""
        return set(canonical_all(self.columns)) if self.columns else set()

    def required_columns(self) -> list[str]:
        """The canonical columns the batch must have (checked before anything is written;
        a configured column the batch lacks is an ``ETLConfigError``, never skipped)."""
        return list(canonical_all(self.columns)) if self.columns else []

    def output_columns(self, names: list[str]) -> list[str]:
        """The columns left after this anonymizer, given the ones it receives (override
        when columns are dropped)."""
        return names

    def reset(self) -> None:
        """Forget what was gathered about earlier batches (called when a run starts)."""

    def checks(self) -> list[CheckResult]:
        """Quality-check results gathered since the last call (the pipeline records them in
        ``etl_express.quality_checks`` at the end of a run); most anonymizers have none."""
        return []

    def __repr__(self) -> str:  # never shows keys or other secrets
        return f"{type(self).__name__}(columns={list(self.columns)!r})"


__all__ = ["Anonymizer"]
