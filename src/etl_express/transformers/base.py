"""The ``Transformer`` contract."""

from __future__ import annotations

from abc import ABC, abstractmethod

import pyarrow as pa


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

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


__all__ = ["Transformer"]
