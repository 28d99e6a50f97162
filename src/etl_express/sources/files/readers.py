"""Readers of one file each: CSV (pyarrow, streaming) and Parquet; JSON Lines and JSON arrays
in :mod:`.jsonl`, which format a file is (and its gzip wrapper) in :mod:`.formats`.

A reader yields :class:`Chunk` s — rows (Arrow or dicts), the lines it could not parse,
and how far into the file it got — and can start after a given number of rows, which is
how a killed run resumes in the middle of a file.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ...errors import SourceError
from ...format import Rejected
from .encoding import Decision, decide, detect_encoding, physical_lines, utf8_copy

SAMPLE_BYTES = 64 * 1024
CSV_BLOCK = 1 << 22  #: bytes Arrow parses (and infers types from) at a time
DELIMITERS = (",", ";", "\t", "|")


@dataclass
class Chunk:
    """Rows read from one file, and the reader's progress after them."""

    data: pa.RecordBatch | list[dict[str, Any]]
    rows: int  #: rows (CSV, Parquet) or lines (JSONL) consumed from the start of the file
    rejected: list[Rejected] = field(default_factory=list)


def detect_delimiter(header: str) -> str:
    """The candidate occurring most often outside quotes in the header line (``,`` on a tie
    or none): a quoted column name may hold one (``"Фамилия, имя";Сумма``)."""
    bare = re.sub(r'"[^"]*"?', "", header)
    counts = {d: bare.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def _sample(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(SAMPLE_BYTES)


def _bad(file: str, line: int | None, reason: str, **extra: Any) -> Rejected:
    # the raw line is not kept: it may hold personal data in columns nobody can name
    record = {"source_file": file, "source_line": line, **extra}
    return Rejected(index=line or 0, record=record, reason=f"{file}: line {line}: {reason}")


class _RecordLines:
    """Maps CSV record numbers (1-based, the header is 1, as pyarrow counts them) to the
    physical line each record starts on: a quoted field may span lines, so the two differ.
    Reads forward through the file only as far as asked (it is needed for rejected rows)."""

    def __init__(self, path: Path, encoding: str, delimiter: str, quote_char: str):
        self._path, self._encoding = path, encoding
        self._delimiter, self._quote = delimiter, quote_char
        self._starts: list[int] = []
        self._records: Iterator[int] | None = None

    def _scan(self) -> Iterator[int]:
        lines = (
            (n, raw.decode(self._encoding, errors="replace"))
            for n, raw in physical_lines(self._path)
        )
        current = [0]

        def text() -> Iterator[str]:
            for n, line in lines:
                current[0] = n
                yield line

        reader = csv.reader(text(), delimiter=self._delimiter, quotechar=self._quote)
        start = 1
        for fields in reader:
            if fields:  # pyarrow skips empty lines without counting them
                yield start
            start = current[0] + 1

    def line_of(self, record: int | None) -> int | None:
        if record is None:
            return None
        if self._records is None:
            self._records = self._scan()
        while len(self._starts) < record:
            start = next(self._records, None)
            if start is None:
                return None
            self._starts.append(start)
        return self._starts[record - 1]


def _without_bad_records(
    path: Path, name: str, decision: Decision, delimiter: str, quote_char: str
) -> tuple[Any, list[int], list[tuple[int, Rejected]]]:
    """A UTF-8 copy of the file without the records that hold an undecodable line, the
    physical first line of each kept record, and (records kept before it, rejection) for
    each record left out."""
    bad = set(decision.bad_lines)
    buffer: list[str] = []
    current = [0]

    def text() -> Iterator[str]:
        for n, raw in physical_lines(path):
            current[0] = n
            line = raw.decode(decision.encoding, errors="surrogateescape")
            if n == 1 and decision.bom:
                line = line.lstrip("\ufeff")
            buffer.append(line)
            yield line

    out = tempfile.TemporaryFile()  # noqa: SIM115 - read_csv closes it when done
    starts: list[int] = []
    rejects: list[tuple[int, Rejected]] = []
    start = 1
    for fields in csv.reader(text(), delimiter=delimiter, quotechar=quote_char):
        end = current[0]
        lines = range(start, end + 1)
        hit = next((n for n in lines if n in bad), None)
        if hit is not None and not starts:
            out.close()
            raise SourceError(
                f"{name}: the header (line {hit}) does not decode as {decision.encoding}",
                where={"file": name},
                hint="fix the header, or pass the encoding= the file is written in",
            )
        if hit is not None:
            rejects.append(
                (
                    max(len(starts) - 1, 0),
                    _bad(name, hit, f"does not decode as {decision.encoding}"),
                )
            )
        elif fields:
            starts.append(start)
            out.write("".join(buffer).encode("utf-8"))
        buffer.clear()
        start = end + 1
    out.seek(0)
    return out, starts, rejects


def read_csv(path: Path, name: str, *, encoding: str | None, **options: Any) -> Iterator[Chunk]:
    """Stream a CSV file; lines with the wrong number of fields, and records holding a line
    that does not decode (see :mod:`.encoding`), are rejected with their physical line number
    (header = line 1); rejections up to ``after_line`` were made before. A UTF-16 file is
    read through a UTF-8 copy (its lines are then bytes-level lines like any other's)."""
    with _decided(path, name, encoding) as (readable, decision):
        yield from _read_csv(readable, name, decision=decision, **options)


@contextlib.contextmanager
def _decided(path: Path, name: str, encoding: str | None) -> Iterator[tuple[Path, Decision]]:
    decision = decide(path, name, encoding)
    if not decision.encoding.startswith(("utf-16", "utf-32")):
        yield path, decision
        return
    copy = utf8_copy(path, decision.encoding)
    try:
        yield copy, Decision("utf-8")
    finally:
        copy.unlink(missing_ok=True)


def _read_csv(
    path: Path,
    name: str,
    *,
    decision: Decision,
    skip_rows: int,
    after_line: int,
    batch_size: int,
    delimiter: str | None,
    null_values: Sequence[str],
    column_types: dict[str, pa.DataType] | None,
    quote_char: str = '"',
) -> Iterator[Chunk]:
    sample = _sample(path)
    if not sample.strip():
        return
    stripped = sample.strip()
    if len(sample) < SAMPLE_BYTES and b"\n" not in stripped and b"\r" not in stripped:
        return  # the header alone (Arrow refuses one without a newline after it): no rows
    encoding = decision.encoding
    if delimiter is None:
        head = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=False)
        delimiter = detect_delimiter(head.lstrip("\ufeff").splitlines()[0] if head else "")
    pending: list[Rejected] = []
    source: Any = path
    read_encoding = encoding
    starts: list[int] | None = None
    undecodable: list[tuple[int, Rejected]] = []
    if not decision.clean:
        source, starts, undecodable = _without_bad_records(
            path, name, decision, delimiter, quote_char
        )
        read_encoding = "utf-8"
        undecodable = [(kept, r) for kept, r in undecodable if kept >= skip_rows]
    records = _RecordLines(path, encoding, delimiter, quote_char)

    def line_of(record: int | None) -> int | None:
        if starts is not None:
            return starts[record - 1] if record is not None and record <= len(starts) else None
        return records.line_of(record)

    def invalid(row: Any) -> str:
        line = line_of(row.number)
        if line is None or line > after_line:
            pending.append(
                _bad(
                    name,
                    line,
                    f"expected {row.expected_columns} fields, found {row.actual_columns}",
                    fields_expected=row.expected_columns,
                    fields_found=row.actual_columns,
                )
            )
        return "skip"

    def take_undecodable(upto: int | None) -> list[Rejected]:
        taken = [r for kept, r in undecodable if upto is None or kept <= upto]
        undecodable[:] = [(kept, r) for kept, r in undecodable if upto is not None and kept > upto]
        return taken

    def open_reader(types: dict[str, pa.DataType] | None, handler: Any) -> Any:
        if not isinstance(source, Path):
            source.seek(0)
        return pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(
                encoding=read_encoding, use_threads=False, block_size=CSV_BLOCK
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                quote_char=quote_char,
                newlines_in_values=True,
                invalid_row_handler=handler,
            ),
            convert_options=pacsv.ConvertOptions(
                null_values=list(null_values),
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                column_types=types,
            ),
        )

    try:
        size = (
            source.stat().st_size if isinstance(source, Path) else os.fstat(source.fileno()).st_size
        )
        if size > CSV_BLOCK:
            column_types = _whole_file_types(open_reader, column_types)
        reader = open_reader(column_types, invalid)
        header = reader.schema.names
        twice = next((n for i, n in enumerate(header) if n in header[:i]), None)
        if twice is not None:  # Arrow keeps both; a record (and the target) only one
            raise SourceError(
                f"{name}: the header names the column {twice!r} twice",
                where={"file": name},
                hint="rename one of the two columns in the file (or in the export's settings)",
            )
        inexact = _inexact_columns(source, reader.schema, column_types, open_reader)
        if inexact:
            column_types = {**(column_types or {}), **{c: pa.string() for c in inexact}}
            reader = open_reader(column_types, invalid)
        done = 0
        for block in reader:
            start = max(0, skip_rows - done)
            for offset in range(start, block.num_rows, batch_size):
                piece = block.slice(offset, batch_size)
                upto = done + offset + piece.num_rows
                rejected, pending[:] = list(pending), []
                yield Chunk(piece, upto, rejected + take_undecodable(upto))
            done += block.num_rows
        rest = list(pending) + take_undecodable(None)
        if rest:
            yield Chunk(pa.RecordBatch.from_pylist([]), max(done, skip_rows), rest)
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
    finally:
        if source is not path:
            source.close()


def _whole_file_types(
    open_reader: Any, declared: dict[str, pa.DataType] | None
) -> dict[str, pa.DataType] | None:
    """Column types that hold every value of the file.

    Arrow infers each column's type from the file's first block (4 MiB) and fails on a
    later value that does not fit it — a code column numeric for 100 000 rows and then
    ``77A1``, a column empty at first — after part of the file was loaded, and every resumed
    run fails on it again. So a file larger than one block is parsed once before its first
    row is given out, and each column a later value does not fit is widened (integer to
    double, as Arrow infers for such a column in a small file, then text) and the file
    parsed again. A declared ``column_types`` entry is never widened: its error stands."""
    types = dict(declared or {})
    while True:
        reader = open_reader(types or None, lambda row: "skip")
        try:
            for _ in reader:
                pass
        except pa.ArrowInvalid as exc:
            found = re.search(r"In CSV column #(\d+)", str(exc))
            if found is None:
                raise
            column = reader.schema.field(int(found.group(1)))
            if column.name in types and (
                column.name in (declared or {}) or pa.types.is_string(types[column.name])
            ):
                raise
            value = re.search(r"invalid value '([^']*)'", str(exc))
            whole = value is not None and _INTEGER.fullmatch(value.group(1).strip())
            integer = pa.types.is_integer(column.type) and not whole
            # an integer beyond int64 (a 20-digit account number) is text, never a double
            types[column.name] = pa.float64() if integer else pa.string()
            continue
        return types or None


_INTEGER = re.compile(r"[+-]?\d+")
_LONG_DIGITS = re.compile(rb"\d{16,}")
_LONG_INTEGER = re.compile(r"\s*[+-]?0*\d{16,}\s*")


def _inexact_columns(
    source: Any, schema: pa.Schema, declared: dict[str, pa.DataType] | None, open_reader: Any
) -> list[str]:
    """Inferred double columns holding an integer of 16 or more digits in the first block,
    which a double cannot hold exactly (a 20-digit bank account number, beyond int64, is
    inferred as a double by Arrow and would load as ``4.0702810900000014e+19``): these are
    read as text. The block's bytes are searched first, so files without such digit runs
    (nearly all) are not parsed twice."""
    doubles = [
        f.name for f in schema if pa.types.is_floating(f.type) and f.name not in (declared or {})
    ]
    if not doubles:
        return []
    if isinstance(source, Path):
        with source.open("rb") as f:
            head = f.read(CSV_BLOCK)
    else:
        source.seek(0)
        head = source.read(CSV_BLOCK)
    if not _LONG_DIGITS.search(head):
        return []
    block = next(
        iter(
            open_reader(
                {**(declared or {}), **{c: pa.string() for c in doubles}}, lambda row: "skip"
            )
        ),
        None,
    )
    if block is None:
        return []
    return [
        c
        for c in doubles
        if any(v is not None and _LONG_INTEGER.fullmatch(v) for v in block.column(c).to_pylist())
    ]


def _no_values(text: str) -> str:
    # pyarrow quotes the offending value (e.g. "invalid value 'Иванов'"): keep only the kind
    cut = text.find("'")
    return text[:cut].rstrip(" :") if cut >= 0 else text


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


__all__ = [
    "Chunk",
    "detect_delimiter",
    "detect_encoding",
    "read_csv",
    "read_parquet",
]
