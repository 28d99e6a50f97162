"""ScrubPII on the generated Russian corpus: rows/s, recall per kind, PII-free notes altered.

The corpus is tests/anonymizers/corpus.py (Faker ru_RU, seeded): notes holding one personal
value each (email, phone, passport, SNILS, INN, OGRN/OGRNIP, card, in many spellings) and
PII-free notes full of look-alike numbers (timestamps, EAN-13, order/article numbers...)::

    python benchmarks/bench_scrub_corpus.py [--rows 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from etl_express.anonymizers import ScrubPII
from tests.anonymizers.corpus import KINDS, clean_notes, pii_notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    half = args.rows // 2
    pii = pii_notes(min(half, 21_000))
    clean = clean_notes(min(half, 20_000))
    base = [p[0] for p in pii] + clean
    texts = pa.array((base * (args.rows // len(base) + 1))[: args.rows])
    scrub = ScrubPII(["notes"])
    best = float("inf")
    for _ in range(args.rounds):
        t = time.perf_counter()
        scrub.scrub(texts)
        best = min(best, time.perf_counter() - t)
    print(f"ScrubPII on {args.rows:,} corpus notes: {best:.2f} s, {args.rows / best:,.0f} rows/s")
    out = scrub.scrub(pa.array([p[0] for p in pii])).to_pylist()
    missed, total = collections.Counter(), collections.Counter()
    for (_, kind, value), o in zip(pii, out):
        total[kind] += 1
        missed[kind] += value in o
    for kind in KINDS:
        print(f"  recall {kind:9s} {1 - missed[kind] / total[kind]:.4f} ({total[kind]} notes)")
    altered = sum(a != b for a, b in zip(clean, scrub.scrub(pa.array(clean)).to_pylist()))
    print(f"  PII-free notes altered: {altered / len(clean):.4%} of {len(clean)}")


if __name__ == "__main__":
    main()
