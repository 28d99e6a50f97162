"""What the lineage columns cost the target server, and what PostgreSQL's "fast default"
would save: a table a load wrote (``pg_to_pg.py``'s ``etl`` case leaves one) is read back
once as binary COPY, with and without its three lineage columns, then loaded into a fresh
keyless table each way, the cases alternating:

* ``with_lineage``: the rows as a first load writes them (what ``PostgresSink`` does);
* ``fast_default``: the rows without the lineage columns, which are then added by
  ``ALTER TABLE ... ADD COLUMN ... DEFAULT <this run's value>`` (no rewrite: the rows that
  exist read the value from the catalog, ``pg_attribute.attmissingval``) and their defaults
  dropped;

then ``ADD PRIMARY KEY`` (without parallel workers, so one backend does all of it) and a
count. The CPU of that one backend per step (``/proc``), the heap size, medians.

Usage::

    python benchmarks/lineage_fast_default.py --url postgresql://postgres@127.0.0.1:5432/DB \
        [--table public.etl_customers] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import psycopg
from psycopg import sql

LINEAGE = ("_etl_run_id", "_etl_source", "_etl_loaded_at")
CASES = ("with_lineage", "fast_default")
SLICE = 2 << 20


def _backend_cpu(pid: int) -> float:
    """CPU seconds of a local server process, from ``/proc``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _dump(conn: psycopg.Connection, table: sql.Composable, columns: list[str]) -> bytes:
    query = sql.SQL("COPY (SELECT {} FROM {} ORDER BY 1) TO STDOUT (FORMAT binary)").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), table
    )
    out = bytearray()
    with conn.cursor().copy(query) as copy:
        for data in copy:
            out += data
    return bytes(out)


def _load(
    url: str,
    source: sql.Composable,
    key: sql.Composable,
    case: str,
    columns: list[str],
    data: bytes,
    lineage: tuple,
) -> dict:
    target = sql.Identifier("_etl_bench_lineage")
    steps: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
        conn.execute(sql.SQL("CREATE TABLE {} (LIKE {})").format(target, source))
        if case == "fast_default":
            conn.execute(
                sql.SQL("ALTER TABLE {} ").format(target)
                + sql.SQL(", ").join(
                    sql.SQL("DROP COLUMN {}").format(sql.Identifier(c)) for c in LINEAGE
                )
            )
        conn.execute("CHECKPOINT")
        conn.execute("SET max_parallel_maintenance_workers = 0")
        start, wall = _backend_cpu(pid), time.perf_counter()
        with conn.transaction():
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
                target, sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            with conn.cursor().copy(statement) as copy:
                for i in range(0, len(data), SLICE):
                    copy.write(data[i : i + SLICE])
        steps["copy"] = _backend_cpu(pid) - start
        if case == "fast_default":
            before = _backend_cpu(pid)
            with conn.transaction():
                added = [
                    sql.SQL("ADD COLUMN {} {} DEFAULT {}").format(
                        sql.Identifier(name), sql.SQL(kind), sql.Literal(value)
                    )
                    for name, kind, value in zip(
                        LINEAGE, ("text", "text", "timestamptz"), lineage, strict=True
                    )
                ]
                conn.execute(sql.SQL("ALTER TABLE {} ").format(target) + sql.SQL(", ").join(added))
                conn.execute(
                    sql.SQL("ALTER TABLE {} ").format(target)
                    + sql.SQL(", ").join(
                        sql.SQL("ALTER {} DROP DEFAULT").format(sql.Identifier(c)) for c in LINEAGE
                    )
                )
            steps["add lineage"] = _backend_cpu(pid) - before
        before = _backend_cpu(pid)
        conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(target, key))
        steps["key"] = _backend_cpu(pid) - before
        before = _backend_cpu(pid)
        rows, same = conn.execute(
            sql.SQL(
                "SELECT count(*), count(*) FILTER (WHERE (_etl_run_id, _etl_source, "
                "_etl_loaded_at) = (%s, %s, %s)) FROM {}"
            ).format(target),
            lineage,
        ).fetchone()  # type: ignore[misc]
        steps["count"] = _backend_cpu(pid) - before
        steps["total"] = _backend_cpu(pid) - start
        steps["wall"] = time.perf_counter() - wall
        steps["heap MB"] = conn.execute(
            sql.SQL("SELECT pg_relation_size({}) / 1048576.0::float8").format(
                sql.Literal("_etl_bench_lineage")
            )
        ).fetchone()[0]  # type: ignore[index]
        assert rows == same, "every row reads this run's lineage"
        conn.execute(sql.SQL("DROP TABLE {}").format(target))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the database holding a loaded table")
    parser.add_argument("--table", default="public.etl_customers")
    parser.add_argument("--key", default="id")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    table = sql.Identifier(*args.table.split("."))
    with psycopg.connect(args.url) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                "AND NOT attisdropped ORDER BY attnum",
                (args.table,),
            )
        ]
        lineage = conn.execute(
            sql.SQL("SELECT {} FROM {} LIMIT 1").format(
                sql.SQL(", ").join(map(sql.Identifier, LINEAGE)), table
            )
        ).fetchone()
        assert lineage is not None, f"{args.table} is empty"
        bare = [n for n in names if n not in LINEAGE]
        payloads = {
            "with_lineage": _dump(conn, table, names),
            "fast_default": _dump(conn, table, bare),
        }
    columns = {"with_lineage": names, "fast_default": bare}
    found: dict[str, list[dict]] = {case: [] for case in CASES}
    for round_ in range(args.repeat):
        for case in CASES if round_ % 2 == 0 else CASES[::-1]:
            steps = _load(
                args.url,
                table,
                sql.Identifier(args.key),
                case,
                columns[case],
                payloads[case],
                tuple(lineage),
            )
            found[case].append(steps)
            print(round_ + 1, f"{case:13}", {k: round(v, 2) for k, v in steps.items()}, flush=True)
    print(f"medians, {args.repeat} rounds; CPU seconds of the target's backend:")
    for case, runs in found.items():
        print(f"{case:13}", {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]})


if __name__ == "__main__":
    main()
