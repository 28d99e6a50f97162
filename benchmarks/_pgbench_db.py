"""The databases of ``pg_to_pg.py``: the synthetic CRM ``customers`` table (11 columns, about
200 bytes a row, generated server-side), two throw-away databases (source and target) on the
server named by ``--url``, and the reset of a case's target table before it runs. The other
benchmarks that load the same table (``profile_stages.py``, ``timeline.py``,
``bench_detection.py``, ``reconcile.py``, ``bench_anonymizers.py``) take it from here.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

_SURNAMES = [
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
_NAMES = [
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
    "Арсений",
    "Иван",
    "Денис",
    "Евгений",
    "Даниил",
    "Тимофей",
    "Владислав",
    "Игорь",
    "Павел",
    "Руслан",
]
_PATRONYMICS = [
    "Александрович",
    "Дмитриевич",
    "Сергеевич",
    "Андреевич",
    "Алексеевич",
    "Михайлович",
    "Иванович",
    "Николаевич",
    "Петрович",
    "Викторович",
    "Олегович",
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
_DOMAINS = ["mail.ru", "yandex.ru", "gmail.com", "inbox.ru", "bk.ru", "rambler.ru"]

DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    id bigint PRIMARY KEY,
    full_name text,
    email text,
    phone text,
    birth_date date,
    city text,
    balance numeric(12,2),
    created_at timestamptz,
    updated_at timestamptz,
    is_active boolean,
    notes text
)
"""


def _array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _fill_sql(rows: int) -> str:
    """Generate the table server-side: no Python per row, about 200 bytes a row."""
    return f"""
    INSERT INTO customers
    SELECT g,
        ({_array(_SURNAMES)})[1 + (g * 7) % {len(_SURNAMES)}] || ' '
            || ({_array(_NAMES)})[1 + (g * 13) % {len(_NAMES)}] || ' '
            || ({_array(_PATRONYMICS)})[1 + (g * 3) % {len(_PATRONYMICS)}],
        'user' || g || '@' || ({_array(_DOMAINS)})[1 + g % {len(_DOMAINS)}],
        '+79' || lpad(((g * 7919) % 1000000000)::text, 9, '0'),
        date '1950-01-01' + ((g * 37) % 20000)::int,
        ({_array(_CITIES)})[1 + (g * 11) % {len(_CITIES)}],
        ((g * 7349) % 100000000) / 100.0,
        timestamptz '2020-01-01 00:00:00+00' + g * interval '61 seconds',
        timestamptz '2020-01-01 00:00:00+00' + g * interval '61 seconds' + (g % 997) * interval '1 hour',
        g % 7 <> 0,
        CASE WHEN g % 3 = 0 THEN 'Перезвонить: 8 (9' || lpad(((g * 31) % 100)::text, 2, '0')
                 || ') ' || lpad(((g * 17) % 1000)::text, 3, '0') || '-' || lpad((g % 100)::text, 2, '0')
                 || '-' || lpad(((g * 3) % 100)::text, 2, '0') || ', счёт: user' || g || '@mail.ru'
             WHEN g % 3 = 1 THEN 'Заказ №' || g || ' доставлен'
             ELSE 'Контакт: +7 9' || lpad(((g * 97) % 1000000000)::text, 9, '0') || ', '
                 || 'info' || g % 1000 || '@yandex.ru' END
    FROM generate_series(1::bigint, {rows}) AS g
    """


#: each case's target table (a replay loads the table ``etl`` loaded once more)
CASE_TABLES = {
    "etl": "etl_customers",
    "etl_anon": "etl_anon_customers",
    "replay": "etl_customers",
    "etl_standin": "etl_standin_customers",
}


def _with_db(url: str, dbname: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=dbname).render_as_string(hide_password=False)


def database_name(url: str) -> str:
    from sqlalchemy.engine import make_url

    return str(make_url(url).database)


@contextmanager
def scratch_databases(admin_url: str) -> Iterator[tuple[str, str]]:
    """Two uniquely named databases (source, target), dropped afterwards."""
    tag = uuid.uuid4().hex[:8]
    names = [f"etlx_bench_src_{tag}", f"etlx_bench_dst_{tag}"]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for n in names:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(n)))
    try:
        yield _with_db(admin_url, names[0]), _with_db(admin_url, names[1])
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for n in names:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(n))
                )


def make_source(url: str, rows: int) -> float:
    """Create and fill ``customers``; return its heap size in MB."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DDL.format(table="customers"))
        conn.execute(_fill_sql(rows))
        conn.execute("VACUUM (FREEZE, ANALYZE) customers")  # sets hint bits: reads never write
        size = conn.execute("SELECT pg_table_size('customers')").fetchone()[0]  # type: ignore[index]
        conn.execute("SELECT count(*) FROM customers")  # warm the cache
    return size / 1e6


def reset_target(dst: str, table: str, *, keep_rows: bool = False) -> None:
    """Drop the case's target table (``keep_rows``: only its checkpoint, for a replay)."""
    with psycopg.connect(dst, autocommit=True) as conn:
        if not keep_rows:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS public.{}").format(sql.Identifier(table)))
        conn.execute(
            "DO $$ BEGIN IF to_regclass('etl_express.checkpoints') IS NOT NULL THEN "
            f"DELETE FROM etl_express.checkpoints WHERE pipeline = 'bench_{table}'; END IF; END $$"
        )
        conn.execute("CHECKPOINT")  # every case starts with no dirty pages of the one before


def default_url() -> str:
    return (
        os.environ.get("ETL_EXPRESS_BENCH_URL")
        or os.environ.get("ETL_EXPRESS_TEST_DATABASE_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres"
    )
