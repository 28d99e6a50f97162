"""Which format a file is (by its suffix, or as configured), and a gzip file seen as the file
it holds (by its magic bytes): what :class:`~.source.FileSource` asks before it picks a
reader."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ...errors import ETLConfigError, SourceError

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


GZIP_SUFFIXES = (".gz", ".gzip")


def is_gzip(path: Path) -> bool:
    """Whether ``path`` is gzip-compressed (by its magic bytes, whatever its name)."""
    with path.open("rb") as f:
        return f.read(2) == b"\x1f\x8b"


@contextlib.contextmanager
def gunzipped(path: Path, name: str) -> Iterator[Path]:
    """``path`` itself, or for a gzip file a temporary decompressed copy (deleted after):
    every reader then sees the text, its encoding and lines, as in a plain file."""
    if not is_gzip(path):
        yield path
        return
    import gzip
    import shutil

    inner = path.with_suffix("") if path.suffix.lower() in GZIP_SUFFIXES else path
    with tempfile.NamedTemporaryFile("wb", suffix=inner.suffix, delete=False) as out:
        try:
            with gzip.open(path, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
        except (OSError, EOFError) as exc:
            out.close()
            Path(out.name).unlink(missing_ok=True)
            raise SourceError(
                f"{name} is not a readable gzip file ({type(exc).__name__})",
                where={"file": name},
                hint="the file may be truncated (still being written?): it is read again "
                "when it changes",
            ) from None
    copy = Path(out.name)
    try:
        yield copy
    finally:
        copy.unlink(missing_ok=True)


def format_of(path: Path, configured: str | None) -> str:
    if configured is not None:
        return configured
    if path.suffix.lower() in GZIP_SUFFIXES:
        path = path.with_suffix("")  # a.csv.gz: by its inner suffix
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ETLConfigError(
            f"cannot tell the format of {path.name!r} from its suffix",
            hint='pass format="csv", "jsonl" or "parquet"',
        )
    return fmt


__all__ = ["FORMATS", "GZIP_SUFFIXES", "format_of", "gunzipped", "is_gzip"]
