"""Each state table has one owner module under ``store/`` that writes it.

A walk over the package's source finds every statement that writes a table of the
``etl_express`` schema — SQLAlchemy ``insert``/``update``/``delete`` of a table object from
``store.schema`` (``sa.insert(runs)``, ``runs.update()``, PostgreSQL's ``insert(...)``) and
SQL text (``INSERT INTO etl_express.runs``, ``UPDATE {SCHEMA}.logs``, ...) — and fails on one
outside the table's owner. Reads are free.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import etl_express
from etl_express.store import schema

PACKAGE = Path(etl_express.__file__).resolve().parent

#: table -> the one module that writes it (``store/schema.py`` also migrates every table)
OWNERS = {
    "runs": "store/ledger.py",
    "checkpoints": "store/checkpoints.py",
    "partition_plans": "store/checkpoints.py",
    "quarantine": "store/quarantine.py",
    "quality_checks": "store/checks.py",
    "logs": "store/runlog.py",
    "pipelines": "store/declarations.py",
    "table_schemas": "store/declarations.py",
    "reconcile_state": "store/reconciliation.py",
    "row_hash_keys": "store/reconciliation.py",
    "meta": "store/schema.py",
}
SCHEMA_MODULE = "store/schema.py"
TABLES = {t.name for t in schema.metadata.tables.values()}
WRITES = ("insert", "update", "delete")
_TEXT_WRITE = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|ALTER\s+TABLE(?:\s+IF\s+EXISTS)?"
    r"|DROP\s+TABLE(?:\s+IF\s+EXISTS)?|COPY)\s+\"?" + schema.SCHEMA + r"\"?\.\"?(\w+)",
    re.IGNORECASE,
)


def _schema_refs(tree: ast.Module) -> tuple[dict[str, str], set[str]]:
    """Names bound to state tables (``from ..store.schema import runs as r``: r -> runs) and
    names bound to the schema module itself (``from ..store import schema as s``)."""
    tables: dict[str, str] = {}
    modules: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        last = (node.module or "").rpartition(".")[2]
        for alias in node.names:
            bound = alias.asname or alias.name
            if last == "schema" and alias.name in TABLES:
                tables[bound] = alias.name
            elif alias.name == "schema" and (last == "store" or (node.level and not node.module)):
                modules.add(bound)
    return tables, modules


def _table_of(node: ast.expr, tables: dict[str, str], modules: set[str]) -> str | None:
    if isinstance(node, ast.Name):
        return tables.get(node.id)
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in modules
        and node.attr in TABLES
    ):
        return node.attr
    return None


def _text(node: ast.AST) -> str | None:
    """A string constant, or an f-string with ``{SCHEMA}`` rendered (other fields: ``?``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif (
                isinstance(value, ast.FormattedValue)
                and isinstance(value.value, ast.Name)
                and value.value.id == "SCHEMA"
            ):
                parts.append(schema.SCHEMA)
            else:
                parts.append("?")
        return "".join(parts)
    return None


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def state_writes(source: str) -> list[tuple[int, str]]:
    """``(line, table)`` of every statement in ``source`` that writes a state table."""
    tree = ast.parse(source)
    tables, modules = _schema_refs(tree)
    docstrings = _docstrings(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in WRITES and node.args:  # sa.insert(runs), insert(runs), sa.delete(r)
                table = _table_of(node.args[0], tables, modules)
                if table is not None:
                    found.append((node.lineno, table))
            if isinstance(func, ast.Attribute) and func.attr in WRITES:  # runs.update()
                table = _table_of(func.value, tables, modules)
                if table is not None:
                    found.append((node.lineno, table))
        if id(node) in docstrings:
            continue
        text = _text(node)
        if text is not None:
            found += [(getattr(node, "lineno", 0), m) for m in _TEXT_WRITE.findall(text)]
    return found


def violations() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        for line, table in state_writes(path.read_text(encoding="utf-8")):
            if module not in (OWNERS.get(table), SCHEMA_MODULE):
                out.append(
                    f"{module}:{line} writes etl_express.{table} (owner: {OWNERS.get(table)})"
                )
    return out


def test_every_state_table_has_an_owner() -> None:
    assert set(OWNERS) == TABLES
    for module in set(OWNERS.values()):
        assert (PACKAGE / module).is_file(), module


def test_the_scan_finds_writes_of_every_kind() -> None:
    planted = '''
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from ..store.schema import SCHEMA, logs as log_table, runs
from ..store import schema as s

def f(conn):
    """Docstrings may say DELETE FROM etl_express.logs without writing it."""
    conn.execute(sa.update(runs).values(status="x"))
    conn.execute(insert(log_table).values(message="m"))
    conn.execute(s.quarantine.delete())
    conn.execute(sa.select(runs))  # a read
    conn.execute(sa.text(f"DELETE FROM {SCHEMA}.checkpoints WHERE pipeline = :p"))
    conn.execute(sa.text("insert into etl_express.pipelines (pipeline) values (:p)"))
    conn.execute(sa.text("SELECT * FROM etl_express.runs"))  # a read
'''
    assert sorted(t for _, t in state_writes(planted)) == [
        "checkpoints",
        "logs",
        "pipelines",
        "quarantine",
        "runs",
    ]


def test_no_state_table_is_written_outside_its_owner() -> None:
    assert violations() == []


def table_declarations(source: str) -> list[int]:
    """Lines of ``sa.Table(...)`` / ``MetaData(schema=...)`` declarations in the state schema:
    a table declared there, or metadata bound to it."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = (
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        )
        keywords = {k.arg: k.value for k in node.keywords}
        in_schema = keywords.get("schema")
        names_schema = (isinstance(in_schema, ast.Name) and in_schema.id == "SCHEMA") or (
            isinstance(in_schema, ast.Constant) and in_schema.value == schema.SCHEMA
        )
        if name in ("Table", "MetaData") and names_schema:
            found.append(node.lineno)
    return found


def test_state_tables_are_declared_in_one_place() -> None:
    planted = "import sqlalchemy as sa\nm = sa.MetaData(schema=SCHEMA)\nt = sa.Table('x', m, schema='etl_express')\n"
    assert table_declarations(planted) == [2, 3]
    elsewhere = [
        f"{path.relative_to(PACKAGE).as_posix()}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).as_posix() != SCHEMA_MODULE
        for line in table_declarations(path.read_text(encoding="utf-8"))
    ]
    assert elsewhere == []
    assert table_declarations((PACKAGE / SCHEMA_MODULE).read_text(encoding="utf-8"))
