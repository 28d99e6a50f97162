"""What the copy cannot answer the same way, said before anything runs.

The copy keeps each column's declared type wherever PostgreSQL has one with the same
comparison semantics (see docs/connectors/sql.md#types). Where it has none, the values land
exactly but some SQL over them answers differently on the copy: :func:`differences` names
those columns, grouped by what differs and with the query-side fix, for the replication to
log once per run (docs/replication.md, *What the copy answers differently*)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa

from ..format import normalize_name
from ..sources.sql.discovery import TableInfo

_LISTED = 6  #: columns named per kind; the rest are counted


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def differences(tables: Sequence[TableInfo]) -> list[str]:
    """One sentence per kind of difference the selected ``tables`` hold (none: ``[]``)."""
    enums: list[str] = []
    folded: dict[str, list[str]] = {}
    citext: list[str] = []
    money: list[str] = []
    renamed: list[str] = []
    quoted: list[str] = []
    for table in tables:
        if table.name != table.name.lower() or not re.fullmatch(r"[a-z_][a-z0-9_]*", table.name):
            quoted.append(table.name)
        for c in table.columns:
            where = f"{table.name}.{c.name}"
            kind = (c.source_type or "").lower()
            if kind.startswith(("enum(", "set(")) or (
                c.declared is None and isinstance(c.type, sa.Enum)
            ):
                enums.append(where)
            elif kind == "citext":
                citext.append(where)
            elif kind == "money":
                money.append(where)
            if c.collation and not c.collation.endswith("_bin") and "_nopad_" not in c.collation:
                folded.setdefault(c.collation, []).append(where)
            if normalize_name(c.name) != c.name.lower():  # an unquoted name folds to lower case
                renamed.append(f"{where} -> {normalize_name(c.name)}")
    out = []
    for collation, names in folded.items():
        out.append(
            f"{len(names)} text column(s) compare by the collation {collation} at the source "
            + ("('ALICE' = 'alice', " if "_ci" in collation else "(")
            + "trailing spaces ignored) and by their bytes in the copy, so a WHERE =, GROUP "
            "BY, DISTINCT, JOIN or ORDER BY on them can answer differently there: "
            f"{_listed(names)}; on the copy compare lower(column) (ILIKE for LIKE) and rtrim "
            "trailing spaces"
        )
    if enums:
        out.append(
            f"{len(enums)} ENUM/SET column(s) land as text: the source orders and compares "
            "them by their declared position, the copy alphabetically (ORDER BY, <, >, MIN, "
            f"MAX differ): {_listed(enums)}; on the copy order by the position, e.g. "
            "array_position(ARRAY['first', 'second'], column)"
        )
    if citext:
        out.append(
            f"{len(citext)} citext column(s) land as text, compared case-sensitively: "
            f"{_listed(citext)}; on the copy compare lower(column), or cast to citext"
        )
    if money:
        out.append(
            f"{len(money)} money column(s) land as their text ('$1,000.00'): ordered as text "
            f"and not summed: {_listed(money)}; on the copy cast them back, column::money "
            "(under the source's lc_monetary)"
        )
    if renamed:
        out.append(
            f"{len(renamed)} column(s) are named in snake_case in the copy (the common "
            f"format's names): {_listed(renamed)}; queries name them so there"
        )
    if quoted:
        out.append(
            f"{len(quoted)} table name(s) keep their spelling in the copy, where PostgreSQL "
            f"needs them in double quotes: {_listed(quoted)}"
        )
    return out


__all__ = ["differences"]
