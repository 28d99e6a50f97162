"""What sampling for untagged personal data costs a 1,000,000-row anonymized run.

Usage::

    python benchmarks/bench_detection.py [--rows 1000000] [--repeat 3]

Fills a throw-away source database with ``pg_to_pg.py``'s customers table (11 columns), then
runs its ``etl_anon`` case — ``SQLSource -> Pseudonymize(email, phone, full_name) +
ScrubPII(notes) + Generalize(birth_date, to="year") -> PostgresSink`` — with the default
``detect_pii="refuse"``, timing every
call of the detector (:class:`etl_express.anonymizers.detection.PIIWatch.check`: the
sampling of the first batch's untagged columns of every type, and the check for new columns on each
later batch) against the whole run. Also times the detector alone on the first batch of a
wider table (seven business columns of text, a bigint, a numeric, a timestamp and a date).
The target is under 2 % of the run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("ETL_EXPRESS_BENCH_ANON_KEY", secrets.token_hex(32))

import pg_to_pg as bench

from etl_express.anonymizers import detection

SPENT: list[float] = []


def _instrument() -> None:
    original = detection.PIIWatch.check

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            SPENT.append(time.perf_counter() - t0)

    detection.PIIWatch.check = timed  # type: ignore[method-assign]


def _run_anonymized(src: str, dst: str, batch_size: int) -> float:
    """``pg_to_pg.py``'s ``etl_anon`` load (``run_etl(..., anonymize=True)``) with its
    untagged ``birth_date`` generalized to the year: the detector now finds birth dates in a
    ``date`` column named like one, and refuses the load that left it raw."""
    from etl_express import Pipeline
    from etl_express.anonymizers import Generalize
    from etl_express.sinks import PostgresSink
    from etl_express.sources import SQLSource

    table = bench.CASE_TABLES["etl_anon"]
    bench.reset_target(dst, table)
    pipeline = Pipeline(
        name="bench_" + table,
        source=SQLSource(url=src, table="customers", primary_key="id", batch_size=batch_size),
        anonymizers=[*(bench.load_anonymizers() or []), Generalize(["birth_date"], to="year")],
        sink=PostgresSink(table=f"public.{table}", url=dst),
        progress=False,
    )
    t0 = time.perf_counter()
    result = pipeline.run()
    elapsed = time.perf_counter() - t0
    assert result.status == "succeeded", result
    return elapsed


def _first_batch_alone(rows: int = 50_000) -> tuple[float, int]:
    """The detector on one wide batch, cold (first call in the process is already done)."""
    import datetime as dt
    import random
    import uuid

    import pyarrow as pa

    rng = random.Random(1)
    batch = pa.RecordBatch.from_pydict(
        {
            "city": [rng.choice(["Москва", "Казань", "Тверь"]) for _ in range(rows)],
            "order_no": [f"ORD-{rng.randrange(10**10):010d}" for _ in range(rows)],
            "status": [rng.choice(["new", "paid", "shipped"]) for _ in range(rows)],
            "uuid": [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(rows)],
            "created": [
                (dt.datetime(2024, 1, 1) + dt.timedelta(seconds=rng.randrange(10**8))).isoformat()
                for _ in range(rows)
            ],
            "comment": [rng.choice(["Доставка до двери", "Оплата картой"]) for _ in range(rows)],
            "sku": [f"SKU-{rng.randrange(10**6):06d}" for _ in range(rows)],
            "order_id": pa.array([rng.randrange(10**6, 10**12) for _ in range(rows)]),
            "amount": pa.array([rng.randrange(10**8) / 100 for _ in range(rows)]),
            "event_at": pa.array(
                [
                    dt.datetime(2024, 1, 1) + dt.timedelta(seconds=rng.randrange(10**8))
                    for _ in range(rows)
                ],
                pa.timestamp("us"),
            ),
            "shipped": pa.array(
                [dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(900)) for _ in range(rows)],
                pa.date32(),
            ),
        }
    )
    pipeline = type("P", (), {"anonymizers": [], "pii": [], "detect_pii": "refuse"})()
    watch = detection.PIIWatch(pipeline, None)
    t0 = time.perf_counter()
    found = watch.check(batch, {})
    assert found == [], found
    return time.perf_counter() - t0, batch.num_columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--url", default=bench.default_url())
    args = parser.parse_args()
    _instrument()
    shares, runs, checks = [], [], []
    with bench.scratch_databases(args.url) as (src, dst):
        bench.make_source(src, args.rows)
        for _ in range(args.repeat):
            SPENT.clear()
            run = _run_anonymized(src, dst, args.batch_size)
            runs.append(run)
            checks.append(sum(SPENT))
            shares.append(sum(SPENT) / run)
    alone, columns = _first_batch_alone()
    print(
        f"{args.rows:,}-row anonymized run (median of {args.repeat}): {statistics.median(runs):.2f} s"
    )
    print(
        f"  detection (first batch sampled, later batches checked for new columns): "
        f"{statistics.median(checks) * 1000:.0f} ms = {statistics.median(shares):.2%} of the run"
    )
    print(f"  detector alone on a {columns}-column business batch: {alone * 1000:.0f} ms")


if __name__ == "__main__":
    main()
