"""The anonymizers' outputs on several corpora, to compare two trees value by value.

An optimization of ``Pseudonymize`` or ``ScrubPII`` must not change one token or one scrubbed
note. Run this under the old tree, then under the new one with the old file's inputs::

    PYTHONPATH=<old tree>/src python benchmarks/anon_outputs.py /tmp/before.pkl
    python benchmarks/anon_outputs.py /tmp/after.pkl --against /tmp/before.pkl

The corpora: ``pg_to_pg.py``'s customers table (1,000,000 rows in 50,000-row batches through
one ``Pseudonymize`` and one ``ScrubPII``), ``bench_anonymizers.py``'s table, the notes of
``tests/anonymizers/corpus.py`` with 30,000 mixed notes (not-PII words before phones of every
spelling, international prefixes, Unicode look-alikes, a second identifier) and some nulls and
empty values, scrubbed in placeholder, pseudonym, marker, ``find`` and per-kind modes and in
700-row batches, and 60,000 messy identifiers (case, edge whitespace, full-width and foreign
spellings, nulls) pseudonymized as five entity types. The generated inputs are kept in the
output file (Faker's dates follow the calendar), and ``--against`` reuses the other file's.
Only counts are printed, never a value.
"""

from __future__ import annotations

import argparse
import pickle
import random
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_anonymizers as bench

from etl_express.anonymizers import Pseudonymize, ScrubPII
from etl_express.anonymizers.scrub_rules import NOT_PII_WORDS
from tests.anonymizers.corpus import (
    _faker,
    clean_notes,
    foreign_phone_spelling,
    phone_spelling,
    pii_notes,
    unicode_spelling,
    value_of,
)

KEY = SecretStr("outputs-only-key-" + "Zq4Lm8Xv2Rt6Wn0Pk3Hs7Jd1Fb5Gc9Ay")


def make_inputs() -> dict[str, list[str | None]]:
    rng, fake = random.Random(7), _faker(7)
    mixed = []
    separators = ["", " ", ": ", " №", " № ", "=", " #", ":\u00a0", " - "]
    words = (*NOT_PII_WORDS, "счёт", "Заказ", "ЗАКАЗ", "Артикул", "tel", "тел.", "карта", "card")
    for _ in range(30_000):
        phone = rng.choice(
            [
                phone_spelling(rng),
                phone_spelling(rng),
                foreign_phone_spelling(rng),
                "0049 30 901820",
                "8 10 44 20 7946 0958",
                "+7 916 123-45-67",
                "89161234567",
            ]
        )
        if rng.random() < 0.2:
            phone = unicode_spelling(rng, phone)
        kind = rng.choice(["email", "snils", "inn", "card", "passport"])
        extra = rng.choice(
            ["", ", " + value_of(rng, fake, kind), " и 8 (916) 000-11-22", " user100@mail.ru 0010"]
        )
        mixed.append(
            rng.choice(["", "Клиент ", "NB: "])
            + rng.choice(words)
            + rng.choice(separators)
            + phone
            + extra
        )
    pii = [note for note, _, _ in pii_notes(21_000)]
    nulls = [None if i % 97 == 0 else ("" if i % 89 == 0 else v) for i, v in enumerate(pii[:5000])]
    messy: list[str | None] = []
    for _ in range(60_000):
        k = rng.random()
        if k < 0.3:
            messy.append(rng.choice([" ", "", "\t"]) + fake.email().upper() + rng.choice(["", " "]))
        elif k < 0.5:
            messy.append(phone_spelling(rng))
        elif k < 0.6:
            messy.append(foreign_phone_spelling(rng))
        elif k < 0.8:
            messy.append(fake.name() + rng.choice(["", "  ", " Ёлкин"]))
        elif k < 0.85:
            messy.append(None)
        elif k < 0.9:
            messy.append("")
        else:
            messy.append(
                rng.choice(
                    [
                        "ÄÖÜ@Straße.de",
                        "ＦＵＬＬ＠ｗｉｄｔｈ.ru",
                        "８ ９１６ １２３ ４５ ６７",
                        "ς@σ.gr",
                    ]
                )
            )
    return {"notes": [*pii, *clean_notes(20_000), *mixed, *nulls], "messy": messy}


def outputs(inputs: dict[str, list[str | None]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    customers = bench.make_customers(1_000_000)
    pseudonymize, scrub = (
        Pseudonymize(["email", "phone", "full_name"], key=KEY),
        ScrubPII(["notes"]),
    )
    done = [
        scrub.anonymize(pseudonymize.anonymize(customers.slice(start, 50_000)))
        for start in range(0, customers.num_rows, 50_000)
    ]
    table = pa.Table.from_batches(done)
    for name in ("email", "phone", "full_name", "notes"):
        out["customers." + name] = table.column(name).to_pylist()
    rows = bench.make_batch(200_000)
    anonymized = Pseudonymize(["email", "phone", "full_name"], key=KEY).anonymize(rows)
    for name in ("email", "phone", "full_name"):
        out["bench." + name] = anonymized.column(name).to_pylist()
    out["bench.notes"] = ScrubPII(["notes"]).scrub(rows.column("notes")).to_pylist()
    notes = pa.array(inputs["notes"], pa.string())
    placeholders = ScrubPII(["notes"])
    out["corpus.placeholder"] = placeholders.scrub(notes).to_pylist()
    out["corpus.pseudonym"] = (
        ScrubPII(["notes"], replace="pseudonym", key=KEY).scrub(notes).to_pylist()
    )
    out["corpus.marker"] = placeholders._marker_twin()._scan(_without_nulls(notes)).to_pylist()
    out["corpus.find"] = [sorted(found) for found in placeholders.find(notes)]
    for kinds in (("phone",), ("email", "card"), ("snils", "inn", "ogrn")):
        scrubbed = ScrubPII(["notes"], kinds=kinds).scrub(notes)
        out["corpus.kinds=" + ",".join(kinds)] = scrubbed.to_pylist()
    small = ScrubPII(["notes"])
    out["corpus.700-row batches"] = [
        value
        for start in range(0, len(notes), 700)
        for value in small.scrub(notes.slice(start, 700)).to_pylist()
    ]
    messy = pa.array(inputs["messy"], pa.string())
    names = ["email", "phone", "full_name", "snils", "comment"]
    batch = pa.RecordBatch.from_arrays([messy] * len(names), names)
    tokens = Pseudonymize(names, key=KEY)
    parts = [tokens.anonymize(batch.slice(start, 20_000)) for start in range(0, len(messy), 20_000)]
    for name in names:
        out["messy." + name] = [v for part in parts for v in part.column(name).to_pylist()]
    return out


def _without_nulls(notes: pa.Array) -> pa.Array:
    """The notes without nulls (the marker scan takes text only)."""
    return pa.array([v or "" for v in notes.to_pylist()], pa.string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the pickle to write (inputs and outputs)")
    parser.add_argument(
        "--against", help="a file written by the other tree: reuse its inputs, compare"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    before = pickle.loads(Path(args.against).read_bytes()) if args.against else None
    inputs = before["inputs"] if before else make_inputs()
    results = outputs(inputs)
    Path(args.out).write_bytes(pickle.dumps({"inputs": inputs, "outputs": results}))
    values = sum(len(v) for v in results.values())
    print(f"{len(results)} outputs, {values:,} values in {time.perf_counter() - started:.0f} s")
    if before is None:
        return
    differ = 0
    for name, old in before["outputs"].items():
        new = results.get(name)
        if new != old:
            differ += 1
            count = sum(a != b for a, b in zip(old, new or []))
            print(f"  {name}: {count:,} of {len(old):,} values differ")
    print("identical" if not differ else f"{differ} outputs differ")
    raise SystemExit(1 if differ else 0)


if __name__ == "__main__":
    main()
