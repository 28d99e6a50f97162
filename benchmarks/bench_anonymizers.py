"""Throughput of the anonymizers on 1,000,000 rows.

Pseudonymize on three columns (unique emails, unique phones in mixed formats, repeated full
names) and ScrubPII on one free-text column where about a third of the notes hold personal
data. Run as a script to print rows/s::

    python benchmarks/bench_anonymizers.py [--rows 1000000] [--batch-rows 50000]
        [--table bench|customers] [--cases pseudonymize scrub both]

``--batch-rows`` cuts the rows into batches the way a load hands them to its anonymizers
(one anonymizer per run, every batch through it: per-batch costs and state count);
``--table customers`` anonymizes rows shaped like ``benchmarks/pg_to_pg.py``'s table (its
names, emails, phones and notes, built by the same formulas) instead of this file's. Times are
the process's CPU time (``time.process_time``: all threads), the least of ``--rounds``, and
wall time beside it.

or with pytest-benchmark (not part of the normal test run, which collects tests/ only)::

    pytest benchmarks/bench_anonymizers.py --benchmark-only
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import time
from collections.abc import Callable

import pyarrow as pa
import pytest
from pydantic import SecretStr

from etl_express.anonymizers import (
    Generalize,
    KAnonymity,
    Mask,
    Pseudonymize,
    Redact,
    ScrubPII,
    Suppress,
)
from etl_express.anonymizers.detectors import inn_check, snils_check

ROWS = int(os.environ.get("ETL_EXPRESS_BENCH_ROWS", 1_000_000))
KEY = SecretStr("bench-only-key-" + "Zq4Lm8Xv2Rt6Wn0Pk3Hs7Jd1Fb5Gc9Ay")

_FIRST = ["Иван", "Пётр", "Анна", "Мария", "Олег", "Елена", "Сергей", "Ольга", "Дмитрий", "Наталья"]
_LAST = [
    "Иванов",
    "Петров",
    "Сидоров",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Соколов",
    "Лебедев",
    "Козлов",
    "Новиков",
]
_CITIES = [
    "г. Москва, ул. Тверская 1",
    "Санкт-Петербург",
    "г. Казань",
    "Новосибирск",
    "г. Химки, ул. Ленина 5",
]
_PLAIN = [
    "Заказ №{i} доставлен, сумма {a} руб.",
    "Клиент просил перезвонить после {h}:00",
    "Возврат по заказу {i} оформлен {d}.03.2024",
    "Оплата прошла, скидка {a} руб, спасибо",
]


def make_batch(rows: int = ROWS, seed: int = 1) -> pa.RecordBatch:
    rng = random.Random(seed)
    phones, notes = [], []
    for i in range(rows):
        ten = f"9{rng.randrange(10**9):09d}"
        form = i % 4
        phones.append(
            f"+7{ten}"
            if form == 0
            else f"8 ({ten[:3]}) {ten[3:6]}-{ten[6:8]}-{ten[8:]}"
            if form == 1
            else f"+7 {ten[:3]} {ten[3:]}"
            if form == 2
            else f"8{ten}"
        )
        kind = i % 9
        if kind == 0:
            notes.append(f"Клиент user{i}@mail.ru просил счёт, сумма {i % 997} руб.")
        elif kind == 1:
            notes.append(
                f"Перезвонить на +7 ({ten[:3]}) {ten[3:6]}-{ten[6:8]}-{ten[8:]} после обеда"
            )
        elif kind == 2:
            nine = f"{rng.randrange(2_000_000, 999_999_999):09d}"
            body = f"77{rng.randrange(10**7):07d}"
            notes.append(
                f"СНИЛС {nine[:3]}-{nine[3:6]}-{nine[6:]} {snils_check(nine)}, ИНН {body}{inn_check(body)}"
            )
        else:
            notes.append(_PLAIN[i % 4].format(i=i, a=i % 5000, h=9 + i % 9, d=1 + i % 28))
    return pa.RecordBatch.from_pydict(
        {
            "id": pa.array(range(rows), pa.int64()),
            "email": [f"User.{i}@Example{i % 50}.ru" for i in range(rows)],
            "phone": phones,
            "full_name": [
                f"{_LAST[i % 10]} {_FIRST[(i // 10) % 10]} {i % 37}" for i in range(rows)
            ],
            "notes": notes,
            "birth_date": pa.array(
                [dt.date(1950, 1, 1) + dt.timedelta(days=(i * 37) % 20000) for i in range(rows)]
            ),
            "city": [_CITIES[i % len(_CITIES)] for i in range(rows)],
            "salary": pa.array([float((i * 7919) % 300_000) for i in range(rows)]),
        }
    )


def make_customers(rows: int = ROWS) -> pa.RecordBatch:
    """Rows shaped like ``benchmarks/pg_to_pg.py``'s ``customers`` table (the columns the
    anonymized case anonymizes), built by the same formulas as its SQL."""
    from _pgbench_db import _DOMAINS, _NAMES, _PATRONYMICS, _SURNAMES

    def notes(g: int) -> str:
        if g % 3 == 0:
            return (
                f"Перезвонить: 8 (9{(g * 31) % 100:02d}) {(g * 17) % 1000:03d}-{g % 100:02d}"
                f"-{(g * 3) % 100:02d}, счёт: user{g}@mail.ru"
            )
        if g % 3 == 1:
            return f"Заказ №{g} доставлен"
        return f"Контакт: +7 9{(g * 97) % 1000000000:09d}, info{g % 1000}@yandex.ru"

    ids = range(1, rows + 1)
    return pa.RecordBatch.from_pydict(
        {
            "id": pa.array(ids, pa.int64()),
            "full_name": [
                f"{_SURNAMES[(g * 7) % len(_SURNAMES)]} {_NAMES[(g * 13) % len(_NAMES)]} "
                f"{_PATRONYMICS[(g * 3) % len(_PATRONYMICS)]}"
                for g in ids
            ],
            "email": [f"user{g}@{_DOMAINS[g % len(_DOMAINS)]}" for g in ids],
            "phone": [f"+79{(g * 7919) % 1000000000:09d}" for g in ids],
            "notes": [notes(g) for g in ids],
        }
    )


def pseudonymize_3(batch: pa.RecordBatch) -> pa.RecordBatch:
    return Pseudonymize(["email", "phone", "full_name"], key=KEY).anonymize(batch)


def scrub_notes(batch: pa.RecordBatch) -> pa.RecordBatch:
    return ScrubPII(["notes"]).anonymize(batch)


def both(batch: pa.RecordBatch) -> pa.RecordBatch:
    return scrub_notes(pseudonymize_3(batch))


CASES: dict[str, Callable[[pa.RecordBatch], pa.RecordBatch]] = {
    "Pseudonymize x3 columns": pseudonymize_3,
    "ScrubPII x1 free-text column": scrub_notes,
    "both": both,
}


def _run_pseudonymize() -> Callable[[pa.RecordBatch], pa.RecordBatch]:
    return Pseudonymize(["email", "phone", "full_name"], key=KEY).anonymize


def _run_scrub() -> Callable[[pa.RecordBatch], pa.RecordBatch]:
    return ScrubPII(["notes"]).anonymize


def _run_both() -> Callable[[pa.RecordBatch], pa.RecordBatch]:
    first, second = _run_pseudonymize(), _run_scrub()
    return lambda batch: second(first(batch))


#: what one run of each case builds once and calls on every batch
RUNS: dict[str, tuple[str, Callable[[], Callable[[pa.RecordBatch], pa.RecordBatch]]]] = {
    "pseudonymize": ("Pseudonymize x3 columns", _run_pseudonymize),
    "scrub": ("ScrubPII x1 free-text column", _run_scrub),
    "both": ("both", _run_both),
}


# -- pytest-benchmark -------------------------------------------------------------------

_BATCH: pa.RecordBatch | None = None


def _batch() -> pa.RecordBatch:
    global _BATCH
    if _BATCH is None:
        _BATCH = make_batch()
    return _BATCH


def test_pseudonymize_3_columns(benchmark) -> None:  # type: ignore[no-untyped-def]
    out = benchmark.pedantic(pseudonymize_3, args=(_batch(),), rounds=3, iterations=1)
    assert out.num_rows == ROWS


def test_scrub_free_text(benchmark) -> None:  # type: ignore[no-untyped-def]
    out = benchmark.pedantic(scrub_notes, args=(_batch(),), rounds=3, iterations=1)
    assert out.num_rows == ROWS


def test_pseudonymize_and_scrub(benchmark) -> None:  # type: ignore[no-untyped-def]
    out = benchmark.pedantic(both, args=(_batch(),), rounds=3, iterations=1)
    assert out.num_rows == ROWS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--batch-rows",
        type=int,
        default=0,
        help="anonymize the rows in batches of this many (0: one batch of all rows)",
    )
    parser.add_argument(
        "--table",
        choices=("bench", "customers"),
        default="bench",
        help="this file's rows, or rows shaped like benchmarks/pg_to_pg.py's table",
    )
    parser.add_argument("--cases", nargs="*", choices=list(RUNS), default=list(RUNS))
    args = parser.parse_args()
    t = time.perf_counter()
    batch = (make_customers if args.table == "customers" else make_batch)(args.rows)
    step = args.batch_rows or args.rows
    batches = [batch.slice(start, step) for start in range(0, args.rows, step)]
    print(
        f"generated {args.rows:,} rows in {time.perf_counter() - t:.1f} s, {len(batches)} batches"
    )
    for case in args.cases:
        name, start_run = RUNS[case]
        cpu = wall = float("inf")
        for _ in range(args.rounds):
            run = start_run()  # one run: new anonymizers, every batch through them
            t, c = time.perf_counter(), time.process_time()
            for part in batches:
                run(part)
            cpu = min(cpu, time.process_time() - c)
            wall = min(wall, time.perf_counter() - t)
        print(f"{name:32s} {cpu:7.3f} s CPU {wall:7.3f} s wall {args.rows / wall:12,.0f} rows/s")


if __name__ == "__main__":
    main()


# one micro-benchmark per anonymizer, on the first 100,000 rows
EACH: dict[str, Callable[[], object]] = {
    "pseudonymize_email": lambda: Pseudonymize(["email"], key=KEY),
    "pseudonymize_phone": lambda: Pseudonymize(["phone"], key=KEY),
    "scrub_placeholders": lambda: ScrubPII(["notes"]),
    "scrub_pseudonyms": lambda: ScrubPII(["notes"], replace="pseudonym", key=KEY),
    "redact": lambda: Redact(["email"]),
    "mask": lambda: Mask(["phone"], keep_last=2),
    "generalize_year": lambda: Generalize(["birth_date"], to="year"),
    "generalize_region": lambda: Generalize(["city"], to="region"),
    "generalize_buckets": lambda: Generalize(["salary"], width=50_000),
    "suppress_columns": lambda: Suppress(["notes"]),
    "suppress_rare_groups": lambda: Suppress(quasi_identifiers=["city"], k=5),
    "k_anonymity": lambda: KAnonymity(["city"], k=5),
}


@pytest.mark.parametrize("name", list(EACH))
def test_each_anonymizer(benchmark, name: str) -> None:  # type: ignore[no-untyped-def]
    batch = _batch().slice(0, 100_000)
    anonymizer = EACH[name]()
    out = benchmark.pedantic(anonymizer.anonymize, args=(batch,), rounds=3, iterations=1)  # type: ignore[attr-defined]
    assert out.num_rows <= batch.num_rows
