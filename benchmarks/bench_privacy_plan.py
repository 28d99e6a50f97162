"""What the privacy plan costs: lineage and coverage before a run, and its per-batch checks.

* ``plan``: ``Pipeline.check_pii_coverage()`` — the plan over the source's declared columns
  through the transformers' lineage (a traced ``Derive`` included), coverage, unknown names and
  positions — for a typical CRM pipeline (12 columns, 6 transformers, 4 anonymizers) and a wide
  one (200 columns, 12 transformers). The target: under 50 ms per pipeline.
* ``position``: the check that a batch's position holds none of its personal values
  (``PrivacyPlan.position_leak``), on a 100,000-row batch with 3 personal columns.
* ``quarantine``: protecting one rejected record (``PrivacyPlan.protect_record``).
* ``token``: judging a paginator token by its value (and its percent-decoded and base64
  forms) when it holds none of the batch's values (``PrivacyPlan.position_leak``).
* ``new fields``: the per-batch look for fields appearing mid-run
  (``guard_fields.NewFields.check``) on a 100,000-row batch of 4 text columns and a JSON one,
  after the first batch (the steady cost of every later batch).

Run as a script (prints CPU milliseconds, median of ``--repeat`` runs)::

    python benchmarks/bench_privacy_plan.py [--repeat 20]

or with pytest-benchmark::

    pytest benchmarks/bench_privacy_plan.py --benchmark-only
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import SecretStr

import etl_express as etl
from etl_express import Batch, Source
from etl_express.anonymizers import Generalize, Mask, Pseudonymize, ScrubPII
from etl_express.anonymizers.guard import plan_for
from etl_express.sinks import JSONLSink
from etl_express.transformers import Cast, Derive, Filter, NormalizeEmpty, Rename, Select

KEY = SecretStr("bench-only-key-" + "Zq4Lm8Xv2Rt6Wn0Pk3Hs7Jd1Fb5Gc9Ay")
RESULTS = Path(__file__).parent / "results" / "privacy_plan.json"


class Declared(Source):
    """A source that tells its columns (as SQL reflection would), read by nobody here."""

    def __init__(self, schema: pa.Schema, pii: list[str]):
        self._schema, self.pii, self.name, self.primary_key = schema, pii, "crm", ["id"]

    def read(self, position: Any = None, partition: Any = None) -> Any:
        yield Batch([], position=None)

    def schema(self) -> pa.Schema:
        return self._schema


def crm_pipeline() -> etl.Pipeline:
    columns = ["full_name", "email", "phone", "passport", "birth_date", "city", "notes"]
    schema = pa.schema(
        [
            ("id", pa.int64()),
            *((c, pa.string()) for c in columns),
            ("balance", pa.float64()),
            ("created_at", pa.string()),
            ("updated_at", pa.string()),
            ("segment", pa.string()),
        ]
    )
    return etl.Pipeline(
        "bench_crm",
        Declared(schema, ["full_name", "email", "phone", "passport", "birth_date"]),
        transformers=[
            Rename({"email": "mail"}),
            Cast({"birth_date": "date"}),
            Derive("domain", lambda b: pc.replace_substring_regex(b["mail"], "^.*@", "")),
            NormalizeEmpty("strip"),
            Filter(pc.field("id") > 0),
            Select(
                [
                    "id",
                    "full_name",
                    "mail",
                    "phone",
                    "passport",
                    "birth_date",
                    "city",
                    "notes",
                    "balance",
                    "domain",
                    "updated_at",
                ]
            ),
        ],
        anonymizers=[
            Pseudonymize(["full_name", "mail", "phone"], key=KEY),
            Mask(["passport"], keep_last=2),
            Generalize(["birth_date"], to="year"),
            ScrubPII(["notes"]),
        ],
        not_pii={"domain": "the domain only"},
        sink=JSONLSink("unused"),
    )


def wide_pipeline() -> etl.Pipeline:
    names = [f"c{i:03d}" for i in range(200)]
    schema = pa.schema([("id", pa.int64()), *((n, pa.string()) for n in names)])
    steps: list[Any] = []
    for i in range(4):
        steps += [
            Rename({f"c{i:03d}": f"r{i:03d}"}),
            Derive(f"d{i}", lambda b, i=i: pc.utf8_upper(b[f"c{100 + i:03d}"])),
            NormalizeEmpty("null"),
        ]
    return etl.Pipeline(
        "bench_wide",
        Declared(schema, [f"c{i:03d}" for i in range(100, 110)]),
        transformers=steps,
        anonymizers=[
            Pseudonymize([f"c{i:03d}" for i in range(104, 110)], key=KEY),
            Pseudonymize(
                [f"c{i:03d}" for i in range(100, 104)] + ["d0", "d1", "d2", "d3"], key=KEY
            ),
        ],
        sink=JSONLSink("unused"),
    )


def median_ms(call: Callable[[], object], repeat: int) -> float:
    """Median CPU milliseconds of one call (process time: on a shared machine wall time
    measures the other processes too)."""
    call()  # warm: imports, compiled regexes
    times = []
    for _ in range(repeat):
        start = time.process_time()
        call()
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times)


def measure(repeat: int) -> dict[str, float]:
    crm, wide = crm_pipeline(), wide_pipeline()
    plan = plan_for(crm)
    n = 100_000
    batch = pa.RecordBatch.from_pydict(
        {
            "id": pa.array(range(n), pa.int64()),
            "full_name": [f"Name {i}" for i in range(n)],
            "email": [f"user{i}@example.org" for i in range(n)],
            "phone": [f"+7916{i:07d}" for i in range(n)],
        }
    )
    record = {
        "id": 1,
        "full_name": "Иван Петров",
        "email": "ivan@example.org",
        "phone": "+79161234567",
        "passport": "4507 123456",
        "birth_date": "1990-05-04",
        "city": "Тверь",
        "notes": "звонить вечером",
        "balance": 1.5,
    }
    from etl_express.anonymizers.guard_fields import NewFields

    texts = batch.append_column("notes", pa.array([f"заказ {i}" for i in range(n)]))
    texts = texts.append_column(
        "payload", pa.array([{"contact": {"city": "Тверь", "n": i}} for i in range(n)])
    )
    watch = NewFields(crm, None)
    watch.check(texts, {}, skip=())
    token = {"token": "eyJhZnRlciI6IDEyMzQ1Njd9", "next": "https://api/x?after=1234567&n=2"}
    return {
        "plan_crm_ms": median_ms(crm.check_pii_coverage, repeat),
        "plan_wide_ms": median_ms(wide.check_pii_coverage, repeat),
        "position_check_100k_rows_ms": median_ms(
            lambda: plan.position_leak({"key": [n - 1]}, batch), repeat
        ),
        "quarantine_record_ms": median_ms(lambda: plan.protect_record(record, 0), repeat),
        "position_check_text_token_ms": median_ms(lambda: plan.position_leak(token, batch), repeat),
        "new_fields_100k_rows_ms": median_ms(lambda: watch.check(texts, {}, skip=()), repeat),
    }


def test_plan_crm(benchmark: Any) -> None:
    benchmark(crm_pipeline().check_pii_coverage)


def test_plan_wide(benchmark: Any) -> None:
    benchmark(wide_pipeline().check_pii_coverage)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--save", action="store_true", help=f"write {RESULTS.name}")
    args = parser.parse_args()
    figures = measure(args.repeat)
    for name, value in figures.items():
        print(f"{name:32s} {value:8.2f}")
    if args.save:
        RESULTS.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
