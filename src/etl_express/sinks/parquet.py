"""``ParquetSink``: export snapshots as Parquet files for ML tooling."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ETLConfigError
from ..secrets import SecretLike
from .files import FileExportSink

COMPRESSIONS = ("zstd", "snappy", "gzip", "brotli", "lz4", "none")


class ParquetSink(FileExportSink):
    """Writes each batch as one Parquet file in an export folder.

    Logic: every batch becomes one file, ``<path>/<partition>/part-<key>-<n>.parquet``,
    with the batch's canonical Arrow schema (timestamps in UTC, decimals exact, nested
    values as JSON text, the lineage columns included) and ``compression`` (zstd by
    default). The key is a hash of the pipeline, the partition and the checkpoint the batch
    started from, which is the same when a batch is replayed after a crash — the replay
    overwrites the orphan file instead of duplicating its rows. Files are written to a
    temporary name and renamed with ``os.replace``, so readers (pandas, polars, DuckDB,
    Spark reading ``<path>/**/*.parquet``) never see half a file. Each run keeps a manifest,
    ``<path>/_runs/<run id>.json``, listing its files with row counts and the schema.

    Example::

        etl.Pipeline("crm_export", source, sink=ParquetSink("exports/crm")).run()
        pyarrow.dataset.dataset("exports/crm/all", format="parquet").to_table()
    """

    suffix = ".parquet"
    format = "parquet"

    def __init__(
        self, path: str | Path, *, compression: str = "zstd", state_url: SecretLike | None = None
    ):
        if compression not in COMPRESSIONS:
            raise ETLConfigError(
                f"compression {compression!r} is not one of {', '.join(COMPRESSIONS)}"
            )
        super().__init__(path, state_url=state_url)
        self.compression = compression

    def write_file(self, path: Path, batch: pa.RecordBatch) -> None:
        pq.write_table(pa.Table.from_batches([batch]), path, compression=self.compression)


__all__ = ["ParquetSink"]
