"""What a database holds, as a replication would see it: ``etl-express scan``.

One catalog read (tables, keys, declared types, row estimates), the candidate cursors of each
table (timestamp and date columns named like a change time), and, from a small sample of each
table's text columns, the columns that look like personal data (by the personal-data
detector; column names like ``email`` or ``phone`` count too). No value is ever printed: a
finding names the column and the kind. The report ends with a ready ``Replication(...)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from ...format import TIMESTAMP, normalize_name
from .database import SQLDatabase
from .discovery import TableInfo, arrow_type
from .rows_reader import read_only

SAMPLE_ROWS = 200
_CURSOR_NAME = re.compile(r"(updat|modif|chang|edit|last|sync|version|^ts$|_ts$|_at$|time)", re.I)
_PREFERRED_CURSOR = re.compile(r"(updat|modif|chang)", re.I)
#: column names that say what they hold (checked besides the values)
_PERSONAL_NAMES = {
    "email": re.compile(r"e_?mail", re.I),
    "phone": re.compile(r"phone|mobile|телефон", re.I),
    "name": re.compile(r"(^|_)(first|last|middle|full|sur|given|family)?_?name$|фио", re.I),
    "passport": re.compile(r"passport|паспорт", re.I),
    "inn": re.compile(r"(^|_)inn($|_)|инн", re.I),
    "snils": re.compile(r"snils|снилс", re.I),
    "address": re.compile(r"address|адрес", re.I),
    "birth": re.compile(r"birth|dob$|рожд", re.I),
    "card": re.compile(r"card_?(no|num)|pan$", re.I),
}
_NOT_PERSONAL = re.compile(r"(^|_)(id|key|code|type|status|count|hash)$", re.I)


_KEYLESS = "declare one in primary_key= (unique, non-null columns) or exclude them."


def _q(text: str) -> str:
    """A Python string literal in double quotes."""
    return json.dumps(text, ensure_ascii=False)


@dataclass
class TableScan:
    """One table: its key, estimated rows, candidate cursors and personal-looking columns
    (column -> kinds)."""

    name: str
    rows: int | None
    primary_key: list[str]
    columns: int
    cursors: list[str] = field(default_factory=list)
    personal: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.name,
            "rows": self.rows,
            "primary_key": self.primary_key,
            "columns": self.columns,
            "cursors": self.cursors,
            "personal": self.personal,
        }


@dataclass
class ScanReport:
    """What :func:`scan` found."""

    url: str  #: masked
    schema: str | None
    tables: list[TableScan]

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "schema": self.schema,
            "tables": [t.to_dict() for t in self.tables],
            "replication": self.replication_code(),
        }

    def text(self) -> str:
        total = sum(t.rows or 0 for t in self.tables)
        schema = self.schema or "(default)"
        lines = [
            f"{self.url}, schema {schema}: {len(self.tables)} tables, ~{total:,} rows",
            "",
            f"{'table':<28} {'rows (est.)':>12}  {'key':<24} {'cursor candidates':<24} personal?",
        ]
        for t in self.tables:
            key = ", ".join(t.primary_key) or "NONE"
            rows = "-" if t.rows is None else f"{t.rows:,}"
            personal = ", ".join(f"{c} ({'/'.join(k)})" for c, k in t.personal.items()) or "-"
            lines.append(
                f"{t.name:<28} {rows:>12}  {key:<24} {', '.join(t.cursors) or '-':<24} {personal}"
            )
        keyless = [t.name for t in self.tables if not t.primary_key]
        if keyless:
            lines += ["", f"No primary key: {', '.join(keyless)}: " + _KEYLESS]
        lines += ["", "A replication to start from:", "", self.replication_code()]
        return "\n".join(lines)

    def replication_code(self) -> str:
        """A ``Replication(...)`` covering what was found, to paste and adjust."""
        name = normalize_name(self.schema or "source")
        personal = [f"{t.name}.{c}" for t in self.tables for c in t.personal]
        keyless = [t.name for t in self.tables if not t.primary_key]
        cursors = {
            t.name: next((c for c in t.cursors if _PREFERRED_CURSOR.search(c)), None)
            for t in self.tables
        }
        schema = f", schema={_q(self.schema)}" if self.schema else ""
        out = [
            "import etl_express as etl",
            "from etl_express.anonymizers import Pseudonymize",
            "from etl_express.sinks import PostgresSink",
            "from etl_express.sources import SQLDatabase",
            "",
            "replication = etl.Replication(",
            f"    name={_q(name)},",
            f'    source=SQLDatabase(url=etl.secret("SOURCE_DB_URL"){schema}, include=["*"]),',
            f"    sink=PostgresSink(schema={_q(name)}),",
        ]
        if personal:
            out.append("    anonymizers=[")
            out.append("        Pseudonymize(")
            out.append("            [")
            out += [f"                {_q(p)}," for p in personal]
            out.append("            ],")
            out.append('            key=etl.secret("ANON_KEY"),')
            out.append("        ),")
            out.append("    ],")
        if keyless:  # left for the user to fill in: run as it is, it is refused with the fix
            out.append("    # no primary key at the source: name unique, non-null columns")
            out.append(
                "    # primary_key={" + ", ".join(f'{_q(t)}: ["..."]' for t in keyless) + "},"
            )
        chosen = {t: c for t, c in cursors.items() if c}
        if chosen:
            out.append(
                "    cursor={" + ", ".join(f"{t!r}: {c!r}" for t, c in chosen.items()) + "},"
            )
        out += ['    freshness="26h",', ")", "result = replication.run(workers=2)"]
        return "\n".join(out)


def scan(database: SQLDatabase, *, sample_rows: int = SAMPLE_ROWS) -> ScanReport:
    """Scan the tables ``database`` selects (see the module docstring)."""
    from ...secrets import reveal
    from ...store.database import engine_for

    catalog = database.tables()
    engine = engine_for(str(reveal(database.url)))
    tables = []
    for info in catalog:
        dialect = engine.dialect.name
        tables.append(
            TableScan(
                info.name,
                info.rows,
                list(info.primary_key),
                len(info.columns),
                _cursors(info, dialect),
                _personal(engine, info, sample_rows),
            )
        )
    return ScanReport(database.masked_url(), database.schema, tables)


def _cursors(info: TableInfo, dialect: str) -> list[str]:
    out = []
    for c in info.columns:
        t = arrow_type(c.type, dialect)
        if t in (TIMESTAMP, pa.date32()) and _CURSOR_NAME.search(c.name):
            out.append(c.name)
    return sorted(out, key=lambda n: not _PREFERRED_CURSOR.search(n))


def _personal(engine: sa.Engine, info: TableInfo, sample_rows: int) -> dict[str, list[str]]:
    """Columns that look personal: by their sampled values (the detector) or by their names."""
    found: dict[str, set[str]] = {}
    from ...anonymizers.detection import is_sampled_field

    dialect = engine.dialect.name
    text = [
        c.name
        for c in info.columns
        if is_sampled_field(pa.field(c.name, arrow_type(c.type, dialect)))
    ]
    for c in info.columns:
        if c.name in info.primary_key or _NOT_PERSONAL.search(c.name):
            continue
        for kind, pattern in _PERSONAL_NAMES.items():
            if pattern.search(c.name):
                found.setdefault(c.name, set()).add(kind)
    if text and sample_rows > 0:
        for column, kinds in _detected(_sample(engine, info, text, sample_rows)).items():
            found.setdefault(column, set()).update(kinds)
    return {c.name: sorted(found[c.name]) for c in info.columns if c.name in found}


def _sample(
    engine: sa.Engine, info: TableInfo, columns: Sequence[str], rows: int
) -> pa.RecordBatch:
    table = info.selectable()
    selected = [sa.cast(table.c[c], sa.Text).label(c) for c in columns]
    with engine.connect() as conn:
        found = read_only(conn).execute(sa.select(*selected).limit(rows)).all()
    arrays = [pa.array([r[i] for r in found], pa.string()) for i in range(len(columns))]
    return pa.RecordBatch.from_arrays(arrays, names=list(columns))


def _detected(batch: pa.RecordBatch) -> dict[str, set[str]]:
    """Column (as the source names it) -> kinds of personal data its values look like."""
    try:  # the personal-data detector, where the installed version has it
        from ...anonymizers import detection

        findings = detection.detect_batch(batch)  # type: ignore[attr-defined]
        out: dict[str, set[str]] = {}
        for f in findings:
            out.setdefault(f.column, set()).add(f.kind)
        return out
    except ImportError:
        return _scrubbed(batch)


def _scrubbed(batch: pa.RecordBatch) -> dict[str, set[str]]:
    """Without the detector: the columns where ScrubPII finds something in most values."""
    from ...anonymizers.scrub import ScrubPII

    out: dict[str, set[str]] = {}
    for name in batch.schema.names:
        values = batch.column(name).drop_null()
        if len(values) == 0:
            continue
        single = pa.RecordBatch.from_arrays([values], names=["v"])
        scrubbed = ScrubPII(["v"]).anonymize(single).column(0)
        changed = sum(1 for a, b in zip(values.to_pylist(), scrubbed.to_pylist()) if a != b)
        if changed * 2 > len(values):
            out.setdefault(name, set()).add("personal data")
    return out


__all__ = ["SAMPLE_ROWS", "ScanReport", "TableScan", "scan"]
