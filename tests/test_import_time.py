"""What a fresh process loads before and during a plain run: a load is timed as users run it
(``python load.py``: interpreter start, imports, the run, exit), so modules the run never
uses must not load: pandas, and on a PostgreSQL-to-PostgreSQL load SQLAlchemy's MySQL
dialect, pyarrow's CSV writer and (``detect_pii="off"``) the detector's rules. pyarrow
imports pandas (0.2 s, 40 MB) on any conversion of Python values (``pa.array``,
``pa.scalar``, a literal handed to a compute function) and in ``Array.to_numpy``: the run's
path avoids those calls. This checks which modules load, in a
fresh interpreter each time; how long they take is measured in benchmarks/import_time.py."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from etl_express._arrays import integer_values, string_array, timestamp_scalar
from tests.conftest import pg_exec

#: never loaded by the imports and the run below (a prefix covers its submodules); tqdm: the
#: run has ``progress=False``
HEAVY = ("pandas", "httpx", "keyring", "hvac", "etl_express.secrets.vault", "tqdm")
#: not loaded by the imports either: the CLI, the replication
IMPORT_HEAVY = (*HEAVY, "etl_express.cli", "etl_express.replication")
#: nor by a load between PostgreSQL databases: SQLAlchemy's MySQL dialect (10 ms; a MySQL type
#: is asked about only once a MySQL engine loaded it) and pyarrow's CSV writer (the fallback
#: for what binary COPY cannot take)
PG_HEAVY = (*HEAVY, "sqlalchemy.dialects.mysql", "pyarrow.csv", "pyarrow._csv")
#: nor, with ``detect_pii="off"``, the detector's shape rules (their patterns compile at import)
PLAIN_HEAVY = (*PG_HEAVY, "etl_express.anonymizers.detection_rules")

IMPORTS = """
import etl_express as etl
from etl_express.anonymizers import Pseudonymize, ScrubPII
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource
etl.Pipeline
"""


def loaded(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return set(json.loads(proc.stdout.splitlines()[-1]))


def heavy_in(modules: set[str], heavy: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy))


def test_the_common_imports_and_a_secret_load_no_heavy_module() -> None:
    env = {**os.environ, "I24_PROBE_NAME": "value"}
    env.pop("VAULT_ADDR", None)
    code = IMPORTS + "assert etl.secret('I24_PROBE_NAME').get().get_secret_value() == 'value'\n"
    assert heavy_in(loaded(code, env), IMPORT_HEAVY) == []


def test_a_vault_address_still_puts_vault_in_the_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    from etl_express.secrets import VaultProvider, providers_from_env

    monkeypatch.delenv("ETL_EXPRESS_SECRET_PROVIDERS", raising=False)
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:8200")
    monkeypatch.setenv("VAULT_TOKEN", "a-dev-token")
    assert isinstance(providers_from_env()[-1], VaultProvider)
    monkeypatch.delenv("VAULT_ADDR")
    assert not any(isinstance(p, VaultProvider) for p in providers_from_env())


def test_a_plain_postgres_load_imports_no_heavy_module(pg_url: str, schema: str) -> None:
    pg_exec(
        pg_url,
        f"CREATE TABLE {schema}.src AS SELECT i AS id, CASE i % 3 WHEN 0 THEN '' WHEN 1 "
        "THEN ' ' ELSE 'note ' || i END AS notes, now() AS updated_at "
        "FROM generate_series(1, 50) AS i",
    )
    pg_exec(pg_url, f"ALTER TABLE {schema}.src ADD PRIMARY KEY (id)")
    run = f"""
pipeline = etl.Pipeline(
    name="import_probe_{schema}",
    source=SQLSource(url={pg_url!r}, table="{schema}.src", primary_key="id", batch_size=20),
    sink=PostgresSink(table="{schema}.dst", url={pg_url!r}),
    progress=False,
    detect_pii="off",
)
for _ in range(2):  # the first load, then the upsert of rows the target holds
    result = pipeline.run(reset=True)
    assert result.status == "succeeded" and result.rows_written == 50, result
"""
    env = {**os.environ, "ETL_EXPRESS_DATABASE_URL": pg_url}
    env.pop("VAULT_ADDR", None)
    assert heavy_in(loaded(IMPORTS + run, env), PLAIN_HEAVY) == []
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.dst")[0][0] == 50


@pytest.mark.parametrize(
    "values", [[], [""], ["a", "", "héllo wörld", "12", "a@b.ru"], ["x" * 10_000] * 3]
)
def test_string_array_is_pa_array(values: list[str]) -> None:
    built = string_array(values)
    built.validate(full=True)
    assert built.equals(pa.array(values, pa.string()))


def test_string_array_falls_back_to_pyarrow_on_what_is_not_text() -> None:
    assert string_array([None, "a"]).equals(pa.array([None, "a"], pa.string()))  # type: ignore[list-item]
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate: pyarrow's own error
        string_array(["\ud800"])


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 12, 7, 6, 25, 43, 123456, tzinfo=dt.timezone.utc),
        dt.datetime(2020, 1, 1, 12, 0, 0, 1),  # naive: UTC, as pyarrow takes it
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=3))),
        dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc),
    ],
)
def test_timestamp_scalar_is_pa_scalar(value: dt.datetime) -> None:
    from etl_express.format import TIMESTAMP

    assert timestamp_scalar(value).equals(pa.scalar(value, TIMESTAMP))


@pytest.mark.parametrize("type_", [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint64()])
def test_integer_values_are_to_numpy(type_: pa.DataType) -> None:
    column = pa.array([5, 1, 2, 3, 4, 7], type_).slice(1, 4)
    values = integer_values(column)
    assert values.dtype == column.to_numpy().dtype
    assert np.array_equal(values, column.to_numpy())
    with pytest.raises(TypeError, match="integers without nulls"):
        integer_values(pa.array([1, None], type_))


@pytest.mark.parametrize("progress", [True, False])
def test_a_bar_only_when_asked(progress: bool, capsys: pytest.CaptureFixture[str]) -> None:
    from types import SimpleNamespace

    from etl_express._engine.run import _progress

    with _progress(SimpleNamespace(progress=progress, name="probe"), "") as bar:  # type: ignore[arg-type]
        bar.update(7)
    shown = capsys.readouterr().err
    assert ("probe [all]: 7.00 rows" in shown) if progress else shown == ""


# -- the default run: detect_pii="refuse" samples every column --------------------------------

#: what a table of every kind a PostgreSQL source reads holds: text (empty and null values),
#: numeric, date, timestamptz, boolean, jsonb, double, bigint
PROBE_TABLE = """CREATE TABLE {schema}.{table} AS SELECT i AS id,
  CASE i % 4 WHEN 0 THEN '' WHEN 1 THEN NULL ELSE 'note ' || i END AS notes,
  (i * 1.5)::numeric(10, 2) AS amount, date '2020-01-01' + i AS day,
  timestamptz '2026-12-07 06:00:00+00' - i * interval '1 hour' AS updated_at,
  (i % 2 = 0) AS flag, jsonb_build_object('k', i, 'tag', 'x' || i) AS payload,
  i::float8 AS ratio, (i * 7)::bigint AS qty
  FROM generate_series(1, {rows}) AS i"""

#: ScrubPII.find, which the detector asks which values prove a kind, made to find nothing: the
#: rest of the default path (sampling, the shape rules, the new-field guard) is checked alone
NO_SCRUB = """
from etl_express.anonymizers import detection
class _FindsNothing:
    def find(self, values):
        return [set() for _ in range(len(values))]
detection._scrubber = lambda kinds: _FindsNothing()
"""


def _probe_tables(pg_url: str, schema: str, tables: dict[str, int]) -> None:
    for table, rows in tables.items():
        pg_exec(pg_url, PROBE_TABLE.format(schema=schema, table=table, rows=rows))
        pg_exec(pg_url, f"ALTER TABLE {schema}.{table} ADD PRIMARY KEY (id)")


def _env(pg_url: str) -> dict[str, str]:
    env = {**os.environ, "ETL_EXPRESS_DATABASE_URL": pg_url}
    env.pop("VAULT_ADDR", None)
    return env


@pytest.mark.parametrize("scrub", ["stubbed", "real"])
def test_a_default_postgres_load_does_not_import_pandas(
    pg_url: str, schema: str, scrub: str
) -> None:
    _probe_tables(pg_url, schema, {"src": 1000})
    run = f"""
pipeline = etl.Pipeline(
    name="import_probe_{schema}",
    source=SQLSource(url={pg_url!r}, table="{schema}.src", primary_key="id"),
    sink=PostgresSink(table="{schema}.dst", url={pg_url!r}),
    progress=False,
)
assert pipeline.detect_pii == "refuse"
result = pipeline.run(reset=True)
assert result.status == "succeeded" and result.rows_written == 1000, result
"""
    code = IMPORTS + (NO_SCRUB if scrub == "stubbed" else "") + run
    assert heavy_in(loaded(code, _env(pg_url)), PG_HEAVY) == []


@pytest.mark.parametrize("scrub", ["stubbed", "real"])
def test_a_replication_does_not_import_pandas(pg_url: str, schema: str, scrub: str) -> None:
    _probe_tables(pg_url, schema, {"a": 300, "b": 50, "c": 900})
    target = f"{schema}_r"
    run = f"""
from etl_express.sources import SQLDatabase
replication = etl.Replication(
    name="import_probe_{schema}",
    source=SQLDatabase(url={pg_url!r}, schema="{schema}"),
    sink=PostgresSink(schema="{target}", url={pg_url!r}),
)
result = replication.run()
assert result.rows_written == 1250 and not result.failed, result
"""
    code = IMPORTS + (NO_SCRUB if scrub == "stubbed" else "") + run
    try:
        modules = loaded(code, _env(pg_url))
    finally:
        pg_exec(pg_url, f"DROP SCHEMA IF EXISTS {target} CASCADE")
    assert heavy_in(modules, (*PG_HEAVY, "etl_express.cli")) == []


#: personal columns as the anonymized benchmark has them: emails (some upper-case, some
#: Cyrillic, some empty or NULL), Russian phones in several writings, full names, notes
PERSONAL_TABLE = """CREATE TABLE {schema}.{table} AS SELECT i AS id,
  CASE i % 5 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN 'User' || i || '@Example.COM'
    WHEN 3 THEN 'почта' || i || '@пример.рф' ELSE 'user' || i || '@mail.ru' END AS email,
  CASE i % 3 WHEN 0 THEN '+7 (9' || lpad((i % 100)::text, 2, '0') || ') 123-45-67'
    WHEN 1 THEN '8 916 ' || lpad((i % 1000)::text, 3, '0') || ' 45 67' ELSE NULL END AS phone,
  'Иванов Пётр ' || i AS full_name,
  'Перезвонить: +7 916 ' || lpad((i % 1000)::text, 3, '0') || '-45-67, user' || i || '@mail.ru'
    AS notes
  FROM generate_series(1, {rows}) AS i"""


def _anonymized_load(pg_url: str, schema: str, table: str, rows: int, options: str = "") -> str:
    """The anonymized benchmark's steps (3 x Pseudonymize, ScrubPII on notes) over
    ``schema.table`` into a new table, in a fresh process that must load no heavy module;
    the output table's name."""
    pg_exec(pg_url, f"ALTER TABLE {schema}.{table} ADD PRIMARY KEY (id)")
    out = f"{table}_out"
    run = f"""
pipeline = etl.Pipeline(
    name="import_probe_{table}_{schema}",
    source=SQLSource(url={pg_url!r}, table="{schema}.{table}", primary_key="id"{options}),
    anonymizers=[
        Pseudonymize(["email", "phone", "full_name"], key=etl.secret("I24_PROBE_KEY")),
        ScrubPII(["notes"]),
    ],
    sink=PostgresSink(table="{schema}.{out}", url={pg_url!r}),
    progress=False,
)
result = pipeline.run(reset=True)
assert result.status == "succeeded" and result.rows_written == {rows}, result
"""
    env = {**_env(pg_url), "I24_PROBE_KEY": secrets.token_urlsafe(48)}
    assert heavy_in(loaded(IMPORTS + run, env), PG_HEAVY) == []
    return f"{schema}.{out}"


def test_an_anonymized_load_does_not_import_pandas(pg_url: str, schema: str) -> None:
    """Pseudonymize's normalization (case folding, the empty-value mask) and ScrubPII on
    notes: the anonymized benchmark's steps, on values that take their rarer branches."""
    pg_exec(pg_url, PERSONAL_TABLE.format(schema=schema, table="people", rows=1000))
    out = _anonymized_load(pg_url, schema, "people", 1000)
    tokens = pg_exec(
        pg_url,
        f"SELECT count(*) FILTER (WHERE email IS NULL), count(DISTINCT email),"
        f" count(*) FILTER (WHERE notes LIKE '%@mail.ru%') FROM {out}",
    )
    # NULL and '' stay empty (400 rows), every other email its own token, no email in notes
    assert tokens == [(400, 600, 0)]


#: the anonymized case of benchmarks/pg_to_pg.py, on a few rows of its shape
ANON_TABLE = """CREATE TABLE {schema}.customers AS SELECT g AS id,
  (ARRAY['Иванов Иван', 'ПЕТРОВ  Пётр', 'Straße Anna'])[1 + g % 3] AS full_name,
  CASE WHEN g % 5 = 0 THEN NULL ELSE 'User' || g || '@Mail.ru' END AS email,
  (ARRAY['+7 916 123-45-67', '8 (916) 1234567', '+44 20 7946 0958', '８９１６１２３４５６７', ''])[1 + g % 5]
    AS phone,
  CASE g % 3 WHEN 0 THEN 'Перезвонить: 8 (916) 123-45-' || lpad((g % 100)::text, 2, '0')
    || ', счёт: user' || g || '@mail.ru' WHEN 1 THEN 'Заказ №' || g || ' доставлен'
    ELSE 'Контакт: +7 916 000 00 00, ИНН 7707083893' END AS notes
  FROM generate_series(1, 400) AS g"""


def test_an_anonymized_postgres_load_does_not_import_pandas(pg_url: str, schema: str) -> None:
    pg_exec(pg_url, ANON_TABLE.format(schema=schema))
    out = _anonymized_load(pg_url, schema, "customers", 400, options=", batch_size=150")
    notes = pg_exec(pg_url, f"SELECT notes, phone, email FROM {out} ORDER BY id LIMIT 3")
    assert "<PHONE>" in notes[2][0] and "<EMAIL>" in notes[2][0]  # scrubbed...
    assert notes[0][1].startswith("phone:") and notes[0][2].startswith("email:")  # pseudonymized
