"""The ``Anonymizer`` contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from ..quality import CheckResult


class Anonymizer(ABC):
    """Destroys personal data in a batch, irreversibly.

    Anonymizers run after the transformers and before anything is written anywhere — the
    sink, quarantine, logs or error messages. Implement :meth:`anonymize`; declare the
    columns you protect in ``columns`` so the pipeline can check that every column tagged
    as personal data is covered. Nothing reversible belongs here: no encryption, no mapping
    tables. Example::

        import pyarrow as pa

        class DropColumn(Anonymizer):
            def __init__(self, column):
                self.columns = (column,)

            def anonymize(self, batch):
                i = batch.schema.get_field_index(self.columns[0])
                return batch if i < 0 else batch.remove_column(i)
    """

    columns: Sequence[str] = ()

    #: ``False`` for anonymizers that judge a population of rows (k-anonymity, small-class
    #: suppression): they make no sense on a single quarantined record and are skipped there.
    row_wise: bool = True

    @abstractmethod
    def anonymize(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Return the batch with the covered columns anonymized."""

    def covers(self) -> set[str]:
        """The columns this anonymizer protects (used by the personal-data check)."""
        return set(self.columns)

    def reset(self) -> None:
        """Forget what was gathered about earlier batches (called when a run starts)."""

    def checks(self) -> list[CheckResult]:
        """Quality-check results gathered since the last call (the pipeline records them in
        ``etl_express.quality_checks`` at the end of a run); most anonymizers have none."""
        return []

    def __repr__(self) -> str:  # never shows keys or other secrets
        return f"{type(self).__name__}(columns={list(self.columns)!r})"


__all__ = ["Anonymizer"]
