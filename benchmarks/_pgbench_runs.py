"""The cases of ``pg_to_pg.py`` run inside this process: the load through etl-express (plain,
anonymized, or with the stand-in anonymizers), the raw pipe through psycopg and dlt's
``sql_table``. ``pg_to_pg.py`` runs ``dlt`` and ``etl_standin`` this way in a child process;
``profile_stages.py`` and ``bench_detection.py`` instrument them.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from _pgbench_db import CASE_TABLES, DDL, reset_target

#: the secret the anonymized cases key ``Pseudonymize`` with (``pg_to_pg.py`` sets a random
#: one when it is unset)
ANON_KEY_ENV = "ETL_EXPRESS_BENCH_ANON_KEY"


def load_anonymizers() -> list[Any] | None:
    try:
        from etl_express.anonymizers import Pseudonymize, ScrubPII  # type: ignore[attr-defined]
    except ImportError:
        return None
    import etl_express as etl

    return [
        Pseudonymize(["email", "phone", "full_name"], key=etl.secret(ANON_KEY_ENV)),
        ScrubPII(["notes"]),
    ]


def standin_anonymizers() -> list[Any]:
    """A stand-in for Pseudonymize + ScrubPII with the cost profile of a straightforward
    implementation: keyed BLAKE2b per value in Python (the keyed state copied, not rebuilt,
    for each value) after vectorized normalization, and RE2 replacements in Arrow for the
    free text. Only for estimating the pipeline's throughput before the real ones exist."""
    import hashlib

    import pyarrow as pa
    import pyarrow.compute as pc

    from etl_express import Anonymizer

    class StandinPseudonymize(Anonymizer):
        def __init__(self, columns: list[str], key: bytes):
            self.columns = tuple(columns)
            self._base = hashlib.blake2b(key=key, digest_size=16)

        def anonymize(self, batch: pa.RecordBatch) -> pa.RecordBatch:
            for name in self.columns:
                i = batch.schema.get_field_index(name)
                col = pc.utf8_lower(pc.utf8_trim_whitespace(batch.column(i)))
                out = []
                for value in col.to_pylist():
                    if value is None:
                        out.append(None)
                        continue
                    h = self._base.copy()
                    h.update(value.encode())
                    out.append(h.hexdigest())
                batch = batch.set_column(i, name, pa.array(out, pa.string()))
            return batch

    class StandinScrub(Anonymizer):
        def __init__(self, columns: list[str]):
            self.columns = tuple(columns)

        def anonymize(self, batch: pa.RecordBatch) -> pa.RecordBatch:
            for name in self.columns:
                i = batch.schema.get_field_index(name)
                col = pc.replace_substring_regex(
                    batch.column(i), r"[\w.+-]+@[\w-]+\.[\w.-]+", "<email>"
                )
                col = pc.replace_substring_regex(
                    col, r"(?:\+7|\b8)[\s(-]*\d{3}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}", "<phone>"
                )
                batch = batch.set_column(i, name, col)
            return batch

    key = bytes.fromhex(os.environ[ANON_KEY_ENV])
    return [StandinPseudonymize(["email", "phone", "full_name"], key), StandinScrub(["notes"])]


def run_etl(src: str, dst: str, anonymize: bool | str, batch_size: int | None) -> float:
    """One load in this process (``profile_stages.py`` instruments it); its seconds."""
    from etl_express import Pipeline
    from etl_express.sinks import PostgresSink
    from etl_express.sources import SQLSource

    if anonymize == "standin":
        anonymizers = standin_anonymizers()
    else:
        anonymizers = (load_anonymizers() if anonymize else []) or []
    table = CASE_TABLES[
        "etl_standin" if anonymize == "standin" else "etl_anon" if anonymize else "etl"
    ]
    reset_target(dst, table)
    options = {"batch_size": batch_size} if batch_size else {}
    pipeline = Pipeline(
        name="bench_" + table,
        source=SQLSource(url=src, table="customers", primary_key="id", **options),
        anonymizers=anonymizers,
        sink=PostgresSink(table=f"public.{table}", url=dst),
        progress=False,
        # the plain case copies the synthetic customers as they are, on purpose: the
        # throughput of the load itself (the anonymized cases keep the default "refuse")
        detect_pii="refuse" if anonymizers else "off",
        # the anonymized case is 3 x Pseudonymize + ScrubPII: the synthetic birth dates
        # are declared, not generalized, so the case stays the one measured before
        not_pii={"birth_date": "synthetic benchmark dates; the measured case leaves them as is"},
    )
    t0 = time.perf_counter()
    result = pipeline.run()
    elapsed = time.perf_counter() - t0
    assert result.status == "succeeded", result
    return elapsed


def run_raw_copy(src: str, dst: str) -> float:
    """The raw pipe in this process, through psycopg (for ``profile_stages.py``)."""
    reset_target(dst, "raw_customers")
    with psycopg.connect(dst, autocommit=True) as conn:
        conn.execute(DDL.format(table="raw_customers"))
    t0 = time.perf_counter()
    with psycopg.connect(src) as sconn, psycopg.connect(dst) as dconn:
        with (
            sconn.cursor() as scur,
            dconn.cursor() as dcur,
            scur.copy(
                "COPY (SELECT * FROM customers ORDER BY id) TO STDOUT (FORMAT binary)"
            ) as out,
            dcur.copy("COPY raw_customers FROM STDIN (FORMAT binary)") as into,
        ):
            buf = bytearray()
            for row in out:  # one message a row: hand libpq ~1 MB at a time
                buf += row
                if len(buf) >= 1 << 20:
                    into.write(buf)
                    buf = bytearray()
            if buf:
                into.write(buf)
        dconn.commit()
    return time.perf_counter() - t0


def case_runner(case: str, src: str, dst: str, batch_size: int | None) -> Callable[[], float]:
    """A case run in this process (``profile_stages.py``)."""
    return {
        "raw_copy": lambda: run_raw_copy(src, dst),
        "etl": lambda: run_etl(src, dst, False, batch_size),
        "etl_anon": lambda: run_etl(src, dst, True, batch_size),
        "etl_standin": lambda: run_etl(src, dst, "standin", batch_size),
        "dlt": lambda: run_dlt(src, dst, batch_size or 50_000),
    }[case]


def run_dlt(src: str, dst: str, batch_size: int) -> float:
    import dlt
    from dlt.sources.sql_database import sql_table
    from sqlalchemy.engine import make_url

    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    target = make_url(dst)
    if target.password is None:  # dlt insists on one; a trust-auth server ignores it
        target = target.set(password="unused")
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = dlt.pipeline(
            pipeline_name="bench_" + uuid.uuid4().hex[:6],
            pipelines_dir=tmp,
            destination=dlt.destinations.postgres(
                credentials=target.render_as_string(hide_password=False)
            ),
            dataset_name="dlt_bench",
        )
        resource = sql_table(
            credentials=src, table="customers", backend="pyarrow", chunk_size=batch_size
        )
        t0 = time.perf_counter()
        pipeline.run(resource, write_disposition="replace")
        elapsed = time.perf_counter() - t0
    with psycopg.connect(dst, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS dlt_bench CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS dlt_bench_staging CASCADE")
    return elapsed


def dlt_available() -> bool:
    try:
        import dlt  # noqa: F401
        from dlt.sources.sql_database import sql_table  # noqa: F401
    except ImportError:
        return False
    return True
