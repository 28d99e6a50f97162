"""``FileSource``: CSV, JSON Lines and Parquet files from a folder, incremental by file."""

from __future__ import annotations

import copy
import hashlib
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from ..._validate import name_list
from ...errors import ETLConfigError, SourceError
from ...format import Batch, canonical_schema, normalize_name
from ..base import Partition, Source
from .formats import format_of, gunzipped, is_gzip
from .jsonl import read_jsonl
from .readers import Chunk, read_csv, read_parquet

FileFormat = Literal["csv", "jsonl", "parquet"]


def fingerprint(path: Path) -> dict[str, Any]:
    """Size and modification time (cheap), the content hash is added when needed."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class FileSource(Source):
    """Reads CSV, JSON Lines or Parquet files matching a glob in a folder.

    Logic: each run lists the files matching ``glob`` under ``path`` (sorted by name) and
    compares each with what the checkpoint remembers of it: size, modification time and
    a SHA-256 of its content. A file already loaded is skipped; a new or changed file (its
    size or mtime moved and its hash differs) is read from the start; one whose mtime moved
    but whose content did not is skipped. Files are streamed in batches of ``batch_size``
    rows, and after each batch the position records how many rows of the current file are
    done, so a killed run resumes mid-file. CSV files are parsed by Arrow; the delimiter
    (``, ; tab |``) is detected unless given. Text is decoded strictly with the declared
    encoding or one verified over the whole file (UTF-8, UTF-16 by BOM, or cp1251 as in
    Russian exports); a record holding a line that does not decode is rejected with its
    physical line number, never loaded as mojibake or bytes. An unquoted empty field is null, a quoted ``""`` stays an empty string. A
    line with the wrong number of fields, or a JSON Lines line that is not an object, is
    rejected with its file and line number (the pipeline quarantines it) and the rest of
    the file loads. Gzip files are read by their inner format (``a.csv.gz``); a ``.json``
    file holding one JSON array is read element by element. Column types are settled over
    the whole file (a later value never fails the run); integers of 16+ digits stay text.

    Args:
        path: the folder.
        glob: file pattern relative to ``path`` (``"*.csv"``, ``"exports/**/*.jsonl"``).
        format: ``"csv"``, ``"jsonl"`` or ``"parquet"`` (``None``: by file suffix).
        encoding: text encoding of CSV/JSONL files (``None``: verified over the whole file).
        delimiter: CSV field separator (``None``: detected from the header line).
        null_values: CSV values read as null (default: only the unquoted empty field).
        column_types: CSV column types (``{"inn": pa.string()}`` keeps leading zeros).
        batch_size: rows per batch.
        primary_key: column(s) identifying a row (the sink upserts on them).
        name: the ``_etl_source`` lineage value (default: the folder name).
        pii: columns holding personal data.
        schema: a declared schema (``None``: inferred).
    """

    incremental = True

    def __init__(
        self,
        path: str | Path,
        glob: str = "*",
        *,
        format: FileFormat | None = None,
        encoding: str | None = None,
        delimiter: str | None = None,
        null_values: Sequence[str] = ("",),
        column_types: dict[str, pa.DataType] | None = None,
        batch_size: int = 50_000,
        primary_key: str | Sequence[str] = (),
        name: str | None = None,
        pii: Sequence[str] = (),
        schema: pa.Schema | None = None,
    ):
        if format is not None and format not in ("csv", "jsonl", "parquet"):
            raise ETLConfigError(f"format must be 'csv', 'jsonl' or 'parquet', got {format!r}")
        if batch_size < 1:
            raise ETLConfigError(f"batch_size must be >= 1, got {batch_size}")
        if encoding is not None:
            import codecs

            try:
                codecs.lookup(encoding)
            except LookupError:
                raise ETLConfigError(
                    f"unknown encoding {encoding!r}", hint='e.g. encoding="cp1251"'
                ) from None
        if delimiter is not None and len(delimiter) != 1:
            raise ETLConfigError(f"delimiter must be one character, got {delimiter!r}")
        self.path = Path(path)
        self.glob = glob
        self.format = format
        self.encoding = encoding
        self.delimiter = delimiter
        self.null_values = list(null_values)
        self.column_types = column_types
        self.batch_size = batch_size
        pk = name_list(primary_key, "primary_key", "FileSource")
        self.primary_key = [normalize_name(c) for c in pk]
        self.name = name or self.path.name or "files"
        self.pii = [normalize_name(c) for c in name_list(pii, "pii", "FileSource")]
        self._schema = schema

    def __repr__(self) -> str:
        return f"FileSource(path={str(self.path)!r}, glob={self.glob!r})"

    def schema(self) -> pa.Schema | None:
        return canonical_schema(self._schema) if self._schema is not None else None

    def discover_schema(self) -> pa.Schema | None:
        """The first file's columns: a CSV header (as text) or a Parquet schema; ``None`` for
        JSONL and an empty folder (the pipeline then checks the first batch)."""
        if self._schema is not None:
            return None  # declared, maybe partial: the files' own columns decide
        files = self.files()
        if not files:
            return None
        path = files[0]
        fmt = format_of(path, self.format)
        if is_gzip(path):
            return None  # the pipeline checks the first batch
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return canonical_schema(pq.read_schema(path))
        if fmt != "csv":
            return None
        import csv
        import io

        from .readers import detect_delimiter, detect_encoding

        with path.open("rb") as f:
            sample = f.read(1 << 16)
        if not sample.strip():
            return None
        encoding = self.encoding or detect_encoding(sample)
        text = sample.decode(encoding, errors="replace").lstrip("\ufeff")
        first = text.splitlines()[0] if text else ""
        delimiter = self.delimiter or detect_delimiter(first)
        header = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
        return canonical_schema(pa.schema([pa.field(h, pa.string()) for h in header]))

    # -- files and partitions -----------------------------------------------------------

    def files(self, partition: Partition | None = None) -> list[Path]:
        """The files this source (or one partition of it) reads, sorted by name."""
        if not self.path.is_dir():
            raise SourceError(
                f"folder {str(self.path)!r} does not exist or is not a folder",
                hint="check the path= of the FileSource and that this process may read it",
            )
        files = sorted(
            p for p in self.path.glob(self.glob) if p.is_file() and not p.name.startswith(".")
        )
        if partition and "of" in partition:
            n, i = int(partition["of"]), int(partition["group"])
            files = [p for p in files if zlib.crc32(self._rel(p).encode()) % n == i]
        return files

    def partitions(self, n: int | None = None) -> list[Partition]:
        """``n`` groups of files (by a stable hash of each file's name)."""
        if not n or n <= 1:
            return [{}]
        return [{"group": i, "of": n} for i in range(n)]

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.path).as_posix()

    # -- reading ------------------------------------------------------------------------

    def read(self, position: Any = None, partition: Partition | None = None) -> Iterator[Batch]:
        state: dict[str, Any] = copy.deepcopy(position) if isinstance(position, dict) else {}
        known: dict[str, dict[str, Any]] = state.setdefault("files", {})
        for path in self.files(partition):
            name = self._rel(path)
            seen = known.get(name)
            current = fingerprint(path)
            if seen is not None and all(seen.get(k) == v for k, v in current.items()):
                if seen.get("done"):
                    continue  # unchanged and loaded
                start = seen
            else:
                current["sha256"] = content_hash(path)
                if seen is not None and seen.get("sha256") == current["sha256"]:
                    known[name] = {**seen, **current}  # touched, not changed
                    if seen.get("done"):
                        yield Batch([], position=copy.deepcopy(state))
                        continue
                    start = known[name]
                else:
                    start = known[name] = {**current, "rows": 0, "line": 0, "done": False}
            yield from self._read_file(path, name, start, state)

    def _read_file(
        self, path: Path, name: str, entry: dict[str, Any], state: dict[str, Any]
    ) -> Iterator[Batch]:
        fmt = format_of(path, self.format)
        with gunzipped(path, name) as readable:
            yield from self._read_plain(readable, fmt, name, entry, state)

    def _read_plain(
        self, path: Path, fmt: str, name: str, entry: dict[str, Any], state: dict[str, Any]
    ) -> Iterator[Batch]:
        chunks: Iterator[Chunk]
        skip = int(entry.get("rows", 0))
        if fmt == "csv":
            chunks = read_csv(
                path,
                name,
                skip_rows=skip,
                after_line=int(entry.get("line", 0)),
                batch_size=self.batch_size,
                encoding=self.encoding,
                delimiter=self.delimiter,
                null_values=self.null_values,
                column_types=self.column_types,
            )
        elif fmt == "jsonl":
            chunks = read_jsonl(
                path, name, skip_rows=skip, batch_size=self.batch_size, encoding=self.encoding
            )
        else:
            chunks = read_parquet(path, name, skip_rows=skip, batch_size=self.batch_size)
        chunk: Chunk | None = next(chunks, None)
        while chunk is not None:
            following = next(chunks, None)
            entry["rows"] = chunk.rows
            if chunk.rejected:
                entry["line"] = max([entry.get("line", 0)] + [r.index for r in chunk.rejected])
            entry["done"] = following is None
            yield Batch(
                chunk.data,
                position=copy.deepcopy(state),
                rejected=chunk.rejected,
                meta={"file": name},
            )
            chunk = following
        if not entry["done"]:  # an empty file, or resumed at its very end
            entry["done"] = True
            yield Batch([], position=copy.deepcopy(state), meta={"file": name})


__all__ = ["FileSource", "content_hash", "fingerprint"]
