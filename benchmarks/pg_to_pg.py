"""PostgreSQL -> PostgreSQL throughput, side by side with a raw COPY pipe (and dlt).

Usage::

    python benchmarks/pg_to_pg.py --rows 1000000 [--repeat 3] [--json out.json] [--dlt] [--scale]

Creates two throw-away databases on the server named by ``--url`` (default
``ETL_EXPRESS_BENCH_URL``, else ``ETL_EXPRESS_TEST_DATABASE_URL``, else
``postgresql://postgres@127.0.0.1:5432/postgres``), fills the source with an N-row,
11-column CRM ``customers`` table, then times on the same data, in the same run:

* ``raw_copy``  — ``COPY (SELECT ...) TO STDOUT (FORMAT binary)`` piped into
  ``COPY ... FROM STDIN (FORMAT binary)`` (the physical reference);
* ``etl``       — ``SQLSource -> PostgresSink`` (exactly-once, upsert on ``id``);
* ``etl_anon``  — the same with ``Pseudonymize`` on email, phone, full_name and ``ScrubPII``
  on notes (skipped with a message when the anonymizers are not installed);
* ``dlt``       — with ``--dlt``: dlt's ``sql_table`` with the pyarrow backend;
* ``etl_standin`` — only when named in ``--cases``: ``etl_anon`` with a stand-in for the
  anonymizers (keyed BLAKE2b per value, RE2 scrubbing), to estimate before they exist.

Each case runs ``--repeat`` times on a fresh target; the medians are reported as rows/s,
MB/s (of the source table's heap size) and the ratio to the raw pipe. ``--scale`` runs the
``etl_anon`` (else ``etl``) case at 1x and 2x rows, each in its own process, and reports the
time ratio and each process's peak resident memory (``VmHWM``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

ANON_KEY_ENV = "ETL_EXPRESS_BENCH_ANON_KEY"
TARGET_TB_HOURS = 8.0

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


# -- databases ---------------------------------------------------------------------------


def _with_db(url: str, dbname: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=dbname).render_as_string(hide_password=False)


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


# -- the cases ---------------------------------------------------------------------------


def run_raw_copy(src: str, dst: str) -> float:
    with psycopg.connect(dst, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_customers")
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


def run_etl(src: str, dst: str, anonymize: bool | str, batch_size: int) -> float:
    from etl_express import Pipeline
    from etl_express.sinks import PostgresSink
    from etl_express.sources import SQLSource

    if anonymize == "standin":
        anonymizers = standin_anonymizers()
    else:
        anonymizers = (load_anonymizers() if anonymize else []) or []
    table = (
        f"etl_{anonymize}_customers"
        if anonymize == "standin"
        else ("etl_anon_customers" if anonymize else "etl_customers")
    )
    name = "bench_" + table
    with psycopg.connect(dst, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS public.{table}")
        conn.execute(
            "DO $$ BEGIN IF to_regclass('etl_express.checkpoints') IS NOT NULL THEN "
            f"DELETE FROM etl_express.checkpoints WHERE pipeline = '{name}'; END IF; END $$"
        )
    pipeline = Pipeline(
        name=name,
        source=SQLSource(url=src, table="customers", primary_key="id", batch_size=batch_size),
        anonymizers=anonymizers,
        sink=PostgresSink(table=f"public.{table}", url=dst),
        progress=False,
        # the plain case copies the synthetic customers as they are, on purpose: the
        # throughput of the load itself (the anonymized cases keep the default "refuse")
        detect_pii="refuse" if anonymizers else "off",
    )
    t0 = time.perf_counter()
    result = pipeline.run()
    elapsed = time.perf_counter() - t0
    assert result.status == "succeeded", result
    return elapsed


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


# -- reporting ---------------------------------------------------------------------------


def summarize(rows: int, mb: float, times: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Medians; the ratio to the raw pipe is the median of the per-round ratios (each
    round runs every case back to back, so a noisy neighbour hits them alike)."""
    raw = times["raw_copy"]
    out = []
    for case, ts in times.items():
        med = statistics.median(ts)
        mb_s = mb / med
        out.append(
            {
                "case": case,
                "runs": len(ts),
                "seconds_median": round(med, 3),
                "seconds_all": [round(t, 3) for t in ts],
                "rows_per_s": round(rows / med),
                "mb_per_s": round(mb_s, 1),
                "ratio_to_raw_copy": round(statistics.median(r / t for r, t in zip(raw, ts)), 3),
                "tb_hours": round(1e6 / mb_s / 3600, 2),
            }
        )
    return out


def targets(report: dict[str, Any]) -> dict[str, Any]:
    """The performance targets of DESIGN.md, judged on this run."""
    by = {r["case"]: r for r in report["results"]}
    anon = by.get("etl_anon") or by.get("etl_standin")
    out: dict[str, Any] = {}
    if anon:
        out["anon_ratio_to_raw_copy>=0.6"] = anon["ratio_to_raw_copy"] >= 0.6
        out["anon_case"] = anon["case"]
        out["anon_1tb_under_8h"] = anon["tb_hours"] < TARGET_TB_HOURS
        if "dlt" in by:
            out["anon_3x_dlt"] = by["dlt"]["seconds_median"] / anon["seconds_median"] >= 3
    if "etl" in by:
        out["plain_ratio_to_raw_copy>=0.6"] = by["etl"]["ratio_to_raw_copy"] >= 0.6
    if report.get("scaling"):
        out["2x_rows_time<=2.1x"] = report["scaling"]["time_ratio_2x"] <= 2.1
        out["2x_rows_memory<=1.1x"] = report["scaling"]["memory_ratio_2x"] <= 1.1
    return out


def print_table(rows: int, mb: float, results: list[dict[str, Any]]) -> None:
    print(f"\n{rows:,} rows, {mb:.0f} MB source heap; medians")
    print(f"{'case':<12} {'s':>8} {'rows/s':>12} {'MB/s':>8} {'x raw':>7} {'1 TB in h':>10}")
    for r in results:
        print(
            f"{r['case']:<12} {r['seconds_median']:>8.2f} {r['rows_per_s']:>12,} {r['mb_per_s']:>8.1f} "
            f"{r['ratio_to_raw_copy']:>7.2f} {r['tb_hours']:>10.1f}"
        )
    by = {r["case"]: r for r in results}
    if "dlt" in by:
        for case in ("etl", "etl_anon", "etl_standin"):
            if case in by:
                print(
                    f"{case} vs dlt: {by['dlt']['seconds_median'] / by[case]['seconds_median']:.1f}x faster"
                )


def child_run(args: argparse.Namespace) -> None:
    """One case at one size, in this process (for --scale): prints a JSON line."""
    with scratch_databases(args.url) as (src, dst):
        mb = make_source(src, args.rows)
        seconds = case_runner(args.child, src, dst, args.batch_size)()
    print(
        json.dumps(
            {
                "case": args.child,
                "rows": args.rows,
                "mb": mb,
                "seconds": seconds,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``).

    Not ``ru_maxrss``: Linux carries it over from the parent through fork and exec, so a
    child started by a large parent reports the parent's size.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def case_runner(case: str, src: str, dst: str, batch_size: int) -> Callable[[], float]:
    return {
        "raw_copy": lambda: run_raw_copy(src, dst),
        "etl": lambda: run_etl(src, dst, False, batch_size),
        "etl_anon": lambda: run_etl(src, dst, True, batch_size),
        "etl_standin": lambda: run_etl(src, dst, "standin", batch_size),
        "dlt": lambda: run_dlt(src, dst, batch_size),
    }[case]


def scale(args: argparse.Namespace, case: str) -> dict[str, Any]:
    """Run ``case`` at 1x and 2x rows, each in a fresh process; time and peak memory."""
    out: dict[str, Any] = {"case": case, "sizes": []}
    for factor in (1, 2):
        samples = []
        for _ in range(args.repeat):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                case,
                "--rows",
                str(args.rows * factor),
                "--url",
                args.url,
                "--batch-size",
                str(args.batch_size),
            ]
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, env=os.environ.copy(), check=False)
            if proc.returncode != 0:
                raise SystemExit(f"--scale child failed ({proc.returncode}): {' '.join(cmd)}")
            line = json.loads(proc.stdout.decode().strip().splitlines()[-1])
            samples.append((line["seconds"], line["peak_rss_mb"]))
        out["sizes"].append(
            {
                "rows": args.rows * factor,
                "seconds_median": round(statistics.median(s[0] for s in samples), 3),
                "peak_rss_mb_median": round(statistics.median(s[1] for s in samples), 1),
            }
        )
    small, big = out["sizes"]
    out["time_ratio_2x"] = round(big["seconds_median"] / small["seconds_median"], 3)
    out["memory_ratio_2x"] = round(big["peak_rss_mb_median"] / small["peak_rss_mb_median"], 3)
    print(
        f"\nscaling of {case}: {small['rows']:,} rows {small['seconds_median']:.2f} s "
        f"{small['peak_rss_mb_median']:.0f} MB peak; {big['rows']:,} rows {big['seconds_median']:.2f} s "
        f"{big['peak_rss_mb_median']:.0f} MB peak; time x{out['time_ratio_2x']:.2f}, "
        f"memory x{out['memory_ratio_2x']:.2f}"
    )
    return out


def default_url() -> str:
    return (
        os.environ.get("ETL_EXPRESS_BENCH_URL")
        or os.environ.get("ETL_EXPRESS_TEST_DATABASE_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case (median reported)")
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument(
        "--url", default=default_url(), help="server to create scratch databases on"
    )
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument(
        "--dlt", action="store_true", help="also time dlt (pip install 'dlt[postgres]')"
    )
    parser.add_argument("--scale", action="store_true", help="1x and 2x rows in subprocesses")
    parser.add_argument("--cases", default="raw_copy,etl,etl_anon", help="comma-separated cases")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault(ANON_KEY_ENV, secrets.token_hex(32))
    if args.child:
        return child_run(args)

    cases = [c for c in args.cases.split(",") if c]
    if "raw_copy" not in cases:
        cases.insert(0, "raw_copy")
    if "etl_anon" in cases and load_anonymizers() is None:
        print(
            "skipping etl_anon: etl_express.anonymizers has no Pseudonymize/ScrubPII yet",
            file=sys.stderr,
        )
        cases.remove("etl_anon")
    if args.dlt and "dlt" not in cases:
        if dlt_available():
            cases.append("dlt")
        else:
            print("skipping dlt: not installed (pip install 'dlt[postgres]')", file=sys.stderr)
    report: dict[str, Any] = {
        "rows": args.rows,
        "batch_size": args.batch_size,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    times: dict[str, list[float]] = {c: [] for c in cases}
    with scratch_databases(args.url) as (src, dst):
        mb = make_source(src, args.rows)
        report["source_mb"] = round(mb, 1)
        for i in range(args.repeat):
            for case in cases:  # interleaved, so background noise hits every case alike
                t = case_runner(case, src, dst, args.batch_size)()
                times[case].append(t)
                print(f"run {i + 1}/{args.repeat} {case:<9} {t:7.2f} s", file=sys.stderr)
    report["results"] = summarize(args.rows, mb, times)
    print_table(args.rows, mb, report["results"])
    if args.scale:
        report["scaling"] = scale(
            args, next(c for c in ("etl_anon", "etl_standin", "etl") if c in cases)
        )
    report["targets"] = targets(report)
    print("targets:", ", ".join(f"{k}: {v}" for k, v in report["targets"].items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
