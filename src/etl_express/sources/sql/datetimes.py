"""PostgreSQL dates and timestamps the common format cannot hold, on both reader paths.

The common format's ``date32`` and ``timestamp[us, UTC]`` values must also be Python
``datetime`` values (records, JSON, quarantine): 0001-01-01 to 9999-12-31 23:59:59.999999.
PostgreSQL goes further — ``'infinity'``/``'-infinity'``, dates from 4713 BC to 5874897 AD,
timestamps from 4713 BC to 294276 AD (past 294247 not even int64 microseconds since 1970). A
row holding such a value is quarantined, the value written as PostgreSQL's text for it (UTC),
with a reason naming the column and how to map it in the query; never a wrapped or clipped
value. An ordering column holding one stops the read: no checkpoint could say where it stands.

Both readers report these fields as ``(row, column, code, raw)`` int64 rows: ``code`` +1/-1
for +/-infinity, +2/-2 after/before the range, ``raw`` PostgreSQL's value (days or
microseconds since 2000-01-01). The compiled reader's decoder reports them itself (see
``_copyread.c``); :func:`flag_adbc` finds them in what ADBC hands over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...errors import SourceError
from ...format import Batch, Rejected, to_records

_PG_EPOCH_DAYS = 10_957  # 2000-01-01 - 1970-01-01
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86_400_000_000
_DAY_US = 86_400_000_000
#: the common format's range (Python's datetime) in days / microseconds since 1970-01-01
DATE_RANGE = (-719_162, 2_932_896)
TIMESTAMP_RANGE = (-62_135_596_800_000_000, 253_402_300_799_999_999)
_FIRST = {"D": "0001-01-01", "T": "0001-01-01 00:00:00+00"}
_LAST = {"D": "9999-12-31", "T": "9999-12-31 23:59:59.999999+00"}


def flag_adbc(data: pa.RecordBatch) -> tuple[pa.RecordBatch, np.ndarray | None, bytes]:
    """ADBC's dates and timestamps out of the common format as nulls, with their flags
    (``None`` when there is none) and a kind a column (``D`` date, ``T`` timestamp, ``-``).

    ADBC shifts PostgreSQL's values to the Unix epoch with wrap-around: the infinities come
    as shifted sentinels, timestamps past 294247 as large negative numbers — all outside the
    range, and PostgreSQL's value is the shift undone modulo 2**64."""
    kinds = b"".join(
        b"D" if pa.types.is_date32(f.type) else b"T" if pa.types.is_timestamp(f.type) else b"-"
        for f in data.schema
    )
    flags = []
    arrays = list(data.columns)
    for col, kind in enumerate(kinds.decode()):
        if kind == "-":
            continue
        date = kind == "D"
        lo, hi = DATE_RANGE if date else TIMESTAMP_RANGE
        values = arrays[col].cast(pa.int32() if date else pa.int64())
        hit = pc.fill_null(pc.or_(pc.less(values, lo), pc.greater(values, hi)), False)
        if not pc.any(hit).as_py():
            continue
        for row in np.flatnonzero(hit.to_numpy(zero_copy_only=False)):
            shift, half = (_PG_EPOCH_DAYS, 2**31) if date else (_PG_EPOCH_US, 2**63)
            raw = (values[int(row)].as_py() - shift + half) % (2 * half) - half
            infinite = raw in (half - 1, -half)  # PostgreSQL's +/-infinity sentinels
            code = (1 if infinite else 2) * (1 if raw > 0 else -1)
            flags.append((int(row), col, code, raw))
        arrays[col] = pc.if_else(hit, pa.scalar(None, arrays[col].type), arrays[col])
    if not flags:
        return data, None, kinds
    fixed = pa.RecordBatch.from_arrays(arrays, schema=data.schema)
    return fixed, np.array(sorted(flags), dtype=np.int64).reshape(-1, 4), kinds


def quarantine_flagged(
    batch: Batch, flagged: np.ndarray, kinds: bytes, ordering: Sequence[str]
) -> Batch:
    """The batch without its flagged rows (``flagged``: the reader's (row, column, code, raw)
    rows, whose fields are null in the batch): those rows go to quarantine, each such value
    written as PostgreSQL's text for it, with a reason naming the columns and how to map them
    in the query (never the value). The position stays the last row read, so a resumed run
    does not read them again."""
    data = batch.data
    assert isinstance(data, pa.RecordBatch)
    names = data.schema.names
    fields: dict[int, list[tuple[str, str, str, str]]] = {}  # row -> (column, value, what, fix)
    for row, col, code, raw in flagged.tolist():
        name, kind = names[col], kinds[col : col + 1].decode()
        what, fix = _described(name, kind, code, ordering)
        fields.setdefault(row, []).append((name, pg_text(kind, code, raw), what, fix))
    bad = sorted(fields)
    rejected = []
    for row, record in zip(bad, to_records(data.take(pa.array(bad)))):
        record.update({name: value for name, value, _, _ in fields[row]})
        what = ", ".join(f"column {name!r}: {what}" for name, _, what, _ in fields[row])
        rejected.append(
            Rejected(
                row,
                record,
                f"{what}: no value in the common format; map it in the source query, "
                f"e.g. {fields[row][0][3]}",
                batch.position,
            )
        )
    return without_rows(batch, bad, rejected)


def without_rows(batch: Batch, bad: Sequence[int], rejected: Sequence[Rejected]) -> Batch:
    """``batch`` without its rows ``bad``, which it carries on as ``rejected`` (for
    quarantine); its position and meta unchanged."""
    data = batch.data
    assert isinstance(data, pa.RecordBatch)
    keep = np.ones(data.num_rows, dtype=bool)
    keep[list(bad)] = False
    return Batch(
        data.filter(pa.array(keep)),
        position=batch.position,
        meta=batch.meta,
        rejected=[*batch.rejected, *rejected],
    )


def _described(name: str, kind: str, code: int, ordering: Sequence[str]) -> tuple[str, str]:
    """:func:`_describe`, after refusing such a value in an ordering column: the checkpoint
    could not say where the read stands."""
    what, fix = _describe(name, kind, code)
    if name in ordering:
        raise SourceError(
            f"the ordering column {name!r} holds {what}",
            hint=f"read through a query that maps it, e.g. {fix}, or order by another column",
        )
    return what, fix


def _describe(name: str, kind: str, code: int) -> tuple[str, str]:
    """What the value is (without the value: it may be personal data) and a query mapping."""
    type_name = "date" if kind == "D" else "timestamp"
    if code in (1, -1):
        value = "infinity" if code > 0 else "-infinity"
        return f"PostgreSQL's {value} {type_name}", f"NULLIF({name}, '{value}')"
    if code > 0:
        return (
            f"a {type_name} after {_LAST[kind]}, the last the common format holds",
            f"LEAST({name}, '{_LAST[kind]}')",
        )
    return (
        f"a {type_name} before {_FIRST[kind]}, the first the common format holds",
        f"GREATEST({name}, '{_FIRST[kind]}')",
    )


class OutOfRange(str):
    """A date or timestamp psycopg could not turn into Python (±infinity, years past 9999 or
    before 1), as PostgreSQL's UTC text; :func:`guard_driver_dates` puts it in place of the
    value so that the SQLAlchemy path quarantines its row like the other two paths."""

    kind: str
    code: int


def guard_driver_dates(dbapi_connection: Any) -> None:
    """Make a psycopg connection hand over an :class:`OutOfRange` for each date or timestamp
    that Python cannot hold, instead of failing the whole read (``fast_path=False``)."""
    import psycopg
    from psycopg.types.datetime import DateLoader, TimestampLoader, TimestamptzLoader

    def guarded(base: Any, kind: str, zoned: bool) -> type:
        def load(self: Any, data: Any) -> Any:
            try:
                return base.load(self, data)
            except psycopg.DataError:
                text = bytes(data).decode()
                if not zoned and kind == "T" and "inf" not in text:
                    # a timestamp is UTC in the common format, written as the other paths do
                    text = text[:-3] + "+00 BC" if text.endswith(" BC") else text + "+00"
                out = OutOfRange(text)
                if "inf" in text:
                    out.code = -1 if text.startswith("-") else 1
                else:
                    out.code = -2 if text.endswith(" BC") else 2
                out.kind = kind
                return out

        return type(f"Guarded{base.__name__}", (base,), {"load": load})

    adapters = dbapi_connection.adapters
    adapters.register_loader("date", guarded(DateLoader, "D", False))
    adapters.register_loader("timestamp", guarded(TimestampLoader, "T", False))
    adapters.register_loader("timestamptz", guarded(TimestamptzLoader, "T", True))


def driver_problems(
    name: str, values: list[Any], ordering: Sequence[str]
) -> dict[int, tuple[str, str, str]]:
    """The :class:`OutOfRange` values of one column by row (set to ``None`` in ``values``):
    (column, PostgreSQL's text, a reason naming the column and the mapping, never the value).
    In an ordering column such a value stops the read, as on the other paths."""
    found = {}
    for row, value in enumerate(values):
        if isinstance(value, OutOfRange):
            what, fix = _described(name, value.kind, value.code, ordering)
            found[row] = (
                name,
                str(value),
                (
                    f"column {name!r}: {what}: no value in the common format; map it in the "
                    f"source query, e.g. {fix}"
                ),
            )
            values[row] = None
    return found


def pg_text(kind: str, code: int, raw: int) -> str:
    """PostgreSQL's text for a date or timestamp (ISO DateStyle, time zone UTC; ``raw`` in
    days or microseconds since 2000-01-01): ``infinity``, ``294247-01-10 04:00:54.775808+00``,
    ``4713-01-01 BC``."""
    if code in (1, -1):
        return "infinity" if code > 0 else "-infinity"
    if kind == "D":
        return _civil(raw + _PG_EPOCH_DAYS, "")
    days, us = divmod(raw + _PG_EPOCH_US, _DAY_US)
    seconds, micros = divmod(us, 1_000_000)
    clock = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    if micros:
        clock += f".{micros:06d}".rstrip("0")
    return _civil(days, f" {clock}+00")


def _civil(days: int, clock: str) -> str:
    """The proleptic Gregorian date ``days`` after 1970-01-01 (H. Hinnant's civil_from_days),
    years before 1 written as PostgreSQL does (``0001-12-31 BC`` is the day before 0001-01-01)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    if year >= 1:
        return f"{year:04d}-{month:02d}-{day:02d}{clock}"
    return f"{1 - year:04d}-{month:02d}-{day:02d}{clock} BC"


__all__ = [
    "DATE_RANGE",
    "TIMESTAMP_RANGE",
    "flag_adbc",
    "pg_text",
    "quarantine_flagged",
    "without_rows",
]
