"""Text encodings of CSV and JSON Lines files, decided over the whole file, never guessed.

A file is read with the encoding the user declared, or with one verified over every byte of
the file: UTF-8 (with or without BOM) when the whole file decodes as UTF-8, UTF-16 by its BOM
(or, without one, by the zero bytes beside its ASCII characters), cp1251 (the usual encoding
of Russian 1C and Excel exports) when fewer lines of the file are non-ASCII UTF-8 than are
not and the whole file decodes as cp1251. A file that is UTF-8 except for some
lines (one cp1251 line pasted into a UTF-8 export) is read as UTF-8 and those lines are
quarantined with their physical line numbers — no line is ever decoded with the wrong
encoding (mojibake) or carried as bytes (base64).
"""

from __future__ import annotations

import codecs
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import SourceError

BLOCK = 1 << 20
SAMPLE = 1 << 12
FALLBACK = "cp1251"


@dataclass
class Decision:
    """The encoding a file is read with, and the physical lines (1-based) it does not decode."""

    encoding: str
    bad_lines: list[int] = field(default_factory=list)
    bom: bool = False

    @property
    def clean(self) -> bool:
        return not self.bad_lines


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(BLOCK), b""):
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def physical_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, raw bytes with its newline)`` for each line of the file."""
    with path.open("rb") as f:
        yield from enumerate(f, start=1)


def _bad_lines(path: Path, encoding: str) -> tuple[list[int], int]:
    """The lines that do not decode with ``encoding``, and how many lines with non-ASCII
    bytes do decode (evidence that the file is in that encoding)."""
    bad = []
    evidence = 0
    for number, line in physical_lines(path):
        if line.isascii():
            continue
        try:
            line.decode(encoding)
        except UnicodeDecodeError:
            bad.append(number)
        else:
            evidence += 1
    return bad, evidence


def _bomless_utf16(path: Path) -> str | None:
    """``utf-16-le``/``utf-16-be`` for a UTF-16 file written without a BOM (its ASCII
    characters have a zero byte beside them), else ``None``. Such a file is valid UTF-8 —
    text with a NUL between letters — so it must be recognized before UTF-8 is tried."""
    with path.open("rb") as f:
        return _utf16_of(f.read(SAMPLE))


def _utf16_of(sample: bytes) -> str | None:
    sample = sample[: min(len(sample), SAMPLE) // 2 * 2]
    if len(sample) < 2 or b"\x00" not in sample:
        return None
    even, odd = sample[0::2], sample[1::2]
    half = len(sample) // 2
    if odd.count(0) >= half * 0.3 and even.count(0) == 0:
        return "utf-16-le"
    if even.count(0) >= half * 0.3 and odd.count(0) == 0:
        return "utf-16-be"
    return None


def utf8_copy(path: Path, encoding: str) -> Path:
    """A temporary UTF-8 copy of ``path`` (a UTF-16 file, which every reader here sees line
    by line as bytes: ``\\n`` is two bytes in it); the caller deletes it."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    with tempfile.NamedTemporaryFile("wb", suffix=path.suffix, delete=False) as out:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(BLOCK), b""):
                out.write(decoder.decode(block).encode("utf-8"))
        out.write(decoder.decode(b"", final=True).encode("utf-8"))
    return Path(out.name)


def decide(path: Path, name: str, declared: str | None) -> Decision:
    """The encoding to read ``path`` with, verified over the whole file."""
    with path.open("rb") as f:
        head = f.read(4)
    if declared is not None:
        encoding = codecs.lookup(declared).name
    elif head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = _bomless_utf16(path) or "utf-8"
    bom = encoding == "utf-8" and head.startswith(codecs.BOM_UTF8)
    if _decodes(path, encoding):
        return Decision(encoding, bom=bom)
    if encoding.startswith(("utf-16", "utf-32")):
        raise SourceError(
            f"{name} does not decode as {encoding}",
            where={"file": name},
            hint="fix the file, or pass the encoding= it is written in",
        )
    bad, evidence = _bad_lines(path, encoding)
    if declared is None and not bom and (not evidence or evidence < len(bad)):
        # nothing in the file is UTF-8 beyond ASCII, or fewer lines are than are not (a
        # short cp1251 text such as «Пё» or «ООО №» can happen to be valid UTF-8): a
        # single-byte export, when all of it decodes so
        if _decodes(path, FALLBACK):
            return Decision(FALLBACK)
        if not evidence:
            bad, _ = _bad_lines(path, FALLBACK)
            return Decision(FALLBACK, bad)
    return Decision(encoding, bad, bom)


def detect_encoding(data: bytes) -> str:
    """The encoding of ``data`` (a whole file's bytes), by the same rule as :func:`decide`:
    UTF-8 (with or without BOM) when all of it decodes as such, UTF-16 by its BOM (or by the
    zero bytes beside its ASCII characters), cp1251 when fewer lines are non-ASCII UTF-8
    than are not — and UTF-8 when it is UTF-8 but for some lines."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    bomless = _utf16_of(data)
    if bomless is not None:
        return bomless
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    good = bad = 0
    for line in data.splitlines():
        if not line.isascii():
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                bad += 1
            else:
                good += 1
    if good and good >= bad:
        return "utf-8"
    try:
        data.decode(FALLBACK)
    except UnicodeDecodeError:
        return "utf-8" if good else FALLBACK
    return FALLBACK


__all__ = ["Decision", "decide", "detect_encoding", "physical_lines", "utf8_copy"]
