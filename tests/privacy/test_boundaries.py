"""Canaries planted in a source never leave the process raw, whatever step rejects them.

One pipeline with every kind of transformer (Rename, Select, Cast, Derive, NormalizeEmpty,
Filter) and a record rejected at every point (the source, the conversion, Cast after the
renames, Derive, the target's constraint), into PostgreSQL and into a JSONL export, plus a
target that quotes a refused value in its error. Then every boundary is searched for the
canaries (their raw and digits-only spellings): a pg_dump of the whole database (target and
state), the log files, the exception texts, the CLI's output (``runs``, ``status``,
``quarantine list``, ``logs show``), the dashboard's pages, the export files with their names
and manifests, and the values an Airflow task would push as XComs.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from loguru import logger

import etl_express as etl
from etl_express.anonymizers import Generalize, Mask, Pseudonymize, ScrubPII
from etl_express.errors import ETLError
from etl_express.sinks import JSONLSink, PostgresSink
from etl_express.sources import SQLSource
from etl_express.transformers import Cast, Derive, Filter, NormalizeEmpty, Rename, Select

from ..conftest import pg_exec
from .canaries import PeopleSource, as_text, canaries, dump_database, files_text, leaked, person

N = 12
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        *((c, pa.string()) for c in ("full_name", "email", "phone", "passport")),
        ("birth_date", pa.string()),
        ("city", pa.string()),
        ("amount", pa.int64()),
        ("notes", pa.string()),
    ]
)
TAGS = ["full_name", "email", "phone", "passport", "birth_date"]
SOURCE_REJECTS = [2]  # rejected by the source itself
CONVERT = 3  # its amount is not an integer
BAD_DATE = 4  # Cast(birth_date: date) refuses it, after Rename and Select
ZERO = 5  # Derive divides by its amount
FILTERED = 6
VIOLATES = 7  # the target's CHECK constraint refuses it
SOURCE_SCHEMA = "source_system"


def _people() -> list[dict[str, Any]]:
    people = [person(i) for i in range(1, N + 1)]
    for p in people:
        p["amount"] = int(p["amount"])
    people[CONVERT - 1]["amount"] = f"около {people[CONVERT - 1]['phone']}"
    people[BAD_DATE - 1]["birth_date"] = people[BAD_DATE - 1]["birth_date"][:5] + "13-45"
    people[ZERO - 1]["amount"] = 0
    return people


def _pipeline(
    name: str, people: list[dict[str, Any]], sink: Any, key: etl.SecretRef
) -> etl.Pipeline:
    return etl.Pipeline(
        name,
        PeopleSource(people, pii=TAGS, reject=SOURCE_REJECTS, schema=SCHEMA),
        transformers=[
            Rename({"email": "mail", "full_name": "name"}),
            Select(
                ["id", "name", "mail", "phone", "passport", "birth_date", "city", "amount", "notes"]
            ),
            Cast({"birth_date": "date"}),
            Derive(
                "per_unit", lambda b: pc.divide_checked(pa.scalar(100, pa.int64()), b["amount"])
            ),
            NormalizeEmpty("strip"),
            Filter(pc.field("id") != FILTERED),
        ],
        anonymizers=[
            Pseudonymize(["name", "mail", "phone"], key=key),
            Mask(["passport"], keep_last=2),
            Generalize(["birth_date"], to="year"),
            ScrubPII(["notes"]),
        ],
        sink=sink,
        max_error_rate=1.0,
        progress=False,
    )


class Sweep:
    """What the scenario left at every boundary."""

    def __init__(self) -> None:
        self.planted: set[str] = set()
        self.errors: list[str] = []
        self.names: list[str] = []
        self.xcoms: list[Any] = []
        self.home = Path()
        self.people: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def sweep(own_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    import secrets

    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("home")
    mp.setenv("ETL_EXPRESS_HOME", str(home))
    mp.setenv("ETL_EXPRESS_DATABASE_URL", own_db)
    mp.setenv("ETL_EXPRESS_PRIVACY_KEY", secrets.token_urlsafe(48))
    key = etl.secret("PRIVACY_KEY")
    etl.configure_logging()  # log files under ETL_EXPRESS_HOME, searched below
    logger.enable("etl_express")
    out = Sweep()
    out.home = home
    people = out.people = _people()
    out.planted = canaries(people)
    base = "priv_" + uuid.uuid4().hex[:8]
    try:
        # into PostgreSQL, then again with a constraint the target refuses one row by
        table = f"public.{base}_people"
        pg = _pipeline(base, people, PostgresSink(table, url=own_db), key)
        first = pg.run()
        assert first.rows_quarantined == 4  # source, convert, Cast, Derive
        pg_exec(
            own_db, f"ALTER TABLE {table} ADD CONSTRAINT no_7 CHECK (id <> {VIOLATES}) NOT VALID"
        )
        people[VIOLATES - 1]["amount"] += 1  # changed, so the target rewrites (and refuses) it
        second = pg.run(reset=True)
        assert second.rows_quarantined == 5
        out.names.append(base)
        # into a JSONL export
        export = home / "export"
        _pipeline(base + "_jsonl", people, JSONLSink(export, state_url=own_db), key).run()
        out.names.append(base + "_jsonl")
        # a source query PostgreSQL refuses quoting the value: runs.error, logs, CLI, dashboard
        src = f"{SOURCE_SCHEMA}.{base}_src"  # the source system: not searched
        pg_exec(own_db, f"CREATE SCHEMA IF NOT EXISTS {SOURCE_SCHEMA}")
        pg_exec(own_db, f"CREATE TABLE {src} (id int PRIMARY KEY, phone text)")
        for p in people:
            digits = "".join(c for c in p["phone"] if c.isdigit())
            pg_exec(own_db, f"INSERT INTO {src} VALUES (%s, %s)", [p["id"], digits])
        refused = etl.Pipeline(
            base + "_quoting",
            SQLSource(
                own_db, query=f"SELECT id, phone::integer AS phone FROM {src}", primary_key="id"
            ),
            anonymizers=[Mask(["phone"], keep_last=2)],
            sink=PostgresSink(f"public.{base}_quoting", url=own_db),
            progress=False,
        )
        try:
            refused.run()
        except ETLError as exc:
            out.errors.append("".join(traceback.format_exception(exc)))
        out.names.append(base + "_quoting")
        # an Airflow task's XComs: the partition plan and the run result it returns
        from etl_express.airflow.tasks import plan_partitions, run_partition

        out.xcoms.append(plan_partitions(pg))
        out.xcoms.append(run_partition(pg, None))
        out.xcoms.append(pg.anonymize_record(people[0]))
        yield out
    finally:
        logger.disable("etl_express")
        mp.undo()


def test_quarantine_holds_every_rejection_point_anonymized(sweep: Sweep, own_db: str) -> None:
    rows = pg_exec(
        own_db,
        "SELECT record, stage, reason FROM etl_express.quarantine WHERE pipeline = %s",
        [sweep.names[0]],
    )
    stages = sorted({r[1] for r in rows})
    assert stages == ["convert", "sink", "source"], stages
    by_id = {int(r[0]["id"]): r[0] for r in rows}
    assert set(by_id) == {2, CONVERT, BAD_DATE, ZERO, VIOLATES}
    assert by_id[BAD_DATE]["mail"].startswith("email:")  # named as at the Cast that refused it
    assert "email" not in by_id[BAD_DATE] and "full_name" not in by_id[BAD_DATE]
    assert by_id[2]["email"].startswith("email:")  # as read, anonymized as it becomes 'mail'
    assert by_id[VIOLATES]["passport"] == "****" + sweep.people[VIOLATES - 1]["passport"][-2:]
    assert not leaked(as_text([r[0] for r in rows]) + as_text([r[2] for r in rows]), sweep.planted)


def test_database_dump_holds_no_canary(sweep: Sweep, own_db: str) -> None:
    dump = dump_database(own_db, exclude=SOURCE_SCHEMA)
    assert "email:" in dump and sweep.names[0] in dump
    assert not leaked(dump, sweep.planted)


def test_error_texts_keep_the_problem_not_the_value(sweep: Sweep, own_db: str) -> None:
    (error,) = sweep.errors
    assert "out of range for type integer" in error and "<value>" in error, error
    stored = pg_exec(
        own_db, "SELECT error FROM etl_express.runs WHERE pipeline = %s", [sweep.names[2]]
    )
    assert stored and all("<value>" in r[0] for r in stored), stored
    assert not leaked(error + as_text(stored), sweep.planted)


def test_log_files_hold_no_canary(sweep: Sweep) -> None:
    from etl_express.logs import flush_logs

    flush_logs()
    text = files_text(sweep.home / "logs")
    assert "run succeeded" in text
    assert not leaked(text, sweep.planted)


def test_cli_output_holds_no_canary(
    sweep: Sweep, own_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from etl_express.cli import _register, app

    _register()
    monkeypatch.setenv("ETL_EXPRESS_DATABASE_URL", own_db)
    outputs = []
    for args in (
        ["runs", "--json"],
        ["status", "--json"],
        ["quarantine", "list", sweep.names[0], "--json"],
        ["logs", "show", sweep.names[0]],
    ):
        result = CliRunner().invoke(app, args)
        outputs.append(result.output)
    text = "\n".join(outputs)
    assert sweep.names[0] in text and "email:" in text
    assert not leaked(text, sweep.planted)


def test_dashboard_pages_hold_no_canary(sweep: Sweep, own_db: str) -> None:
    import asyncio

    import httpx

    from etl_express.store.database import engine_for
    from etl_express.ui.app import create_app

    async def pages() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(engine_for(own_db)))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            paths = ["/", "/quarantine", *(f"/pipelines/{n}" for n in sweep.names)]
            return [await client.get(path) for path in paths]

    got = asyncio.run(pages())
    assert all(p.status_code == 200 for p in got), [p.status_code for p in got]
    text = "\n".join(p.text for p in got)
    assert "email:" in text and "out of range" in text
    assert not leaked(text, sweep.planted)


def test_export_files_names_and_manifests_hold_no_canary(sweep: Sweep) -> None:
    text = files_text(sweep.home / "export")
    assert "_runs" in text and "email:" in text
    assert not leaked(text, sweep.planted)


def test_xcom_values_hold_no_canary(sweep: Sweep) -> None:
    text = as_text(sweep.xcoms)
    assert sweep.names[0] in text
    assert not leaked(text, sweep.planted)
