"""Readers of one file each: CSV (pyarrow, streaming), JSON Lines, Parquet.

A reader yields :class:`Chunk` s — rows (Arrow or dicts), the lines it could not parse,
and how far into the file it got — and can start after a given number of rows, which is
how a killed run resumes in the middle of a file.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ...errors import ETLConfigError, SourceError
from ...format import Rejected

SAMPLE_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")


@dataclass
class Chunk:
    """Rows read from one file, and the reader's progress after them."""

    data: pa.RecordBatch | list[dict[str, Any]]
    rows: int  #: rows (CSV, Parquet) or lines (JSONL) consumed from the start of the file
    rejected: list[Rejected] = field(default_factory=list)


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM) when the sample decodes as such, UTF-16 by its BOM,
    else cp1251 — the usual encoding of Russian exports from 1C and Excel."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8"  # pyarrow and the JSONL reader skip the BOM
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "cp1251"
    return "utf-8"


def detect_delimiter(header: str) -> str:
    """The candidate occurring most often in the header line (``,`` on a tie or none)."""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def _sample(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(SAMPLE_BYTES)


def _bad(file: str, line: int | None, reason: str, **extra: Any) -> Rejected:
    # the raw line is not kept: it may hold personal data in columns nobody can name
    record = {"source_file": file, "source_line": line, **extra}
    return Rejected(index=line or 0, record=record, reason=f"{file}: line {line}: {reason}")


def read_csv(
    path: Path,
    name: str,
    *,
    skip_rows: int,
    after_line: int,
    batch_size: int,
    encoding: str | None,
    delimiter: str | None,
    null_values: Sequence[str],
    column_types: dict[str, pa.DataType] | None,
    quote_char: str = '"',
) -> Iterator[Chunk]:
    """Stream a CSV file; lines with the wrong number of fields are rejected with their
    line number (header = line 1), lines up to ``after_line`` were rejected before."""
    sample = _sample(path)
    if not sample.strip():
        return
    encoding = encoding or detect_encoding(sample)
    if delimiter is None:
        head = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=False)
        delimiter = detect_delimiter(head.lstrip("\ufeff").splitlines()[0] if head else "")
    pending: list[Rejected] = []

    def invalid(row: Any) -> str:
        if row.number is None or row.number > after_line:
            pending.append(
                _bad(
                    name,
                    row.number,
                    f"expected {row.expected_columns} fields, found {row.actual_columns}",
                    fields_expected=row.expected_columns,
                    fields_found=row.actual_columns,
                )
            )
        return "skip"

    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                encoding=encoding, use_threads=False, block_size=1 << 22
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                quote_char=quote_char,
                newlines_in_values=True,
                invalid_row_handler=invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                null_values=list(null_values),
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                column_types=column_types,
            ),
        )
        done = 0
        for block in reader:
            start = max(0, skip_rows - done)
            for offset in range(start, block.num_rows, batch_size):
                piece = block.slice(offset, batch_size)
                rejected, pending[:] = list(pending), []
                yield Chunk(piece, done + offset + piece.num_rows, rejected)
            done += block.num_rows
        if pending:
            yield Chunk(pa.RecordBatch.from_pylist([]), max(done, skip_rows), list(pending))
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        text = str(exc).splitlines()[0]
        if (
            "CSV parse error" not in text
            and "conversion error" not in text.lower()
            and "utf" not in text.lower()
        ):
            text = "cannot be parsed"
        raise SourceError(
            f"{name}: {_no_values(text)}",
            where={"file": name, "encoding": encoding, "delimiter": delimiter},
            hint="set encoding=, delimiter= or column_types= on the FileSource",
        ) from None


def _no_values(text: str) -> str:
    # pyarrow quotes the offending value (e.g. "invalid value 'Иванов'"): keep only the kind
    cut = text.find("'")
    return text[:cut].rstrip(" :") if cut >= 0 else text


def read_jsonl(
    path: Path, name: str, *, skip_rows: int, batch_size: int, encoding: str | None
) -> Iterator[Chunk]:
    """One JSON object a line; blank lines are skipped, a bad line is rejected."""
    encoding = encoding or detect_encoding(_sample(path))
    rows: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    line_no = 0
    with path.open("r", encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="") as f:
        for line_no, line in enumerate(f, start=1):
            if line_no <= skip_rows or not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                rejected.append(
                    _bad(name, line_no, f"invalid JSON ({exc.msg} at column {exc.colno})")
                )
            else:
                if isinstance(value, dict):
                    rows.append(value)
                else:
                    rejected.append(
                        _bad(name, line_no, f"a JSON {type(value).__name__}, not an object")
                    )
            if len(rows) >= batch_size:
                yield Chunk(rows, line_no, rejected)
                rows, rejected = [], []
    if rows or rejected:
        yield Chunk(rows, max(line_no, skip_rows), rejected)


def read_parquet(path: Path, name: str, *, skip_rows: int, batch_size: int) -> Iterator[Chunk]:
    try:
        file = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(
            f"{name} is not a readable Parquet file: {str(exc).splitlines()[0]}",
            where={"file": name},
            hint="check the file, or the format= and glob= options",
        ) from None
    done = 0
    for batch in file.iter_batches(batch_size=batch_size):
        start = max(0, skip_rows - done)
        if start < batch.num_rows:
            piece = batch.slice(start)
            yield Chunk(piece, done + batch.num_rows)
        done += batch.num_rows


FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def format_of(path: Path, configured: str | None) -> str:
    if configured is not None:
        return configured
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ETLConfigError(
            f"cannot tell the format of {path.name!r} from its suffix",
            hint='pass format="csv", "jsonl" or "parquet"',
        )
    return fmt


__all__ = [
    "Chunk",
    "detect_delimiter",
    "detect_encoding",
    "format_of",
    "read_csv",
    "read_jsonl",
    "read_parquet",
]
