"""ScrubPII's optional NER mode (names and addresses, ``etl-express[ner]``): recall, PII-free
notes altered and rows/s, on notes generated with Faker ru_RU (seeded)::

    python benchmarks/bench_scrub_ner.py [--notes 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from etl_express.anonymizers import ScrubPII
from tests.anonymizers.corpus import (
    address_gone,
    address_notes,
    clean_notes,
    name_notes,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=2000)
    args = parser.parse_args()
    scrub = ScrubPII(["notes"], kinds=["email", "phone", "name", "address"])
    scrub.scrub(pa.array(["Иван Петров"]))  # load the model outside the timing
    names = name_notes(args.notes, 11)
    t = time.perf_counter()
    out = scrub.scrub(pa.array([n for n, _ in names])).to_pylist()
    seconds = time.perf_counter() - t
    recall = sum(v not in o for (_, v), o in zip(names, out)) / len(names)
    print(f"names:     recall {recall:.4f}, {len(names) / seconds:,.0f} rows/s")
    addresses = address_notes(args.notes, 12)
    out = scrub.scrub(pa.array([n for n, _ in addresses])).to_pylist()
    recall = sum(address_gone(v, o) for (_, v), o in zip(addresses, out)) / len(addresses)
    print(f"addresses: recall {recall:.4f}")
    clean = [c for c in clean_notes(args.notes * 2, 13) if not c.startswith("Доставка:")]
    t = time.perf_counter()
    out = scrub.scrub(pa.array(clean)).to_pylist()
    seconds = time.perf_counter() - t
    altered = sum(a != b for a, b in zip(clean, out)) / len(clean)
    print(
        f"PII-free notes altered {altered:.2%} of {len(clean)}, {len(clean) / seconds:,.0f} rows/s"
    )
    base = ScrubPII(["notes"])
    t = time.perf_counter()
    base.scrub(pa.array(clean))
    print(f"without NER: {len(clean) / (time.perf_counter() - t):,.0f} rows/s")


if __name__ == "__main__":
    main()
