"""The ``Sink`` contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlalchemy.engine import Connection

from ..store.tables import TableName

if TYPE_CHECKING:
    from ..secrets.ref import SecretLike


class Sink(ABC):
    """Writes canonical Arrow batches.

    The pipeline calls :meth:`write` inside an open transaction on the state database
    (``conn``) and commits the batch's checkpoint on that same connection right after, so
    a sink that writes through ``conn`` gets exactly-once for free: rows and checkpoint land
    together or not at all (that is what :class:`~etl_express.sinks.PostgresSink` does).
    A sink that writes elsewhere (files) must make its writes idempotent — the same batch
    written twice leaves one copy — since a crash between its write and the commit replays
    the batch.

    ``state_url`` says which PostgreSQL holds the pipeline's state (checkpoints, runs,
    quarantine); ``None`` means the default store (``ETL_EXPRESS_DATABASE_URL`` or the
    embedded server). Example — a sink that collects batches in memory::

        class MemorySink(Sink):
            def __init__(self):
                self.batches = []

            def write(self, conn, batch, primary_key):
                self.batches.append(batch)
                return batch.num_rows
    """

    state_url: SecretLike | None = None

    def prepare(self, conn: Connection, schema: pa.Schema, primary_key: Sequence[str]) -> None:
        """Create or migrate the target for ``schema`` (called before each batch's write
        when the schema changed; must be idempotent)."""

    @abstractmethod
    def write(self, conn: Connection, batch: pa.RecordBatch, primary_key: Sequence[str]) -> int:
        """Write ``batch``; return the number of rows written."""

    def target_table(self) -> TableName | None:
        """The table this sink loads in the state database, which quality checks, status
        and quarantine replay then read (``None``, the default: the sink writes elsewhere,
        e.g. files)."""
        return None

    def close(self) -> None:
        """Flush and release what the run used. Called exactly once per run (each partition
        run, in the process that ran it), after its last batch: before the run counts as
        succeeded — an exception here fails the run — or after it failed. The same sink
        object serves the pipeline's next run, so keep it reusable."""

    def rollback(self) -> None:
        """Forget anything cached during a batch whose transaction rolled back (the
        pipeline calls this before retrying), e.g. "the target table exists"."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


__all__ = ["Sink"]
