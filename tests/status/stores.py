"""Stores filled by real pipeline runs, in a database of their own (so ``status`` and the
dashboard see exactly these pipelines): one that succeeded, one whose last run failed, one
gone stale (its run times moved back in the store), one that quarantines records whose
personal data must never show, and a parallel one."""

# detect_pii="off" below: these tests load made-up people raw on purpose (not what they
# test); the personal-data detector has its own tests (tests/anonymizers/test_detection.py)

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pyarrow as pa
from pydantic import SecretStr
from sqlalchemy.engine import make_url

import etl_express as etl
from etl_express.anonymizers import Pseudonymize
from etl_express.errors import SourceError
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources.base import Partition
from tests.reliability_sources import CUSTOMER_SCHEMA, ListSource, customers

#: raw personal data of the quarantining pipeline: present in its source, never on a page
CANARY_EMAIL = "canary.ivanova@example.org"
CANARY_ERROR = "crm replica refused the connection"


@contextmanager
def fresh_database(pg_url: str) -> Iterator[str]:
    """A new empty database on the test server; dropped afterwards."""
    name = f"{make_url(pg_url).database}_st_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        from etl_express.store.database import engine_for

        engine_for(make_url(pg_url).set(database=name).render_as_string(hide_password=False))
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class BrokenSource(ListSource):
    """Delivers its first batch, then fails the way an unreachable system does."""

    def read(self, position: Any = None, partition: Partition | None = None) -> Iterator[etl.Batch]:
        for batch in super().read(position, partition):
            yield batch
            raise SourceError(CANARY_ERROR, where={"source": self.name}, hint="check the replica")


class SplitSource(ListSource):
    """A list split into two id ranges, for a parallel run with partitions."""

    def partitions(self, n: int | None = None) -> list[Partition]:
        half = len(self.rows) // 2
        return [{"lo": 0, "hi": half}, {"lo": half, "hi": None}]

    def read(self, position: Any = None, partition: Partition | None = None) -> Iterator[etl.Batch]:
        lo, hi = (partition or {}).get("lo", 0), (partition or {}).get("hi")
        rows = self.rows[lo:hi]
        start = position or 0
        for i in range(start, len(rows), self.batch_size):
            chunk = rows[i : i + self.batch_size]
            yield etl.Batch(chunk, position=i + len(chunk))


class PeopleSource(etl.Source):
    """People with a tagged e-mail, keyed by a surrogate id, five a batch."""

    name, primary_key, pii = "people", ["id"], ["email"]

    def __init__(self, rows: list[dict[str, Any]]):
        self.rows = rows

    def schema(self) -> pa.Schema:
        return pa.schema(
            [("id", pa.int64()), ("email", pa.string()), ("name", pa.string()), ("age", pa.int64())]
        )

    def read(self, position: Any = None, partition: Partition | None = None) -> Iterator[etl.Batch]:
        rows = [r for r in self.rows if position is None or r["id"] > position["key"][0]]
        for i in range(0, len(rows), 5):
            chunk = rows[i : i + 5]
            yield etl.Batch(chunk, position={"key": [chunk[-1]["id"]]})


def people() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"id": i, "email": f"person{i:02d}@example.com", "name": f"Person {i}", "age": 20 + i}
        for i in range(18)
    ]
    rows.append({"id": 18, "email": CANARY_EMAIL, "name": "Canary", "age": "not a number"})
    rows.append({"id": 19, "email": "zz.last@example.com", "name": "Last", "age": "forty"})
    return rows


def run_ok(url: str, schema: str, freshness: str | None = "26h", name: str = "orders_ok") -> None:
    """Three succeeded runs of 100, 200 and 300 rows; the third brings a new column."""
    for n in (100, 200, 300):
        rows, row_schema = customers(n), CUSTOMER_SCHEMA
        if n == 300:  # a schema change: the source now sends a segment
            rows = [{**r, "segment": f"s{r['id'] % 3}"} for r in rows]
            row_schema = CUSTOMER_SCHEMA.append(pa.field("segment", pa.string()))
        etl.Pipeline(
            name,
            ListSource(rows, batch_size=50, schema=row_schema),
            sink=PostgresSink(f"{schema}.orders", url=url),
            freshness=freshness,
            progress=False,
            detect_pii="off",
        ).run(reset=True)


def run_failed(url: str, schema: str) -> None:
    """A succeeded run, one failed by its error budget (a failed quality check), then one
    that fails reading its second batch."""

    def pipeline(source: etl.Source) -> etl.Pipeline:
        return etl.Pipeline(
            "crm_failed",
            source,
            sink=PostgresSink(f"{schema}.crm", url=url),
            freshness="26h",
            progress=False,
            detect_pii="off",
        )

    pipeline(ListSource(customers(40), batch_size=50, schema=CUSTOMER_SCHEMA)).run()
    bad = [{**r, "amount": "n/a"} if r["id"] % 10 == 0 else r for r in customers(50)]
    for source in (
        ListSource(bad, batch_size=50, schema=CUSTOMER_SCHEMA),
        BrokenSource(customers(80), batch_size=20, schema=CUSTOMER_SCHEMA),
    ):
        try:
            pipeline(source).run(reset=True)
        except etl.ETLError:
            pass
        else:
            raise AssertionError("the crm_failed pipeline did not fail")


def run_stale(url: str, schema: str, freshness: str = "1h", hours_back: float = 3) -> None:
    """A succeeded run whose times are then moved ``hours_back`` into the past."""
    etl.Pipeline(
        "legacy_stale",
        ListSource(customers(60), batch_size=50, schema=CUSTOMER_SCHEMA),
        sink=PostgresSink(f"{schema}.legacy", url=url),
        freshness=freshness,
        progress=False,
        detect_pii="off",
    ).run()
    age_back(url, "legacy_stale", hours_back)


def age_back(url: str, pipeline: str, hours: float) -> None:
    """Move every run of ``pipeline`` ``hours`` into the past, as if nothing ran since."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE etl_express.runs SET started_at = started_at - make_interval(secs => %s), "
            "finished_at = finished_at - make_interval(secs => %s) WHERE pipeline = %s",
            (hours * 3600, hours * 3600, pipeline),
        )


def run_quarantining(url: str, schema: str) -> None:
    """People with a pseudonymized e-mail; two records quarantined (age not a number)."""
    etl.Pipeline(
        "people_quarantine",
        PeopleSource(people()),
        anonymizers=[Pseudonymize(["email"], key=SecretStr(secrets.token_urlsafe(48)))],
        sink=PostgresSink(f"{schema}.people", url=url),
        max_error_rate=0.5,
        freshness="26h",
        progress=False,
        detect_pii="off",
    ).run()


def run_parallel(url: str, schema: str) -> None:
    """One run over two partitions (in this process)."""
    pipeline = etl.Pipeline(
        "events_parallel",
        SplitSource(customers(120), batch_size=25, schema=CUSTOMER_SCHEMA),
        sink=PostgresSink(f"{schema}.events", url=url),
        freshness="7d",
        progress=False,
        detect_pii="off",
    )
    pipeline.run(partitions=pipeline.partitions(2))


def fill(url: str) -> None:
    """The four pipelines (succeeded, failed, stale, quarantining) and a parallel one."""
    schema = "data_" + uuid.uuid4().hex[:6]
    run_ok(url, schema)
    run_failed(url, schema)
    run_stale(url, schema)
    run_quarantining(url, schema)
    run_parallel(url, schema)


if __name__ == "__main__":  # python -m tests.status.stores URL: fill with logging to the store
    import sys

    etl.configure_logging()
    fill(sys.argv[1])
