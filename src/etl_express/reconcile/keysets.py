"""Key-set reconciliation: where range checksums cannot be computed in the source (text, uuid
or composite keys; a database that cannot hash; a REST API), the source's full key list —
with each row's hash where the source can hash — is streamed into a temporary table of the
target database and compared there, in one transaction with the deletes it implies.

This moves every key (not every row), so it is slower than range checksums for a large
unchanged table. A killed reconciliation of this kind starts its key listing again on the
next run; the deletes and re-reads it already committed are found equal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from ..format import Batch
from ..store.database import psycopg_connection
from .target import TargetChecksums

if TYPE_CHECKING:
    from .._engine.batches import PartitionRunner

KEYS_TABLE = "_etl_reconcile_keys"


class KeyListing:
    """What a source offers for a key-set reconciliation.

    ``list_keys()`` yields lists of key tuples — ``(*key values, row hash)`` when ``hashed`` — of
    every record the source has (``kind="all"``) or of the records it reports deleted
    (``kind="deleted"``). ``read_keys(keys)`` re-reads records (``None``: the source cannot).
    """

    def __init__(
        self,
        list_keys: Callable[[], Iterable[list[tuple[Any, ...]]]],
        *,
        kind: str = "all",
        hashed: bool = False,
        read_keys: Callable[[list[tuple[Any, ...]]], Iterator[Batch]] | None = None,
    ):
        self.list_keys, self.kind = list_keys, kind
        self.hashed, self.read_keys = hashed, read_keys


class KeySetReconciler:
    def __init__(
        self,
        runner: PartitionRunner,
        listing: KeyListing,
        target: TargetChecksums,
        key_columns: Sequence[str],
        mode: str,
        guard: Callable[[int, int], None],
    ):
        self.runner, self.listing, self.target = runner, listing, target
        self.key_columns = list(key_columns)
        self.mode, self.guard = mode, guard

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        counts = {"segments_compared": 0, "keys_fetched": 0, "rows_reread": 0, "deletes_applied": 0}
        with self.runner.store.transaction() as conn:
            self.target.ensure_columns(conn)
            with psycopg_connection(conn).cursor() as cur:
                cur.execute("SET LOCAL TimeZone = 'UTC'")  # naive key values are UTC, as loaded
                counts["keys_fetched"] = self._load_keys(cur)
                counts["segments_compared"] = 1
                gone: sql.Composable
                if self.listing.kind == "deleted":
                    gone = sql.SQL("EXISTS (SELECT 1 FROM {} AS k WHERE {})")
                else:
                    _, live_rows = self._counts(cur)
                    self.guard(counts["keys_fetched"], live_rows)
                    gone = sql.SQL("NOT EXISTS (SELECT 1 FROM {} AS k WHERE {})")
                gone = gone.format(sql.Identifier(KEYS_TABLE), self._match("k", "t"))
                counts["deletes_applied"] = self.target.delete_where(conn, gone, self.mode)
                changed = self._changed(cur) if self.listing.kind == "all" else []
                cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(KEYS_TABLE)))
        if changed and self.listing.read_keys is not None:
            counts["rows_reread"] = self._reread(changed)
        return {**counts, "resumed": False, "seconds": time.monotonic() - started}

    def _match(self, a: str, b: str) -> sql.Composable:
        return sql.SQL(" AND ").join(
            sql.SQL("{}.{} = {}.{}").format(
                sql.Identifier(a), sql.Identifier(c), sql.Identifier(b), sql.Identifier(c)
            )
            for c in self.key_columns
        )

    def _load_keys(self, cur: psycopg.Cursor[Any]) -> int:
        cols = [*self.key_columns, "_etl_row_hash"]
        names = sql.SQL(", ").join(map(sql.Identifier, cols))
        cur.execute(
            sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                sql.Identifier(KEYS_TABLE), names, self.target.ident
            )
        )
        n = 0
        with cur.copy(
            sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(KEYS_TABLE), names)
        ) as copy:
            for chunk in self.listing.list_keys():
                for key in chunk:
                    copy.write_row(key if self.listing.hashed else (*key, None))
                    n += 1
        cur.execute(
            sql.SQL("CREATE INDEX ON {} ({})").format(
                sql.Identifier(KEYS_TABLE),
                sql.SQL(", ").join(map(sql.Identifier, self.key_columns)),
            )
        )
        cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(KEYS_TABLE)))
        return n

    def _counts(self, cur: psycopg.Cursor[Any]) -> tuple[int, int]:
        live, params = self.target._live()
        cur.execute(
            sql.SQL("SELECT count(*) FROM {} AS t WHERE ").format(self.target.ident) + live, params
        )
        return 0, int(cur.fetchall()[0][0])  # an aggregate: one row

    def _changed(self, cur: psycopg.Cursor[Any]) -> list[tuple[Any, ...]]:
        """Listed keys the target lacks (live), or whose stored row hash differs."""
        live, params = self.target._live()
        differs = (
            sql.SQL(" OR t._etl_row_hash IS DISTINCT FROM k._etl_row_hash")
            if self.listing.hashed
            else sql.SQL("")
        )
        cur.execute(
            sql.SQL("SELECT {} FROM {} AS k WHERE NOT EXISTS (SELECT 1 FROM {} AS t WHERE ").format(
                sql.SQL(", ").join(
                    sql.SQL("k.{}").format(sql.Identifier(c)) for c in self.key_columns
                ),
                sql.Identifier(KEYS_TABLE),
                self.target.ident,
            )
            + self._match("k", "t")
            + sql.SQL(" AND ")
            + live
            + sql.SQL(" AND NOT (false")
            + differs
            + sql.SQL("))"),
            params,
        )
        return [tuple(r) for r in cur.fetchall()]

    def _reread(self, keys: list[tuple[Any, ...]]) -> int:
        n = 0
        read_keys = self.listing.read_keys
        for raw in read_keys(keys) if read_keys is not None else ():
            self.runner.load_batch(raw, "delete reconciliation re-read")
            n += raw.num_rows
        return n


__all__ = ["KEYS_TABLE", "KeyListing", "KeySetReconciler"]
