"""Canary sweep for positions and population anonymizers.

* A personal-data primary key or cursor (tagged, or anonymized) is refused before anything is
  read or written; with a surrogate key the same data loads and no raw value is anywhere.
* Rows that ``KAnonymity`` / ``Suppress`` would have removed, failing for another reason (a
  bad type, a target constraint), never land with raw quasi-identifiers in quarantine.

Afterwards nothing raw is found in a dump of the test schema, the pipelines' rows of every
state table, the log lines and log files, exception texts, the JSONL export files (names
and contents) and their manifests.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import subprocess
import traceback
import uuid
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest
from loguru import logger

import etl_express as etl
from etl_express.anonymizers import Generalize, KAnonymity, Pseudonymize, ScrubPII, Suppress
from etl_express.errors import ETLConfigError
from etl_express.sinks import JSONLSink
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources.sql import SQLSource

from ..conftest import pg_exec, state_rows
from . import idnumbers as nb
from .sources import ListSource

N = 40


def _dump(url: str, schemas: list[str]) -> str:
    if shutil.which("pg_dump"):
        done = subprocess.run(
            ["pg_dump", "--no-owner", *(f"-n{s}" for s in schemas), url],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return done.stdout
    text = []
    for schema in schemas:
        for (table,) in pg_exec(
            url,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,),
        ):
            text += [r[0] for r in pg_exec(url, f'SELECT t::text FROM "{schema}"."{table}" t')]
    return "\n".join(text)


def _state(url: str, pipelines: list[str]) -> str:
    text = []
    for table in ("runs", "checkpoints", "quarantine", "quality_checks", "logs"):
        text += [
            r[0]
            for r in pg_exec(
                url,
                f"SELECT t::text FROM etl_express.{table} t WHERE pipeline LIKE ANY(%s)",
                ([p + "%" for p in pipelines],),
            )
        ]
    return "\n".join(text)


def _people(rng: random.Random) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for i in range(1, N + 1):
        out.append(
            {
                "id": i,
                "snils": nb.fmt_snils(nb.snils(rng)),
                "email": f"canary.{uuid.uuid4().hex[:10]}@example.net",
                "birth_date": dt.date(1950 + rng.randrange(50), 1 + rng.randrange(12), 2 + i % 27),
                "city": rng.choice(["Москва", "Химки", "Казань", "Тверь"]) + f" ул. {i}",
                "amount": float(i),
            }
        )
    return out


def test_positions_and_population_canaries(
    pg_url: str,
    schema: str,
    pipeline_name: str,
    anon_key: etl.SecretRef,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(2024)
    people = _people(rng)
    canaries = set()
    for p in people:
        canaries |= {p["snils"], p["snils"].replace("-", "").replace(" ", ""), p["email"]}
        canaries |= {p["birth_date"].isoformat(), p["city"]}
    src = "src_" + uuid.uuid4().hex[:10]
    monkeypatch.setenv("ETL_EXPRESS_HOME", str(tmp_path / "home"))
    etl.configure_logging()
    logger.enable("etl_express")
    lines: list[str] = []
    sink_id = logger.add(lines.append, level="DEBUG", serialize=True)
    errors: list[str] = []
    names = [pipeline_name]
    try:
        pg_exec(pg_url, f"CREATE SCHEMA {src}")
        pg_exec(
            pg_url,
            f"CREATE TABLE {src}.people (id int PRIMARY KEY, snils text UNIQUE, email text, "
            "birth_date date, city text, amount float8, updated_at timestamptz DEFAULT now())",
        )
        with psycopg.connect(pg_url, autocommit=True) as conn, conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {src}.people (id, snils, email, birth_date, city, amount) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [tuple(p.values()) for p in people],
            )

        def sql(**kw: object) -> SQLSource:
            return SQLSource(pg_url, table=f"{src}.people", batch_size=7, **kw)  # type: ignore[arg-type]

        pseudo = Pseudonymize(["snils", "email"], key=anon_key)
        refused = {
            "pk_tagged": (sql(primary_key="snils", pii=["snils"]), [pseudo]),
            "pk_anonymized": (sql(primary_key="SNILS"), [pseudo]),
            "cursor_anonymized": (sql(primary_key="id", cursor="Email"), [pseudo]),
            "dict_pk": (ListSource([{"id": 1, "snils": people[0]["snils"]}]), [ScrubPII(["ID"])]),
        }
        for label, (source, anonymizers) in refused.items():
            name = f"{pipeline_name}_{label}"
            pipeline = etl.Pipeline(
                name,
                source,
                anonymizers=anonymizers,
                sink=JSONLSink(tmp_path / "out" / label, state_url=pg_url),
            )
            with pytest.raises(ETLConfigError, match="surrogate") as err:
                pipeline.run()
            errors.append("".join(traceback.format_exception(err.value)))
            assert not (tmp_path / "out" / label).exists()
            assert state_rows(pg_url, "checkpoints", name) == 0

        # the same data by a surrogate key: lands, exported, nothing raw anywhere
        ok = etl.Pipeline(
            pipeline_name + "_jsonl",
            sql(primary_key="id", cursor="updated_at", pii=["snils", "email"]),
            anonymizers=[pseudo, Generalize(["birth_date"], to="year"), Suppress(["city"])],
            sink=JSONLSink(tmp_path / "out" / "ok", state_url=pg_url),
        )
        assert ok.run().status == "succeeded"
        files = sorted((tmp_path / "out" / "ok").rglob("part-*"))
        assert files and all(f.name.startswith("part-0000000") for f in files)
        manifest = next((tmp_path / "out" / "ok" / "_runs").glob("*.json")).read_text()
        assert "start_position" not in manifest and '"batch"' in manifest

        # KAnonymity / Suppress rows failing another way: a bad type (convert stage) ...
        rows = []
        for p in people:
            row = {k: p[k] for k in ("id", "snils", "email", "city")}
            row["birth_date"] = p["birth_date"].isoformat()
            row["amount"] = "не число" if p["id"] % 5 == 0 else p["amount"]
            rows.append(row)
        declared = pa.schema(
            [
                ("id", pa.int64()),
                ("snils", pa.string()),
                ("email", pa.string()),
                ("city", pa.string()),
                ("birth_date", pa.string()),
                ("amount", pa.float64()),
            ]
        )
        for label, gate in (
            ("k", KAnonymity(["birth_date", "city"], k=3, on_violation="suppress")),
            ("s", Suppress(quasi_identifiers=["Birth Date", "City"], k=3)),
        ):
            name = f"{pipeline_name}_{label}"
            pipeline = etl.Pipeline(
                name,
                ListSource(rows, schema=declared, batch_size=20, pii=["snils", "email"]),
                anonymizers=[pseudo, gate],
                sink=PostgresSink(f"{schema}.people_{label}"),
                max_error_rate=1.0,
            )
            result = pipeline.run()
            assert result.rows_quarantined == N // 5
            stored = pg_exec(
                pg_url, "SELECT record FROM etl_express.quarantine WHERE pipeline = %s", [name]
            )
            assert len(stored) == N // 5
            for (rec,) in stored:
                assert "birth_date" not in rec and "city" not in rec
                assert rec["snils"].startswith("snils:")

        # ... and a target constraint on rows that passed the gate (sink stage)
        pg_exec(
            pg_url,
            f"CREATE TABLE {schema}.gated (id bigint PRIMARY KEY, amount float8 CHECK (amount < 30), snils text, email text, birth_date text, city text)",
        )
        grouped = [
            {**r, "birth_date": "1980", "city": "Москва", "amount": float(r["id"])} for r in rows
        ]
        name = f"{pipeline_name}_c"
        sink_stage = etl.Pipeline(
            name,
            ListSource(grouped, schema=declared, batch_size=20, pii=["snils", "email"]),
            anonymizers=[pseudo, KAnonymity(["birth_date", "city"], k=3)],
            sink=PostgresSink(f"{schema}.gated"),
            max_error_rate=1.0,
        )
        assert sink_stage.run().rows_quarantined > 0

        text = "\n".join(
            [
                _dump(pg_url, [schema]),
                _state(pg_url, names),
                *lines,
                *errors,
                *(str(p) for p in tmp_path.rglob("*")),
                *(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()),
            ]
        )
        assert "snils:" in text and len(lines) > 5
        leaked = sorted(c for c in canaries if c in text)
        assert not leaked, f"{len(leaked)} canaries leaked, e.g. a {type(leaked[0]).__name__}"
    finally:
        logger.remove(sink_id)
        logger.disable("etl_express")
        pg_exec(pg_url, f"DROP SCHEMA IF EXISTS {src} CASCADE")
