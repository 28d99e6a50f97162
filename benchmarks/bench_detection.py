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

The detector alone, per table, on a replication of many small tables (issue 23)::

    python benchmarks/bench_detection.py --replication-table [--tables 200] [--rounds 7]

times ``detect_batch`` on the first 1,000-row batch of each of ``--tables`` tables shaped like
``replication.py``'s (``id int``, ``name`` text ``'name 17'``, ``amount numeric(12,2)``,
``created timestamptz``, ``flag boolean``), and on the 11-column business batch above (cut to
1,000 rows), in ms of CPU per table (median of the rounds). ``--against OLD_SRC`` runs the
same in fresh processes, alternating round by round between ``OLD_SRC`` (another checkout's
``src``, put first on ``PYTHONPATH``) and this tree, and prints both medians::

    git archive c0eb148 src | tar -x -C /tmp/old   # the detector before issue 23's change
    cp src/etl_express/_native*.so /tmp/old/src/etl_express/   # the same compiled module
    python benchmarks/bench_detection.py --replication-table --against /tmp/old/src
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

import _pgbench_db as db
from _pgbench_runs import load_anonymizers

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

    table = db.CASE_TABLES["etl_anon"]
    db.reset_target(dst, table)
    pipeline = Pipeline(
        name="bench_" + table,
        source=SQLSource(url=src, table="customers", primary_key="id", batch_size=batch_size),
        anonymizers=[*(load_anonymizers() or []), Generalize(["birth_date"], to="year")],
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
    batch = _wide_batch(rows)
    pipeline = type("P", (), {"anonymizers": [], "pii": [], "detect_pii": "refuse"})()
    watch = detection.PIIWatch(pipeline, None)
    t0 = time.perf_counter()
    found = watch.check(batch, {})
    assert found == [], found
    return time.perf_counter() - t0, batch.num_columns


def _wide_batch(rows: int) -> Any:
    """Seven business columns of text, a bigint, a numeric, a timestamp and a date."""
    import datetime as dt
    import random
    import uuid

    import pyarrow as pa

    rng = random.Random(1)
    return pa.RecordBatch.from_pydict(
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


def _replication_batches(tables: int, rows: int = 1000) -> list[Any]:
    """The first batch of each table of ``replication.py``'s many-tables case: ``id``,
    ``name`` (``'name 17'``), ``amount`` numeric(12,2), ``created`` timestamptz, ``flag``."""
    import datetime as dt
    import decimal

    import pyarrow as pa

    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    out = []
    for t in range(tables):
        ids = range(t * rows + 1, (t + 1) * rows + 1)
        out.append(
            pa.RecordBatch.from_pydict(
                {
                    "id": pa.array(ids, pa.int32()),
                    "name": pa.array([f"name {i}" for i in ids], pa.string()),
                    "amount": pa.array(
                        [decimal.Decimal(i * 137 % 10**7) / 100 for i in ids], pa.decimal128(12, 2)
                    ),
                    "created": pa.array(
                        [start + dt.timedelta(seconds=37 * i) for i in ids],
                        pa.timestamp("us", tz="UTC"),
                    ),
                    "flag": pa.array([i % 3 == 0 for i in ids], pa.bool_()),
                }
            )
        )
    return out


def _per_table(batches: list[Any], rounds: int) -> list[float]:
    """``detect_batch`` over every batch, ``rounds`` times: ms of CPU per batch, per round."""
    for batch in batches[:3]:  # warm: the rules' patterns compiled, the modules imported
        assert detection.detect_batch(batch) == []
    out = []
    for _ in range(rounds):
        t0 = time.process_time()
        for batch in batches:
            detection.detect_batch(batch)
        out.append((time.process_time() - t0) * 1000 / len(batches))
    return out


def _replication_table(args: argparse.Namespace) -> None:
    import json
    import subprocess

    if args.against:
        here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
        times: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
        for _ in range(args.rounds):
            for label, src in (("old", args.against), ("new", here)):
                env = {**os.environ, "PYTHONPATH": src}
                done = subprocess.run(
                    [sys.executable, __file__, "--replication-table", "--json", "--rounds", "3",
                     "--tables", str(args.tables)],
                    env=env, capture_output=True, text=True, check=True,
                )  # fmt: skip
                for case, ms in json.loads(done.stdout).items():
                    times[label].setdefault(case, []).append(ms)
        for case in times["new"]:
            old, new = statistics.median(times["old"][case]), statistics.median(times["new"][case])
            print(
                f"{case}: {old:.2f} -> {new:.2f} ms of CPU per table ({old / new:.1f}x; medians "
                f"of {args.rounds} alternated rounds; old {min(times['old'][case]):.2f}-"
                f"{max(times['old'][case]):.2f}, new {min(times['new'][case]):.2f}-"
                f"{max(times['new'][case]):.2f})"
            )
        return
    import pyarrow as pa

    wide = _wide_batch(1000)
    result = {
        f"replication table ({args.tables} x 1,000 rows)": statistics.median(
            _per_table(_replication_batches(args.tables), args.rounds)
        ),
        "business batch (11 columns x 1,000 rows)": statistics.median(
            _per_table([wide] * max(1, args.tables // 4), args.rounds)
        ),
    }
    assert isinstance(wide, pa.RecordBatch)
    if args.json:
        print(json.dumps(result))
    else:
        for case, ms in result.items():
            print(f"{case}: {ms:.2f} ms of CPU per table (median of {args.rounds} rounds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--replication-table", action="store_true")
    parser.add_argument("--tables", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--against", metavar="OLD_SRC")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replication_table:
        _replication_table(args)
        return
    args.url = args.url or db.default_url()
    _instrument()
    shares, runs, checks = [], [], []
    with db.scratch_databases(args.url) as (src, dst):
        db.make_source(src, args.rows)
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
