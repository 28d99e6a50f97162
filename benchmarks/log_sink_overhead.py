"""Cost of storing run log lines in PostgreSQL, seen from the pipeline's thread.

Logs N lines bound to a run with (a) a no-op sink and (b) the DatabaseLogSink, and prints
the time per call in the caller's thread plus how long the background writer needed.

    ETL_EXPRESS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \
        python benchmarks/log_sink_overhead.py [N]
"""

from __future__ import annotations

import os
import sys
import time
import uuid

import sqlalchemy as sa
from loguru import logger

from etl_express.logs import DatabaseLogSink
from etl_express.store.checkpoints import CheckpointStore
from etl_express.store.database import engine_for


def per_call(sink: object, n: int, run_id: str) -> float:
    handler = logger.add(sink, level="INFO", format="{message}")
    log = logger.bind(pipeline="bench", run_id=run_id, partition="all")
    start = time.perf_counter()
    for i in range(n):
        log.info("batch {} committed: {} rows", i, 50_000)
    elapsed = time.perf_counter() - start
    logger.remove(handler)
    return elapsed / n * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    url = os.environ["ETL_EXPRESS_DATABASE_URL"]
    CheckpointStore(url).ensure_schema()
    logger.remove()
    noop = per_call(lambda message: None, n, "none")
    sink = DatabaseLogSink()
    run_id = str(uuid.uuid4())
    sink.attach(run_id, url)
    database = per_call(sink, n, run_id)
    start = time.perf_counter()
    sink.flush(timeout=120)
    drain = time.perf_counter() - start
    sink.stop()
    print(
        f"{n} log lines: no-op sink {noop:.1f} us/line, database sink {database:.1f} us/line "
        f"in the caller's thread; writer finished {drain:.2f} s after the last line"
    )
    with engine_for(url).begin() as conn:
        stored = conn.execute(
            sa.text("SELECT count(*) FROM etl_express.logs WHERE run_id = :r"), {"r": run_id}
        ).scalar()
        conn.execute(sa.text("DELETE FROM etl_express.logs WHERE run_id = :r"), {"r": run_id})
    print(f"stored {stored} of {n} rows (deleted again)")


if __name__ == "__main__":
    main()
