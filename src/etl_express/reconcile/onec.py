"""1C marks an object for deletion (``DeletionMark``) before it purges it: with
``deletes="soft"`` the mark becomes the target's ``_etl_deleted_at``."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ETLConfigError
from ..format import DELETED_AT, TIMESTAMP
from ..store.schema import now
from ..transformers.base import Transformer

MARK = "deletion_mark"  # DeletionMark in the common format's snake_case


class DeletionMarkToDeletedAt(Transformer):
    """Sets ``_etl_deleted_at`` (the time of the load) on rows whose ``deletion_mark`` is true
    and clears it on the others, so an object whose mark is removed comes back."""

    def __init__(self) -> None:
        self.marked = 0

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if MARK not in batch.schema.names:
            raise ETLConfigError(
                "deletes='soft' on a 1C source needs the DeletionMark field, which the batch "
                "does not have",
                where={"columns": ", ".join(batch.schema.names[:20])},
                hint="add DeletionMark to select=[...] (or drop it from a Select transformer)",
            )
        mark = pc.fill_null(batch.column(MARK).cast(pa.bool_()), False)
        self.marked += int(pc.sum(mark).as_py() or 0)
        deleted = pc.if_else(mark, pa.scalar(now(), TIMESTAMP), pa.scalar(None, TIMESTAMP))
        i = batch.schema.get_field_index(DELETED_AT)
        if i >= 0:
            batch = batch.remove_column(i)
        return batch.append_column(pa.field(DELETED_AT, TIMESTAMP), deleted)

    def __repr__(self) -> str:
        return "DeletionMarkToDeletedAt()"


__all__ = ["DeletionMarkToDeletedAt"]
