"""The allocator tuning that keeps a bulk load's batch buffers in the process
(``etl_express._allocator``): page faults are counted, not timed, so the test does not depend
on how busy the machine is. Each case runs in a fresh interpreter, since the setting is
process-wide."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import pg_exec

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only"
)

#: 20 buffers of 48 MB written and freed one after the other (above glibc's largest dynamic
#: mmap threshold, 32 MB: untuned, each one is a fresh mapping, 12,288 faults)
CHURN = """
import resource
def churn():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        block = bytearray(48 << 20)
        block[::4096] = b"x" * len(block[::4096])
        del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
"""


def faults(code: str, env: dict[str, str]) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", CHURN + code + "\nprint(churn())"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return int(proc.stdout.split()[-1])


def test_tuned_malloc_reuses_freed_batch_buffers() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ETL_EXPRESS_MALLOC_TUNING"}
    tune = "from etl_express._allocator import keep_batch_memory\nassert keep_batch_memory()\n"
    untuned = faults("", env)
    tuned = faults(tune, env)
    assert untuned > 20 * 10_000  # every buffer mapped afresh
    assert tuned < untuned / 5  # the first buffer's pages, then reuse


def test_the_opt_out_leaves_malloc_alone() -> None:
    env = {**os.environ, "ETL_EXPRESS_MALLOC_TUNING": "off"}
    code = "from etl_express._allocator import keep_batch_memory\nassert not keep_batch_memory()\n"
    assert faults(code, env) > 20 * 10_000


def test_a_binary_copy_read_turns_the_tuning_on(pg_url: str, schema: str) -> None:
    pg_exec(pg_url, f"CREATE TABLE {schema}.t AS SELECT g AS id FROM generate_series(1, 100) g")
    env = {k: v for k, v in os.environ.items() if k != "ETL_EXPRESS_MALLOC_TUNING"}
    read = f"""
from etl_express._allocator import keep_batch_memory
from etl_express.sources import SQLSource
rows = sum(b.num_rows for b in SQLSource(url={pg_url!r}, table="{schema}.t", primary_key="id").read())
assert rows == 100, rows
assert keep_batch_memory.cache_info().misses == 1  # the read asked for it
"""
    untuned = faults("", env)
    assert faults(read, env) < untuned / 5
