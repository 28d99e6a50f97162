"""The ``Source`` contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from ..format import Batch

Partition = dict[str, Any]


class Source(ABC):
    """Reads one system and yields :class:`~etl_express.format.Batch` objects.

    A source never writes to the system it reads. Each yielded batch carries the
    ``position`` reached after it (any JSON-serializable value); the pipeline commits it as
    the checkpoint in the same transaction as the rows and hands it back on the next run, so
    ``read`` must resume strictly *after* ``position``.

    Subclasses implement one method, :meth:`read`; :meth:`partitions` and :meth:`schema`
    are optional. Example — a source over an in-memory list, resumable by index::

        class ListSource(Source):
            def __init__(self, rows, batch_size=1000):
                self.rows, self.batch_size = rows, batch_size
                self.name, self.primary_key = "list", ["id"]

            def read(self, position=None, partition=None):
                start = position or 0
                for i in range(start, len(self.rows), self.batch_size):
                    chunk = self.rows[i : i + self.batch_size]
                    yield Batch(chunk, position=i + len(chunk))

    Attributes every source has:

    * ``name`` — written to the ``_etl_source`` lineage column and used in messages;
    * ``primary_key`` — column names; the sink upserts on them (replays never duplicate);
    * ``pii`` — columns holding personal data: a pipeline refuses to start unless an
      anonymizer covers each of them;
    * ``incremental`` — ``True`` when a re-run reads only what changed since the checkpoint.
    """

    name: str = "source"
    primary_key: Sequence[str] = ()
    pii: Sequence[str] = ()
    incremental: bool = False

    @abstractmethod
    def read(self, position: Any = None, partition: Partition | None = None) -> Iterator[Batch]:
        """Yield batches after ``position`` (``None``: from the start) within ``partition``."""

    def partitions(self, n: int | None = None) -> list[Partition]:
        """Split the source into about ``n`` JSON-serializable partition specs (default: one, ``{}``).

        The contract (what ``pipeline.run(partition=spec)`` and ``run(workers=n)`` rely on):
        each spec is a dict of JSON values that :meth:`read` understands; the specs are
        disjoint and together cover the whole source, including rows added later (leave
        the last range open); ``{}`` means the whole source; ``n`` is a hint (return fewer
        when the data cannot be split further). Each spec keeps its own checkpoint, keyed
        by the spec's canonical JSON, so specs must come out the same for the same data —
        e.g. ``{"column": "id", "lo": 1000, "hi": 2000}``, ``{"files": [...]}``,
        ``{"parent": 42}`` or ``{"from": "2024-01-01", "to": "2024-02-01"}``.
        """
        return [{}]

    def schema(self) -> pa.Schema | None:
        """The declared schema, when the source knows it; ``None`` lets the pipeline infer it."""
        return None

    def discover_schema(self) -> pa.Schema | None:
        """The columns the batches will have, found without reading rows (table reflection,
        file headers), in the common format; ``None`` when the source cannot tell before
        reading. Optional: the pipeline uses it to check every configured column before
        anything is read or written, and otherwise checks on the first batch."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


__all__ = ["Partition", "Source"]
