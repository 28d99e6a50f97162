"""The sink's per-batch CPU on a TPC-H lineitem-shaped batch (1,000,000 rows: a composite
integer key in keyset order, four decimal(15,2) columns, a float column): binary COPY
encoding (``copy_payload``) and ``dedupe_last``, CPU seconds, median of 5.

Usage::

    python benchmarks/sink_encoding.py                    # this install
    /other/venv/bin/python benchmarks/sink_encoding.py    # another one, to compare
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pyarrow as pa

from etl_express.sinks.pgcopy import copy_payload
from etl_express.sinks.postgres import dedupe_last

ROWS = 1_000_000


def _decimals(rng: np.random.Generator, precision: int, scale: int) -> pa.Array:
    """Random decimal(precision, scale) values, built from their unscaled integers."""
    unscaled = pa.array(rng.integers(-(10 ** (precision - 1)), 10 ** (precision - 1), ROWS))
    wide = unscaled.cast(pa.decimal128(19, 0))
    return pa.Array.from_buffers(pa.decimal128(precision, scale), ROWS, wide.buffers())


def main() -> None:
    rng = np.random.default_rng(0)
    batch = pa.record_batch(
        {
            "l_orderkey": np.repeat(np.arange(ROWS // 4, dtype=np.int64), 4),
            "l_linenumber": np.tile(np.arange(1, 5, dtype=np.int32), ROWS // 4),
            "l_quantity": _decimals(rng, 15, 2),
            "l_extendedprice": _decimals(rng, 15, 2),
            "l_discount": _decimals(rng, 15, 2),
            "l_tax": _decimals(rng, 15, 2),
            "l_weight": pa.array(rng.random(ROWS)),
        }
    )
    types = ["bigint", "integer", "numeric", "numeric", "numeric", "numeric", "double precision"]
    encoding, dedupe = [], []
    for _ in range(5):
        start = time.process_time()
        list(copy_payload(batch, types))
        encoding.append(time.process_time() - start)
        start = time.process_time()
        dedupe_last(batch, ["l_orderkey", "l_linenumber"])
        dedupe.append(time.process_time() - start)
    print(
        f"binary COPY encoding {statistics.median(encoding):.3f} s, "
        f"dedupe_last {statistics.median(dedupe):.3f} s "
        f"(CPU, median of 5, {ROWS:,} lineitem-shaped rows)"
    )


if __name__ == "__main__":
    main()
