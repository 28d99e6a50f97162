"""Range checksums narrowed down to the differing keys (the SQL sources' reconciliation).

Both databases answer the same questions about half-open key ranges: how many rows, and the
sum of their 64-bit row hashes — the source hashing its rows itself, the target summing the
``_etl_row_hash`` each row was stored with. One pass over each side compares buckets of about
``ROOT_ROWS`` rows; a bucket whose checksum differs is split 16 ways and compared again,
until it holds at most ``LEAF_ROWS`` rows; then its keys and hashes are fetched from both sides
and compared. An unchanged table moves only the first pass's sums. Bucket widths are powers of
two, so buckets nest; the buckets of a step are selected by one key span (the index) and their
bucket numbers (a hashed ``IN`` list), not by hundreds of ORed ranges.

The work left is a queue of ranges saved in ``etl_express.reconcile_state`` after each step,
in the transaction of that step's deletes; re-read rows commit before it (an interrupted step
is redone, and finds them equal), so a killed reconciliation resumes where it stopped.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from ..errors import RunLockedError
from ..sources.sql.checksums import KeySelection, SQLChecksums
from ..store import reconciliation as saved_state
from ..store.schema import now
from .target import TargetChecksums

if TYPE_CHECKING:
    from .._engine.batches import PartitionRunner

ROOT_ROWS = 1024  # rows per bucket of the first pass (about; the width is a power of two)
FANOUT_BITS = 4  # a differing bucket is split in 2**4 = 16
LEAF_ROWS = 64  # at most this many rows: compare keys
STEP_RANGES = 256  # ranges compared per query (and per committed step)
DENSE_SHARE = 0.5  # more differing buckets than this share: compare their keys at once
DENSE_LEAF_ROWS = 4 * ROOT_ROWS

_MISSING = object()


class RangeReconciler:
    """Reconciles one partition of a SQL source with the target (see the module docstring)."""

    def __init__(
        self,
        runner: PartitionRunner,
        source: SQLChecksums,
        target: TargetChecksums,
        mode: str,
        guard: Callable[[int, int], None],
    ):
        self.runner = runner
        self.pipeline = runner.pipeline
        self.store = runner.store
        self.pkey = runner.pkey
        self.source = source
        self.target = target
        self.mode = mode
        self.guard = guard
        self.counts = {
            "segments_compared": 0,
            "keys_fetched": 0,
            "rows_reread": 0,
            "deletes_applied": 0,
        }
        self.resumed = False

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        saved = saved_state.load(self.store, self.pipeline.name, self.pkey)
        if saved is not None and saved["finished_at"] is None and saved["plan"]:
            self.resumed = True
            plan, pending, started_at = saved["plan"], saved["pending"], saved["started_at"]
            self.counts.update(saved["counts"])
        else:
            plan, pending, started_at = self._plan()
        while pending:
            if self.runner.lease_lost is not None and self.runner.lease_lost.is_set():
                raise RunLockedError(
                    "run lost its lease during the delete reconciliation",
                    where={"pipeline": self.pipeline.name, "partition": self.pkey or "all"},
                    hint="do not run the same partition from two places",
                )
            first = pending[0]
            picked = [i for i, p in enumerate(pending) if p[:2] == first[:2]][:STEP_RANGES]
            taken = [pending[i] for i in picked]
            chosen = set(picked)
            rest = [p for i, p in enumerate(pending) if i not in chosen]
            if first[0] == "split":
                pending = rest + self._split(plan, first[1], taken)
                with self.store.transaction() as conn:
                    self._save(conn, plan, pending, started_at)
            else:
                gone = self._leaves(plan, first[1], taken)
                pending = rest
                with self.store.transaction() as conn:
                    self.counts["deletes_applied"] += self.target.delete(conn, gone, self.mode)
                    self._save(conn, plan, pending, started_at)
        with self.store.transaction() as conn:
            self._save(conn, None, [], started_at, finished=True)
        return {**self.counts, "resumed": self.resumed, "seconds": time.monotonic() - started}

    def _save(
        self,
        conn: Connection,
        plan: dict[str, Any] | None,
        pending: list[Any],
        started_at: dt.datetime,
        finished: bool = False,
    ) -> None:
        saved_state.save(
            conn,
            self.pipeline.name,
            self.pkey,
            self.runner.result.run_id,
            plan,
            pending,
            self.counts,
            started_at,
            finished,
        )

    def _plan(self) -> tuple[dict[str, Any] | None, list[Any], dt.datetime]:
        """The first range (both sides' key span) and the width of its buckets."""
        s_lo, s_hi, s_rows = self.source.bounds()
        with self.store.transaction() as conn:
            self.target.ensure_columns(conn)
            t_lo, t_hi, t_rows = self.target.bounds(conn)
        self.guard(s_rows, t_rows)
        los = [v for v in (s_lo, t_lo) if v is not None]
        his = [v for v in (s_hi, t_hi) if v is not None]
        if not los:
            return None, [], now()
        origin, top = min(los), max(his) + 1
        width = max(1, math.ceil((top - origin) * ROOT_ROWS / max(s_rows, t_rows, 1)))
        width = 1 << (width - 1).bit_length()  # a power of two (see _width)
        plan = {"origin": origin, "width": width}
        pending = [["split", 0, origin, top]]
        started_at = now()
        with self.store.transaction() as conn:
            self._save(conn, plan, pending, started_at)
        return plan, pending, started_at

    @staticmethod
    def _width(plan: dict[str, Any], level: int) -> int:
        """The bucket width at which items of ``level`` are split (powers of two: every
        bucket of a level lies inside one bucket of the level above)."""
        return max(1, plan["width"] >> (FANOUT_BITS * level))

    def _selection(self, plan: dict[str, Any], level: int, items: list[Any]) -> KeySelection:
        """The rows of ``items`` — buckets of the level above, or the whole span at the root —
        as one query condition: a span scanned by the key's index, narrowed to the buckets."""
        lo, hi = min(i[2] for i in items), max(i[3] for i in items)
        if level == 0:
            return KeySelection(plan["origin"], lo, hi)
        width = self._width(plan, level - 1)
        buckets = sorted({(i[2] - plan["origin"]) // width for i in items})
        return KeySelection(plan["origin"], lo, hi, width, buckets)

    def _split(self, plan: dict[str, Any], level: int, items: list[Any]) -> list[Any]:
        """Compare the buckets of ``items``; the differing ones, as narrower ranges."""
        origin = plan["origin"]
        width = self._width(plan, level)
        selection = self._selection(plan, level, items)
        src = self.source.bucket_sums(selection, width)
        with self.store.transaction() as conn:
            tgt = self.target.bucket_sums(conn, selection, width)
        buckets = set(src) | set(tgt)
        self.counts["segments_compared"] += len(buckets)
        differ = [b for b in sorted(buckets) if src.get(b) != tgt.get(b)]
        # where most buckets differ, splitting them finds differences nearly everywhere again:
        # one more hashing pass for nothing, so their keys are compared at once
        dense = len(differ) > DENSE_SHARE * len(buckets)
        found = []
        for b in differ:
            s, t = src.get(b, (0, 0, 0)), tgt.get(b, (0, 0, 0))
            rows = max(s[0], t[0])
            leaf = width == 1 or rows <= LEAF_ROWS or (dense and rows <= DENSE_LEAF_ROWS)
            blo = origin + b * width
            found.append(["leaf" if leaf else "split", level + 1, blo, blo + width])
        return found

    def _leaves(self, plan: dict[str, Any], level: int, items: list[Any]) -> list[int]:
        """Compare the keys of ``items``: re-read what differs, return the keys to delete."""
        selection = self._selection(plan, level, items)
        src = self.source.key_hashes(selection)
        with self.store.transaction() as conn:
            tgt = self.target.key_hashes(conn, selection)
        self.counts["keys_fetched"] += len(src) + len(tgt)
        changed = sorted(k for k, h in src.items() if tgt.get(k, _MISSING) != h)
        missing = sorted(set(tgt) - set(src))
        # a range may not mean the same in both databases: delete only keys the source
        # does not have by equality
        still = self.source.present(missing) if missing else set()
        if changed:
            self._reread(changed)
        return [k for k in missing if k not in still]

    def _reread(self, keys: list[int]) -> None:
        """Re-read ``keys`` and commit them like incremental batches, without a checkpoint."""
        for raw in self.source.read_keys(keys):
            self.runner.load_batch(raw, "delete reconciliation re-read")
            self.counts["rows_reread"] += raw.num_rows


__all__ = ["FANOUT_BITS", "LEAF_ROWS", "ROOT_ROWS", "STEP_RANGES", "RangeReconciler"]
