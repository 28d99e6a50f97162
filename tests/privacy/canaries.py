"""Planted personal data (canaries) and the places the privacy suite searches for them."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

import etl_express as etl
from etl_express import Batch, Source

from ..conftest import pg_exec


def _not_new_year(day: dt.date) -> dt.date:
    """A birth date that is not what ``Generalize(to="year")`` leaves (January 1st): a
    canary equal to an anonymized value would be found everywhere."""
    return day + dt.timedelta(days=1) if (day.month, day.day) == (1, 1) else day


def person(i: int) -> dict[str, Any]:
    """One person whose every personal value is unique to this test run."""
    tag = uuid.uuid4().hex[:10]
    return {
        "id": i,
        "full_name": f"Канарейкин{tag} Иван",
        "email": f"kanareyka.{tag}@example.org",
        "phone": f"+7 916 {i % 900 + 100:03d}-{int(tag[:4], 16) % 100:02d}-{int(tag[4:8], 16) % 100:02d}",
        "passport": f"45 0{i % 10} {int(tag[:6], 16) % 1_000_000:06d}",
        "birth_date": _not_new_year(
            dt.date(1950, 1, 1) + dt.timedelta(days=int(tag[:5], 16) % 20000)
        ).isoformat(),
        "city": "Тверь",
        "amount": str(i * 10),
        "notes": f"звонить {tag} вечером",
    }


PERSONAL = ("full_name", "email", "phone", "passport", "birth_date")


def canaries(people: Sequence[dict[str, Any]]) -> set[str]:
    """Every raw personal value, and the spellings a leak could take (digits only, lower)."""
    out: set[str] = set()
    for p in people:
        for column in PERSONAL:
            value = str(p[column])
            out |= {value, value.lower()}
            digits = "".join(c for c in value if c.isdigit())
            if column in ("phone", "passport"):
                out.add(digits)
        out.add(str(p["full_name"]).split()[0])
    return out


class PeopleSource(Source):
    """People in batches; ``reject`` ids are rejected by the source itself (with the raw
    record), the way a reader rejects a value it cannot deliver."""

    def __init__(
        self,
        people: list[dict[str, Any]],
        *,
        pii: Sequence[str] = (),
        reject: Sequence[int] = (),
        batch_size: int = 4,
        schema: pa.Schema | None = None,
        primary_key: Sequence[str] = ("id",),
    ):
        self.people, self.pii, self.reject = people, list(pii), set(reject)
        self.batch_size, self._schema = batch_size, schema
        self.name, self.primary_key = "people", list(primary_key)

    def read(self, position: Any = None, partition: Any = None) -> Iterator[Batch]:
        start = position or 0
        for i in range(start, len(self.people), self.batch_size):
            chunk = self.people[i : i + self.batch_size]
            good = [p for p in chunk if p["id"] not in self.reject]
            bad = [
                {
                    "record": p,
                    "reason": "people: column 'birth_date': not a date the target can hold",
                }
                for p in chunk
                if p["id"] in self.reject
            ]
            yield Batch(good, position=i + len(chunk), rejected=bad)  # type: ignore[arg-type]

    def schema(self) -> pa.Schema | None:
        return self._schema


def dump_database(url: str, exclude: str) -> str:
    """pg_dump of the whole database (target, state, logs) but the source system's schema."""
    if shutil.which("pg_dump"):
        done = subprocess.run(
            ["pg_dump", "--no-owner", "--data-only", "-N", exclude, url],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return done.stdout
    rows = pg_exec(
        url,
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema', %s)",
        [exclude],
    )
    return "\n".join(
        r[0] for s, t in rows for r in pg_exec(url, f'SELECT t::text FROM "{s}"."{t}" t')
    )


def files_text(folder: Path) -> str:
    """Every file under ``folder``: names and contents."""
    parts = []
    for path in sorted(folder.rglob("*")):
        parts.append(str(path))
        if path.is_file():
            parts.append(path.read_text(errors="replace"))
    return "\n".join(parts)


def leaked(haystack: str, planted: set[str]) -> list[str]:
    """The canaries found, each with the line it stands in (for the failure message)."""
    out = []
    for c in sorted(c for c in planted if c and c in haystack):
        at = haystack.index(c)
        start = haystack.rfind("\n", 0, at) + 1
        end = haystack.find("\n", at)
        out.append(f"{c!r} in: {haystack[start : end if end >= 0 else None][:400]}")
    return out


def as_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


__all__ = [
    "PERSONAL",
    "PeopleSource",
    "as_text",
    "canaries",
    "dump_database",
    "etl",
    "files_text",
    "leaked",
    "person",
]
