"""The JSON reader of a file: JSON Lines (one object a line), or one JSON array of objects
(what most systems export as ``.json``), in the file's encoding (:mod:`.encoding`); resumable
after a given number of lines or elements, like the other readers (:mod:`.readers`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...format import Rejected
from .encoding import Decision, physical_lines
from .readers import SAMPLE_BYTES, Chunk, _bad, _decided


def read_jsonl(
    path: Path, name: str, *, skip_rows: int, batch_size: int, encoding: str | None
) -> Iterator[Chunk]:
    """One JSON object a line; blank lines are skipped, a line that is not a JSON object or
    does not decode in the file's encoding (see :mod:`.encoding`) is rejected."""
    with _decided(path, name, encoding) as (readable, decision):
        yield from _read_jsonl(readable, name, decision, skip_rows, batch_size)


def _json_array(path: Path, decision: Decision) -> list[Any] | None:
    """The elements of a file holding one JSON array (``[{...}, {...}]``, pretty-printed or
    not: what most systems export as ``.json``), else ``None`` (JSON Lines: no line of
    those starts with ``[``, an array is not a record)."""
    if not decision.clean:
        return None
    with path.open("rb") as f:
        head = f.read(SAMPLE_BYTES).decode(decision.encoding, errors="replace")
    if not head.lstrip("\ufeff \t\r\n").startswith("["):
        return None
    try:
        value = json.loads(path.read_bytes().decode(decision.encoding).lstrip("\ufeff"))
    except ValueError:
        return None  # not one document: read line by line, each bad line rejected
    return value if isinstance(value, list) else None


def _read_jsonl(
    path: Path, name: str, decision: Decision, skip_rows: int, batch_size: int
) -> Iterator[Chunk]:
    elements = _json_array(path, decision)
    if elements is not None:
        yield from _array_chunks(elements, name, skip_rows, batch_size)
        return
    bad = set(decision.bad_lines)
    rows: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    line_no = 0
    for line_no, raw in physical_lines(path):
        if line_no <= skip_rows:
            continue
        if line_no in bad:
            rejected.append(_bad(name, line_no, f"does not decode as {decision.encoding}"))
            continue
        line = raw.decode(decision.encoding)
        if line_no == 1 and decision.bom:
            line = line.lstrip("\ufeff")
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            rejected.append(_bad(name, line_no, f"invalid JSON ({exc.msg} at column {exc.colno})"))
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


def _array_chunks(
    elements: list[Any], name: str, skip_rows: int, batch_size: int
) -> Iterator[Chunk]:
    """A JSON array's objects in chunks; ``rows`` counts elements, so a resumed run skips
    those done. An element that is not an object is rejected naming its position."""
    for start in range(skip_rows, len(elements), batch_size):
        piece = elements[start : start + batch_size]
        rows = [e for e in piece if isinstance(e, dict)]
        rejected = [
            Rejected(
                index=start + i,
                record={"source_file": name, "source_element": start + i + 1},
                reason=f"{name}: element {start + i + 1}: a JSON {type(e).__name__}, not an object",
            )
            for i, e in enumerate(piece)
            if not isinstance(e, dict)
        ]
        yield Chunk(rows, start + len(piece), rejected)


__all__ = ["read_jsonl"]
