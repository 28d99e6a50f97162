"""The ``Anonymizer`` contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import pyarrow as pa


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

    @abstractmethod
    def anonymize(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Return the batch with the covered columns anonymized."""

    def covers(self) -> set[str]:
        """The columns this anonymizer protects (used by the personal-data check)."""
        return set(self.columns)

    def __repr__(self) -> str:  # never shows keys or other secrets
        return f"{type(self).__name__}(columns={list(self.columns)!r})"


__all__ = ["Anonymizer"]
