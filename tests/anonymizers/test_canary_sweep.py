"""Canary sweep: personal data seeded in the source never lands anywhere else.

Valid-checksum SNILS, INN and Mir cards, unique emails and phones are seeded in a source
table in PostgreSQL and in a dict source. Pipelines into PostgresSink run with forced
failures: a step that crashes mid-run with a raw value in its message, a constraint
violation in the target table, and records with bad types that go to quarantine (with stray
personal data in fields nobody declared). Afterwards no raw or normalized canary, and not the
key (plain, hex or base64), appears in a dump of the target schema, in the pipelines' rows of
etl_express.runs/checkpoints/quarantine/quality_checks/logs, in the log lines, in exception
texts with their tracebacks, or in captured stdout/stderr.
"""

from __future__ import annotations

import base64
import json
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
from etl_express import Transformer
from etl_express.anonymizers import Pseudonymize, ScrubPII
from etl_express.anonymizers.keys import entity_subkey
from etl_express.errors import ETLError
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources.sql import SQLSource

from ..conftest import pg_exec
from . import idnumbers as nb
from .sources import ListSource

N = 60
PII = ["email", "phone", "snils", "inn", "card"]  # structured; notes is free text (ScrubPII)


class CrashOnce(Transformer):
    """A buggy step: on its third batch it fails with a raw value in its message."""

    def __init__(self, leak: str):
        self.leak = leak
        self.calls = 0
        self.armed = True

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.calls += 1
        if self.armed and self.calls == 3:
            raise RuntimeError(f"cannot handle customer {self.leak}")
        return batch

    def lineage(self, schema: pa.Schema) -> dict[str, tuple[str, ...]]:
        return {name: (name,) for name in schema.names}  # each column from itself


def _people(rng: random.Random) -> tuple[list[dict], set[str]]:  # type: ignore[type-arg]
    people, canaries = [], set()
    for i in range(1, N + 1):
        ten = nb.mobile(rng)
        email = f"Kanareyka.{uuid.uuid4().hex[:12]}@Example.ORG"
        snils, card = (
            nb.snils(rng),
            nb.card(rng, rng.choice(["2200", "2201", "2202", "2203", "2204"])),
        )
        inn = nb.inn12(rng) if i % 2 else nb.inn10(rng)
        phones = nb.phone_formats(ten)
        people.append(
            {
                "id": i,
                "email": email,
                "phone": phones[i % len(phones)],
                "snils": nb.fmt_snils(snils),
                "inn": inn,
                "card": nb.fmt_card(card),
                "notes": (
                    f"Клиент {email.upper()}, тел. {phones[(i + 2) % len(phones)]}, "
                    f"СНИЛС {nb.fmt_snils(snils)}, ИНН {inn}, карта {nb.fmt_card(card)}, заказ {i}"
                ),
            }
        )
        canaries |= {
            email,
            email.lower(),
            email.upper(),
            email.split("@")[0].lower(),
            *phones,
            f"7{ten}",
            ten,
            snils,
            nb.fmt_snils(snils),
            inn,
            card,
            nb.fmt_card(card),
        }
    return people, canaries


def _dump_schema(url: str, schema: str) -> str:
    if shutil.which("pg_dump"):
        done = subprocess.run(
            ["pg_dump", "--no-owner", "-n", schema, url],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return done.stdout
    text = []
    for (table,) in pg_exec(
        url, "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
    ):
        text += [r[0] for r in pg_exec(url, f'SELECT t::text FROM "{schema}"."{table}" t')]
    return "\n".join(text)


def _state_rows(url: str, pipelines: list[str]) -> str:
    text = []
    for table in ("runs", "checkpoints", "quarantine", "quality_checks", "logs"):
        text += [
            r[0]
            for r in pg_exec(
                url,
                f"SELECT t::text FROM etl_express.{table} t WHERE pipeline = ANY(%s)",
                (pipelines,),
            )
        ]
    return "\n".join(text)


def _forbidden(canaries: set[str], key: str) -> set[str]:
    raw = key.encode()
    words = set(canaries) | {
        key,
        raw.hex(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
    }
    for entity in ("email", "phone", "snils", "inn", "card"):
        sub = entity_subkey(raw, entity)
        words |= {sub.hex(), base64.b64encode(sub).decode()}
    return words


def test_canary_sweep(
    pg_url: str,
    schema: str,
    pipeline_name: str,
    anon_key: etl.SecretRef,
    key_value: str,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(1520)
    people, canaries = _people(rng)
    forbidden = _forbidden(canaries, key_value)
    src = "src_" + uuid.uuid4().hex[:10]
    log_lines: list[str] = []
    monkeypatch.setenv("ETL_EXPRESS_HOME", str(tmp_path))
    if hasattr(etl, "configure_logging"):  # file and console logging (issue 4), where present
        try:
            etl.configure_logging()  # its files go under ETL_EXPRESS_HOME = tmp_path, swept below
        except TypeError:
            etl.configure_logging(tmp_path)
    logger.enable("etl_express")
    sink_id = logger.add(log_lines.append, level="DEBUG", serialize=True)
    errors: list[str] = []

    def record(exc: BaseException) -> None:
        errors.append("".join(traceback.format_exception(exc)))
        result = getattr(exc, "result", None)
        if result is not None:
            errors.append(
                json.dumps(result.to_dict(), default=str)
                if hasattr(result, "to_dict")
                else repr(result)
            )

    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {src}")
            conn.execute(
                f"CREATE TABLE {src}.customers (id int PRIMARY KEY, email text, phone text, snils text, "
                "inn text, card text, notes text)"
            )
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {src}.customers VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [tuple(p.values()) for p in people],
                )

        # 1. SQL source -> PostgresSink: a crash mid-run, then a constraint violation, then success
        crash = CrashOnce(people[25]["email"])
        sql_pipeline = etl.Pipeline(
            pipeline_name,
            SQLSource(
                url=pg_url, table=f"{src}.customers", primary_key="id", batch_size=10, pii=PII
            ),
            transformers=[crash],
            anonymizers=[
                Pseudonymize(["email", "phone", "snils", "inn", "card"], key=anon_key),
                ScrubPII(["notes"]),
            ],
            sink=PostgresSink(f"{schema}.customers"),
        )
        with pytest.raises(ETLError) as crashed:
            sql_pipeline.run()
        record(crashed.value)
        crash.armed = False
        pg_exec(pg_url, f"ALTER TABLE {schema}.customers ADD CONSTRAINT no_45 CHECK (id <> 45)")
        # the violating row is quarantined (anonymized), the rest lands, the error budget fails the run
        with pytest.raises(ETLError, match="error rate") as violated:
            sql_pipeline.run()
        record(violated.value)
        reasons = pg_exec(
            pg_url,
            "SELECT reason FROM etl_express.quarantine WHERE pipeline = %s",
            (pipeline_name,),
        )
        assert any("no_45" in r[0] for r in reasons)
        pg_exec(pg_url, f"ALTER TABLE {schema}.customers DROP CONSTRAINT no_45")
        done = sql_pipeline.run(reset=True)
        assert done.status == "succeeded"
        assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.customers") == [(N,)]

        # 2. dict source with bad types: rejected records go to quarantine, anonymized
        dict_name = pipeline_name + "_q"
        rows = []
        for p in people:
            row = {k: p[k] for k in ("id", "email", "phone", "notes")} | {"amount": 10.5}
            if p["id"] % 6 == 0:  # bad type, plus stray personal data in undeclared fields
                row["amount"] = f"около {p['card']}"
                row["comment"] = (
                    f"резерв: {p['email']} / {p['phone']} / СНИЛС {p['snils']} / {p['card'].replace(' ', '')}"
                )
                row["extra"] = {"doc": {"snils": p["snils"], "inn": p["inn"]}}
            rows.append(row)
        declared = pa.schema(
            [
                ("id", pa.int64()),
                ("email", pa.string()),
                ("phone", pa.string()),
                ("notes", pa.string()),
                ("amount", pa.float64()),
            ]
        )
        dict_pipeline = etl.Pipeline(
            dict_name,
            ListSource(rows, schema=declared, batch_size=15, pii=["email", "phone"]),
            anonymizers=[Pseudonymize(["email", "phone"], key=anon_key), ScrubPII(["notes"])],
            sink=PostgresSink(f"{schema}.contacts"),
            max_error_rate=1.0,
        )
        result = dict_pipeline.run()
        assert result.rows_quarantined == N // 6 and result.rows_written == N - N // 6
        quarantined = pg_exec(
            pg_url, "SELECT record FROM etl_express.quarantine WHERE pipeline = %s", (dict_name,)
        )
        assert len(quarantined) == N // 6
        first = quarantined[0][0]
        assert (
            first["email"].startswith("email:")
            and "<SNILS>" in first["comment"]
            and "<EMAIL>" in first["comment"]
        )

        captured = capfd.readouterr()
        haystack = "\n".join(
            [
                _dump_schema(pg_url, schema),
                _state_rows(pg_url, [pipeline_name, dict_name]),
                *log_lines,
                *errors,
                captured.out,
                captured.err,
                *(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()),
            ]
        )
        assert "email:" in haystack and "<CARD>" in haystack and len(log_lines) > 5
        leaked = sorted(w for w in forbidden if w in haystack)
        assert not leaked, f"{len(leaked)} canaries leaked"
    finally:
        logger.remove(sink_id)
        logger.disable("etl_express")
        pg_exec(pg_url, f"DROP SCHEMA IF EXISTS {src} CASCADE")
