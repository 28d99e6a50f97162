"""The demo behind ``etl-express demo``.

Builds a realistic, deterministic demo CRM database in code (customers with Russian-looking
names, emails, +7 phones, birth dates, balances and free-text notes that mention phones and
emails), then loads it, anonymized, into the store with an incremental pipeline.
"""

from __future__ import annotations

import io
import json
import os
import secrets as _secrets
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from .store.database import libpq_url, resolve_url

DEMO_DB = "etl_express_demo_crm"
DEMO_TABLE = "demo.customers"
KEY_SECRET = "DEMO_ANON_KEY"  # pragma: allowlist secret  (a secret's name, not a value)

_MALE_FIRST = [
    "Александр",
    "Дмитрий",
    "Максим",
    "Сергей",
    "Андрей",
    "Алексей",
    "Артём",
    "Илья",
    "Кирилл",
    "Михаил",
    "Никита",
    "Матвей",
    "Роман",
    "Егор",
    "Иван",
    "Павел",
]
_FEMALE_FIRST = [
    "Анна",
    "Мария",
    "Елена",
    "Ольга",
    "Наталья",
    "Татьяна",
    "Ирина",
    "Екатерина",
    "Светлана",
    "Юлия",
    "Анастасия",
    "Дарья",
    "Полина",
    "Ксения",
    "Виктория",
    "Алина",
]
_LAST = [
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
    "Орлов",
    "Андреев",
    "Макаров",
    "Никитин",
]
_PATRONYMIC = [
    "Александров",
    "Дмитриев",
    "Сергеев",
    "Андреев",
    "Алексеев",
    "Иванов",
    "Михайлов",
    "Петров",
    "Николаев",
    "Викторов",
]
_CITIES = [
    "Москва",
    "Санкт-Петербург",
    "Новосибирск",
    "Екатеринбург",
    "Казань",
    "Нижний Новгород",
    "Челябинск",
    "Самара",
    "Омск",
    "Ростов-на-Дону",
    "Уфа",
    "Красноярск",
    "Воронеж",
    "Пермь",
]
_DOMAINS = ["mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru", "rambler.ru"]
_TRANSLIT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        [
            "a",
            "b",
            "v",
            "g",
            "d",
            "e",
            "e",
            "zh",
            "z",
            "i",
            "y",
            "k",
            "l",
            "m",
            "n",
            "o",
            "p",
            "r",
            "s",
            "t",
            "u",
            "f",
            "kh",
            "ts",
            "ch",
            "sh",
            "shch",
            "",
            "y",
            "",
            "e",
            "yu",
            "ya",
        ],
    )
)


def _translit(text: str) -> str:
    return "".join(_TRANSLIT.get(ch, ch) for ch in text.lower())


def _phone_formats(digits: str, style: int) -> str:
    """One of the ways people write a Russian mobile number."""
    a, b, c, d = digits[:3], digits[3:6], digits[6:8], digits[8:10]
    return [f"+7{digits}", f"8 ({a}) {b}-{c}-{d}", f"+7 {a} {b}{c}{d}", f"8-{a}-{b}-{c}-{d}"][
        style % 4
    ]


def generate_customers(rows: int, seed: int = 20240101) -> pa.Table:
    """A deterministic table of ``rows`` demo customers (same seed, same data)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, rows + 1, dtype=np.int64)
    female = rng.random(rows) < 0.5
    first_m = rng.integers(0, len(_MALE_FIRST), rows)
    first_f = rng.integers(0, len(_FEMALE_FIRST), rows)
    last_i = rng.integers(0, len(_LAST), rows)
    patr_i = rng.integers(0, len(_PATRONYMIC), rows)
    city_i = rng.integers(0, len(_CITIES), rows)
    dom_i = rng.integers(0, len(_DOMAINS), rows)
    phone_n = rng.integers(900_000_0000, 999_999_9999, rows)
    birth = np.datetime64("1950-01-01") + rng.integers(0, 365 * 55, rows).astype("timedelta64[D]")
    balance = np.round(rng.gamma(2.0, 25_000.0, rows), 2)
    created = np.datetime64("2020-01-01T00:00:00", "us") + (
        rng.integers(0, 4 * 365 * 86400, rows) * 1_000_000
    ).astype("timedelta64[us]")
    updated = created + (rng.integers(0, 365 * 86400, rows) * 1_000_000).astype("timedelta64[us]")
    note_kind = rng.integers(0, 5, rows)
    active = rng.random(rows) < 0.9

    full_names, emails, phones, notes = [], [], [], []
    for i in range(rows):
        if female[i]:
            first = _FEMALE_FIRST[first_f[i]]
            last = _LAST[last_i[i]] + "а"
            patr = _PATRONYMIC[patr_i[i]] + "на"
        else:
            first = _MALE_FIRST[first_m[i]]
            last = _LAST[last_i[i]]
            patr = _PATRONYMIC[patr_i[i]] + "ич"
        full_names.append(f"{last} {first} {patr}")
        email = f"{_translit(first)}.{_translit(last)}{ids[i]}@{_DOMAINS[dom_i[i]]}"
        emails.append(email)
        digits = str(phone_n[i])
        phones.append(_phone_formats(digits, int(i)))
        kind = note_kind[i]
        if kind == 0:
            notes.append(
                f"Просил перезвонить по номеру {_phone_formats(digits, int(i) + 1)} после 18:00"
            )
        elif kind == 1:
            notes.append(f"Новый адрес почты: {email.upper()}, старый больше не читает")
        elif kind == 2:
            notes.append("Постоянный клиент, скидка 5%")
        elif kind == 3:
            notes.append("")
        else:
            notes.append(None)  # type: ignore[arg-type]
    return pa.table(
        {
            "id": pa.array(ids),
            "full_name": pa.array(full_names, pa.string()),
            "email": pa.array(emails, pa.string()),
            "phone": pa.array(phones, pa.string()),
            "birth_date": pa.array(birth, pa.date32()),
            "city": pa.array([_CITIES[c] for c in city_i], pa.string()),
            "balance": pa.array(balance).cast(pa.decimal128(12, 2)),
            "is_active": pa.array(active),
            "notes": pa.array(notes, pa.string()),
            "created_at": pa.array(created, pa.timestamp("us", tz="UTC")),
            "updated_at": pa.array(updated, pa.timestamp("us", tz="UTC")),
        }
    )


CUSTOMERS_DDL = """
CREATE TABLE customers (
    id bigint PRIMARY KEY,
    full_name text NOT NULL,
    email text,
    phone text,
    birth_date date,
    city text,
    balance numeric(12,2),
    is_active boolean,
    notes text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
)"""


def load_table(
    dsn: str, table: pa.Table, name: str = "customers", ddl: str = CUSTOMERS_DDL
) -> None:
    """(Re)create ``name`` in ``dsn`` and bulk-load ``table`` into it."""
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(ddl.replace("CREATE TABLE customers", f"CREATE TABLE {name}"))
        cols = sql.SQL(", ").join(map(sql.Identifier, table.column_names))
        with conn.cursor().copy(
            sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(sql.Identifier(name), cols)
        ) as copy:
            copy.write(buf.getbuffer())
        conn.execute(sql.SQL("CREATE INDEX ON {} (updated_at, id)").format(sql.Identifier(name)))


def demo_source_url(store_url: str) -> str:
    """The demo CRM database on the same server as the store (created when missing)."""
    dsn = libpq_url(store_url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DB,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DB)))
    return (
        str(psycopg.conninfo.make_conninfo(dsn, dbname=DEMO_DB))
        if "://" not in dsn
        else _with_db(dsn, DEMO_DB)
    )


def _with_db(url: str, db: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=db).render_as_string(hide_password=False)


def demo_key_provider_dir() -> Path:
    """Where the demo keeps its generated anonymization key (a mounted-secret-style folder)."""
    from .store.embedded import data_dir

    return data_dir().parent / "secrets"


def ensure_demo_key() -> None:
    """Make sure the demo's 32-byte key exists in a secret store (never in code).

    If ``DEMO_ANON_KEY`` is not already provided (e.g. by the environment), a random key is
    written once to a 0600 file in the per-user secrets folder and exposed through the
    environment of this process only.
    """
    if os.environ.get(KEY_SECRET) or os.environ.get("ETL_EXPRESS_" + KEY_SECRET):
        return
    folder = demo_key_provider_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / KEY_SECRET
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(_secrets.token_hex(32))
    os.environ["ETL_EXPRESS_" + KEY_SECRET] = path.read_text().strip()


def build_pipeline(
    source_url: str, store_url: str, name: str = "demo_customers", table: str = DEMO_TABLE
) -> Any:
    """The demo pipeline: incremental SQL source, every personal column anonymized."""
    from . import Pipeline, secret
    from .sinks import PostgresSink
    from .sources import SQLSource

    anonymizers: list[Any] = []
    pii = ["full_name", "email", "phone", "birth_date", "notes"]
    try:
        from .anonymizers import Generalize, Pseudonymize, ScrubPII  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - the anonymizers ship with the package
        raise
    key = secret(KEY_SECRET)
    anonymizers = [
        Pseudonymize(["full_name", "email", "phone"], key=key),
        Generalize("birth_date", to="year"),
        ScrubPII(["notes"]),
    ]
    return Pipeline(
        name=name,
        source=SQLSource(
            source_url,
            table="customers",
            primary_key="id",
            cursor="updated_at",
            batch_size=25_000,
            pii=pii,
        ),
        anonymizers=anonymizers,
        sink=PostgresSink(table=table, url=store_url),
    )


def run_demo(rows: int = 100_000, reset: bool = False, echo: Any = print) -> Any:
    """Generate (first time or ``reset``) the demo CRM, run the pipeline, print a summary."""
    store_url = resolve_url(None)
    source_url = demo_source_url(store_url)
    ensure_demo_key()
    pipeline = build_pipeline(source_url, store_url)
    with psycopg.connect(libpq_url(source_url)) as conn:
        row = conn.execute("SELECT to_regclass('public.customers') IS NOT NULL").fetchone()
        have = bool(row and row[0])
    if reset or not have:
        t0 = time.perf_counter()
        load_table(libpq_url(source_url), generate_customers(rows))
        echo(f"demo CRM database: {rows:,} customers generated in {time.perf_counter() - t0:.1f} s")
        pipeline.reset()
        with psycopg.connect(libpq_url(store_url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP TABLE IF EXISTS {}.{}").format(
                    *map(sql.Identifier, DEMO_TABLE.split("."))
                )
            )
    result = pipeline.run()
    echo(f"pipeline {pipeline.name}: {result.status}")
    echo(f"  rows read        {result.rows_read:>10,}")
    echo(f"  rows written     {result.rows_written:>10,}")
    echo(f"  rows quarantined {result.rows_quarantined:>10,}")
    echo(f"  seconds          {result.seconds:>10.2f}")
    echo(f"  rows/s           {result.rows_per_second:>10,.0f}")
    for check in result.checks:
        echo(f"  check {check.name:<22} {check.summary()}")
    if result.rows_read == 0:
        echo("  no new rows since the last run (incremental); use --reset to load everything again")
    from ._read import read

    echo("three records from " + DEMO_TABLE + ":")
    for record in read(DEMO_TABLE, url=store_url, limit=3, order_by=["id"]):
        echo(json.dumps(record, ensure_ascii=False))
    echo(next_steps(store_url, source_url))
    return result


def next_steps(store_url: str, source_url: str) -> str:
    """Where the demo's data is and what to try next (printed after a successful demo)."""
    from .store.database import DATABASE_URL_ENV, mask_url

    embedded = not os.environ.get(DATABASE_URL_ENV)
    where = "the embedded PostgreSQL" if embedded else f"{DATABASE_URL_ENV}"
    return f"""
where the data is:
  anonymized table  {DEMO_TABLE} in {where}: {mask_url(store_url)}
  run state         schema etl_express there (runs, checkpoints, quarantine, logs)
  demo source       database {DEMO_DB} on the same server: {mask_url(source_url)}
what to try next:
  etl-express status          every pipeline, its last run and freshness
  etl-express ui              the dashboard at http://127.0.0.1:8765/ (Ctrl+C stops it)
  etl-express runs            the run history; etl-express logs show demo_customers
  python -c "import etl_express as etl; print(*etl.read('{DEMO_TABLE}', limit=3))"
  etl-express demo --reset    load everything again"""


__all__ = ["build_pipeline", "generate_customers", "load_table", "run_demo"]
