"""Writers of test files (the records go in exactly as the suite expects them out)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def _csv_value(value: Any, delimiter: str) -> str:
    if value is None:
        return ""  # unquoted empty field: null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return '"' + text.replace('"', '""') + '"'  # quoted: "" stays an empty string


def write_csv(
    path: Path,
    records: list[dict[str, Any]],
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    extra_lines: dict[int, str] | None = None,
) -> Path:
    """``extra_lines`` inserts raw lines before the given 0-based record index."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    lines = [delimiter.join(columns)]
    for i, r in enumerate(records):
        if extra_lines and i in extra_lines:
            lines.append(extra_lines[i])
        lines.append(delimiter.join(_csv_value(r.get(c), delimiter) for c in columns))
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def write_jsonl(
    path: Path, records: list[dict[str, Any]], extra_lines: dict[int, str] | None = None
) -> Path:
    lines = []
    for i, r in enumerate(records):
        if extra_lines and i in extra_lines:
            lines.append(extra_lines[i])
        lines.append(json.dumps(r, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_parquet(path: Path, records: list[dict[str, Any]]) -> Path:
    pq.write_table(pa.Table.from_pylist(records), path)
    return path


def split(records: list[dict[str, Any]], parts: int = 3) -> list[list[dict[str, Any]]]:
    size = -(-len(records) // parts) if records else 0
    return [records[i : i + size] for i in range(0, len(records), size)] if records else []
