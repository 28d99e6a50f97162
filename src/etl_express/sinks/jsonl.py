"""``JSONLSink``: export snapshots as JSON Lines files for ML tooling."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from ..format import to_records
from ..secrets import SecretLike
from .files import FileExportSink


class JSONLSink(FileExportSink):
    """Writes each batch as one JSON Lines file in an export folder.

    Logic: every batch becomes one file, ``<path>/<partition>/part-<key>-<n>.jsonl``, one
    JSON object a line in the common format (timestamps as ISO 8601 strings, decimals as
    strings, the lineage columns included), UTF-8 without escaping Cyrillic. The key is a
    hash of the pipeline, the partition and the checkpoint the batch started from, which is
    the same when a batch is replayed after a crash — the replay overwrites the orphan file
    instead of adding a duplicate. Files are written to a temporary name and renamed with
    ``os.replace``, so a reader never sees half a file. Each run keeps a manifest,
    ``<path>/_runs/<run id>.json``, listing its files with their row counts and the schema.
    Pipeline state (checkpoints, runs) lives in PostgreSQL at ``state_url`` (``None``: the
    default store).

    Example::

        etl.Pipeline("crm_export", source, anonymizers=[...], sink=JSONLSink("exports/crm")).run()
    """

    suffix = ".jsonl"
    format = "jsonl"

    def __init__(self, path: str | Path, *, state_url: SecretLike | None = None):
        super().__init__(path, state_url=state_url)

    def write_file(self, path: Path, batch: pa.RecordBatch) -> None:
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            for record in to_records(batch):
                f.write(json.dumps(record, ensure_ascii=False))
                f.write("\n")


__all__ = ["JSONLSink"]
