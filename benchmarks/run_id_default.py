"""The run id's cost: a 36-character text per row in the binary COPY stream, against the
column left out of the COPY and filled by ``DEFAULT current_setting('etl_express.run_id',
true)``, set once per transaction (``set_config(..., true)``). A million rows of four columns
into a fresh keyed table, the two cases alternating; wall time and the server backend's and
this process's CPU, medians of five.

Usage::

    python benchmarks/run_id_default.py --url postgresql://postgres@127.0.0.1:5432/DB
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid

import psycopg
import pyarrow as pa

from etl_express.sinks.pgcopy import copy_payload

ROWS = 1_000_000
CASES = ("in_stream", "default")


def _backend_cpu(pid: int) -> float:
    """CPU seconds of a local server process, from ``/proc``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    run = str(uuid.uuid4())
    full = pa.record_batch(
        {
            "id": pa.array(range(ROWS), pa.int64()),
            "name": pa.array([f"Иванов Иван Иванович {i}" for i in range(ROWS)]),
            "notes": pa.array([f"заметка {i} " + "x" * 120 for i in range(ROWS)]),
            "_etl_run_id": pa.array([run] * ROWS),
        }
    )
    wall: dict[str, list[float]] = {c: [] for c in CASES}
    server: dict[str, list[float]] = {c: [] for c in CASES}
    client: dict[str, list[float]] = {c: [] for c in CASES}
    with psycopg.connect(args.url, autocommit=True) as conn:
        pid = conn.info.backend_pid
        for _ in range(args.repeat):
            for case in CASES:
                default = " DEFAULT current_setting('etl_express.run_id', true)"
                conn.execute("DROP TABLE IF EXISTS run_id_bench")
                conn.execute(
                    "CREATE TABLE run_id_bench (id bigint PRIMARY KEY, name text, notes text, "
                    f"_etl_run_id text{default if case == 'default' else ''})"
                )
                batch = full if case == "in_stream" else full.select(["id", "name", "notes"])
                start, cpu, backend = time.perf_counter(), time.process_time(), _backend_cpu(pid)
                with conn.transaction():
                    if case == "default":
                        conn.execute("SELECT set_config('etl_express.run_id', %s, true)", (run,))
                    payload = copy_payload(
                        batch, ["bigint", "text", "text", "text"][: batch.num_columns]
                    )
                    columns = ", ".join(batch.schema.names)
                    statement = f"COPY run_id_bench ({columns}) FROM STDIN (FORMAT binary)"
                    with conn.cursor().copy(statement) as copy:
                        for chunk in payload:
                            copy.write(chunk)
                wall[case].append(time.perf_counter() - start)
                client[case].append(time.process_time() - cpu)
                server[case].append(_backend_cpu(pid) - backend)
                row = conn.execute(
                    "SELECT count(*) FROM run_id_bench WHERE _etl_run_id = %s", (run,)
                ).fetchone()
                assert row is not None and row[0] == ROWS
        conn.execute("DROP TABLE run_id_bench")
    for case in CASES:
        print(
            f"{case:10} wall {statistics.median(wall[case]):.2f} s, server CPU "
            f"{statistics.median(server[case]):.2f} s, client CPU "
            f"{statistics.median(client[case]):.2f} s (medians of {args.repeat})"
        )


if __name__ == "__main__":
    main()
