"""The ``Transformer`` contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import pyarrow as pa

#: output column -> the input columns its values are computed from
Lineage = dict[str, tuple[str, ...]]


class Transformer(ABC):
    """Reshapes a canonical Arrow batch: rename, cast, filter, derive, normalize.

    One method, :meth:`transform`, that takes and returns a ``pyarrow.RecordBatch``. Use
    vectorized kernels (``pyarrow.compute``) rather than Python loops over rows. Example::

        import pyarrow.compute as pc

        class Uppercase(Transformer):
            def __init__(self, column):
                self.column = column

            def transform(self, batch):
                i = batch.schema.get_field_index(self.column)
                return batch.set_column(i, self.column, pc.utf8_upper(batch.column(i)))

            def lineage(self, schema):  # every column comes from itself alone
                return {name: (name,) for name in schema.names}

    Personal data is tracked by where it flows (see docs/anonymization.md): before anything
    is read, the pipeline asks each step :meth:`lineage` — which output columns come from
    which input columns. A step that does not say is taken as computing every output column
    from every input column, so one personal column makes all its outputs personal; declare
    the real lineage to keep the other columns free.
    """

    @abstractmethod
    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Return the reshaped batch."""

    def transform_rows(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[tuple[int, str]]]:
        """Like :meth:`transform`, also returning the rows this step refuses, as
        ``(index in batch, reason)`` — the reason names the column, never the value.

        The pipeline calls this one: refused rows go to quarantine (anonymized) and count in
        the error budget, the returned batch (without them) goes on. Override it in a step
        that converts values and can fail on some of them (see ``Cast(on_error=...)``).
        By default nothing is refused.
        """
        return self.transform(batch), []

    def lineage(self, schema: pa.Schema) -> Lineage:
        """Which input columns (of ``schema``) each output column is computed from, in the
        order of the output columns: ``{"full_name": ("first", "last"), "id": ("id",)}``.

        Called before anything is read, with the columns the step will receive (their types
        may be approximate, and a configured column may be missing: ignore it, the pipeline
        reports it). The default runs :meth:`transform` on an empty batch for the output
        names and takes each of them as computed from every input column.
        """
        out = self.transform(pa.RecordBatch.from_pylist([], schema=schema))
        return {name: tuple(schema.names) for name in out.schema.names}

    def carried(self, schema: pa.Schema) -> dict[str, str]:
        """The output columns whose values are one input column's values unchanged (renamed,
        cast, filtered), output -> input. A record this step refuses is stored in quarantine
        only after each of its personal columns is anonymized as the column it is carried
        to; a personal column carried nowhere is dropped from it. Default: none."""
        return {}

    def required_columns(self) -> Sequence[str]:
        """The input columns this step is configured with (checked with every other
        configured name before anything is read). Default: none."""
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


__all__ = ["Lineage", "Transformer"]
