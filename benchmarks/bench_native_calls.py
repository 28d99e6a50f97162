"""Time of each compiled entry point on 200,000 rows, the best of many rounds.

Made to show what the entry points' own size and offset checks cost (issue 14): with
``--compare`` another build of the extension (a ``_native*.so`` file, e.g. built from an older
commit) is loaded beside this one and the two are called in turns, round after round, so a
loaded machine disturbs both alike::

    python3 benchmarks/bench_native_calls.py --compare /tmp/before/_native.cpython-311-x86_64-linux-gnu.so

The best of ``--rounds`` (default 30) is what a loaded machine disturbs least.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from types import ModuleType

import pyarrow as pa
from bench_anonymizers import make_batch  # type: ignore[import-not-found]

from etl_express import _speedups
from etl_express.anonymizers import scrub_rules
from etl_express.sinks import pgcopy


def load(path: str) -> ModuleType:
    """Another build of the extension, beside the one etl_express imports."""
    spec = importlib.util.spec_from_file_location("other._native", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cases(rows: int, native: ModuleType) -> dict[str, Callable[[], object]]:
    batch = make_batch(rows)
    notes = batch.column("notes")
    phones = batch.column("phone")
    n_off, n_data = _speedups.string_buffers(notes)
    p_off, p_data = _speedups.string_buffers(phones)
    program = scrub_rules._PLUS7_PHONE
    ints = pa.record_batch(
        {
            "id": pa.array(range(rows), pa.int64()),
            "note": notes,
            "day": batch.column("birth_date").cast(pa.date32()),
        }
    )
    types = ["bigint", "text", "date"]
    stream = b"".join(bytes(c) for c in pgcopy.copy_payload(ints, types))
    encoders = pgcopy._binary_encoders(ints, types)
    assert encoders is not None
    parts: list[tuple[object, ...]] = [("const", (3).to_bytes(2, "big"))]
    for encoder, col in zip(encoders, ints.columns):
        parts += pgcopy._native_parts(col, encoder)
    return {
        "blake2b_tokens (phones)": lambda: native.blake2b_tokens(
            b"k" * 32, 16, b"", p_off, rows, p_data
        ),
        "phone_e164": lambda: native.phone_e164(p_off, rows, p_data),
        "replace_ascii_emails (notes)": lambda: native.replace_ascii_emails(
            n_off, rows, n_data, b"<EMAIL>"
        ),
        "replace_program (notes)": lambda: native.replace_program(
            n_off, rows, n_data, program.code, program.first, program.min_len, b"<PHONE>"
        ),
        "scrub_gates (notes)": lambda: native.scrub_gates(n_off, rows, n_data),
        "digit_runs (notes)": lambda: native.digit_runs(n_off, rows, n_data, 10),
        "copy_rows (bigint, text, date)": lambda: native.copy_rows(parts, rows),
        "copy_decode (bigint, text, date)": lambda: native.copy_decode(stream, 19, b"qsD", rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--compare", help="another build of _native to time in turns with this one")
    args = parser.parse_args()
    assert _speedups.native is not None, "the compiled extension is not built"
    builds = {"this": cases(args.rows, _speedups.native)}
    if args.compare:
        builds["other"] = cases(args.rows, load(args.compare))
    print(f"{'':34s} " + "  ".join(f"{name:>22s}" for name in builds))
    for name in builds["this"]:
        best = dict.fromkeys(builds, float("inf"))
        for i in range(args.rounds):
            order = list(builds.items())
            for build, calls in (
                order if i % 2 else order[::-1]
            ):  # neither always finds a warm cache
                t = time.perf_counter()
                calls[name]()
                best[build] = min(best[build], time.perf_counter() - t)
        print(
            f"{name:34s} "
            + "  ".join(
                f"{b * 1e3:8.2f} ms {b / args.rows * 1e9:6.1f} ns/row" for b in best.values()
            )
        )


if __name__ == "__main__":
    main()
