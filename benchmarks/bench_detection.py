"""What sampling for untagged personal data costs a 1,000,000-row anonymized run.

Usage::

    python benchmarks/bench_detection.py [--rows 1000000] [--repeat 3]

Fills a throw-away source database with ``pg_to_pg.py``'s customers table (11 columns), then
runs its ``etl_anon`` case — ``SQLSource -> Pseudonymize(email, phone, full_name) +
ScrubPII(notes) -> PostgresSink`` — with the default ``detect_pii="refuse"``, timing every
call of the detector (:class:`etl_express.anonymizers.detection.PIIWatch.check`: the
sampling of the first batch's untagged text columns, and the check for new columns on each
later batch) against the whole run. Also times the detector alone on the first batch of a
wider table (the customers' columns and six business text columns), per column sampled.
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
            run = bench.run_etl(src, dst, True, args.batch_size)
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
    print(f"  detector alone on a {columns}-text-column batch: {alone * 1000:.0f} ms")


if __name__ == "__main__":
    main()
