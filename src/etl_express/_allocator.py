"""Keep a bulk load's batch buffers in the process instead of handing them back every batch.

Logic: a bulk load allocates the same few large buffers for every batch — the COPY messages
read from the source, the decoded Arrow columns, the encoded COPY stream for the target — tens
of megabytes each. glibc's ``malloc`` serves a request above its mmap threshold (128 KB at
first, raised as such blocks are freed, but never above 32 MB) with a fresh ``mmap`` and
unmaps it when it is freed, and it gives the top of its heap back to the kernel once more than
the trim threshold is free there. Either way the next batch writes into pages the kernel must
find, zero and map again, one page fault per 4 KB: on the 1,000,000-row benchmark table about
80,000 faults and 0.1-0.2 s of system CPU, a tenth of the client's work. :func:`keep_batch_memory`
sets both thresholds once per process (64 MB and 256 MB), when the first bulk read or write
starts, so that a freed batch buffer is reused by the next batch; the cost is up to 256 MB of
freed memory kept in the process (measured: peak RSS +30 MB on that table). Only glibc has
these knobs; elsewhere, and with ``ETL_EXPRESS_MALLOC_TUNING=off`` in the environment, nothing
changes. The thresholds are process-wide, so a program that tunes ``malloc`` itself sets the
variable and keeps its own settings.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

#: glibc's ``mallopt`` parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: a block up to this size comes from the heap, where a freed one is reused
MMAP_THRESHOLD = 64 << 20
#: free memory at the heap's top kept in the process rather than given back
TRIM_THRESHOLD = 256 << 20
#: set to ``off`` (or ``0``/``false``/``no``) to leave ``malloc`` as it is
OPT_OUT = "ETL_EXPRESS_MALLOC_TUNING"


@functools.lru_cache(maxsize=1)
def keep_batch_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; whether they were set."""
    if os.environ.get(OPT_OUT, "").strip().lower() in {"off", "0", "false", "no"}:
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it: musl's mallopt does nothing
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    )
