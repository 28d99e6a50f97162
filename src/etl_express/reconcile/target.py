"""The target side of a reconciliation: the same range checksums over the PostgreSQL target's
live rows of one source, computed from the ``_etl_row_hash`` each row was stored with, and the
deletes (soft, hard, or closing the current version of a history table)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import Connection

from ..format import DELETED_AT, ROW_HASH, VALID_TO
from ..sources.sql.checksums import KeySelection
from ..store import tables
from ..store.database import psycopg_connection
from ..store.tables import TableName


class TargetChecksums:
    """Queries over ``schema.table``'s live rows whose ``_etl_source`` is ``source_name``.

    Live means not soft-deleted, and for a history table the current version. Every value is
    a bound parameter; identifiers are quoted by psycopg.
    """

    def __init__(
        self,
        table: TableName,
        key: str | Sequence[str],
        source_name: str,
        *,
        history: bool,
        partition: dict[str, Any] | None = None,
    ):
        self.table = table
        self.ident = table.ident
        keys = [key] if isinstance(key, str) else list(key)
        self.key = sql.Identifier(keys[0])
        self.key_list = sql.SQL(", ").join(map(sql.Identifier, keys))
        self.source_name = source_name
        self.history = history
        self.partition = partition or {}

    @staticmethod
    def _cursor(conn: Connection) -> psycopg.Cursor[Any]:
        return psycopg_connection(conn).cursor()

    def exists(self, conn: Connection) -> bool:
        return tables.exists(conn, self.table)

    def ensure_columns(self, conn: Connection) -> None:
        """``_etl_row_hash`` and ``_etl_deleted_at`` exist (a table loaded before deletes= was
        turned on gets them; its rows, hash unknown, are re-read once)."""
        with self._cursor(conn) as cur:
            cur.execute(
                sql.SQL(
                    "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} bigint, "
                    "ADD COLUMN IF NOT EXISTS {} timestamp with time zone"
                ).format(self.ident, sql.Identifier(ROW_HASH), sql.Identifier(DELETED_AT))
            )

    def _live(self) -> tuple[sql.Composable, list[Any]]:
        where: list[sql.Composable] = [sql.SQL("_etl_source = %s")]
        params: list[Any] = [self.source_name]
        if self.history:
            where.append(sql.SQL("{} IS NULL").format(sql.Identifier(VALID_TO)))
        else:
            where.append(sql.SQL("{} IS NULL").format(sql.Identifier(DELETED_AT)))
        lo, hi = self.partition.get("lo"), self.partition.get("hi")
        if lo is not None:
            where.append(sql.SQL("{} >= %s").format(self.key))
            params.append(lo)
        if hi is not None:
            where.append(sql.SQL("{} < %s").format(self.key))
            params.append(hi)
        return sql.SQL(" AND ").join(where), params

    def _within(self, sel: KeySelection) -> tuple[sql.Composable, list[Any]]:
        cond = sql.SQL("{} >= %s AND {} < %s").format(self.key, self.key)
        params: list[Any] = [sel.lo, sel.hi]
        if sel.width is not None:
            cond += sql.SQL(" AND ({} - %s::bigint) / %s::bigint = ANY(%s)").format(self.key)
            params += [sel.origin, sel.width, list(sel.buckets)]
        return cond, params

    def bounds(self, conn: Connection) -> tuple[int | None, int | None, int]:
        live, params = self._live()
        with self._cursor(conn) as cur:
            cur.execute(
                sql.SQL("SELECT min({}), max({}), count(*) FROM {} WHERE ").format(
                    self.key, self.key, self.ident
                )
                + live,
                params,
            )
            lo, hi, n = cur.fetchall()[0]  # an aggregate: one row
        return lo, hi, int(n)

    def bucket_sums(
        self, conn: Connection, sel: KeySelection, width: int
    ) -> dict[int, tuple[int, int, int]]:
        live, params = self._live()
        within, rparams = self._within(sel)
        h = sql.Identifier(ROW_HASH)
        query = (
            sql.SQL(
                "SELECT ({} - %s::bigint) / %s::bigint AS b, count(*), count({}), sum({}) FROM {} WHERE "
            ).format(self.key, h, h, self.ident)
            + live
            + sql.SQL(" AND ")
            + within
            + sql.SQL(" GROUP BY 1")
        )
        with self._cursor(conn) as cur:
            cur.execute(query, [sel.origin, width, *params, *rparams], prepare=False)
            return {int(b): (int(n), int(nh), int(s or 0)) for b, n, nh, s in cur.fetchall()}

    def key_hashes(self, conn: Connection, sel: KeySelection) -> dict[int, int | None]:
        live, params = self._live()
        within, rparams = self._within(sel)
        query = (
            sql.SQL("SELECT {}, {} FROM {} WHERE ").format(
                self.key, sql.Identifier(ROW_HASH), self.ident
            )
            + live
            + sql.SQL(" AND ")
            + within
        )
        with self._cursor(conn) as cur:
            cur.execute(query, [*params, *rparams], prepare=False)  # a custom plan: hashed IN
            return {int(k): (None if h is None else int(h)) for k, h in cur.fetchall()}

    def delete(self, conn: Connection, keys: Sequence[int], mode: str) -> int:
        """Soft-delete (or close the current version of), or delete, the live rows of ``keys``."""
        if not keys:
            return 0
        live, params = self._live()
        key_match = sql.SQL(" AND {} = ANY(%s)").format(self.key)
        if mode == "hard":
            # every version of a history table goes: a hard delete is an erasure
            query = sql.SQL("DELETE FROM {} WHERE _etl_source = %s").format(self.ident) + key_match
            args: list[Any] = [self.source_name, list(keys)]
            with self._cursor(conn) as cur:
                cur.execute(query, args)
                return len(keys) if self.history else int(cur.rowcount)
        if self.history:
            query = (
                sql.SQL("UPDATE {} SET {} = now(), {} = now() WHERE ").format(
                    self.ident, sql.Identifier(VALID_TO), sql.Identifier(DELETED_AT)
                )
                + live
                + key_match
            )
            args = [*params, list(keys)]
        else:
            query = (
                sql.SQL("UPDATE {} SET {} = now() WHERE ").format(
                    self.ident, sql.Identifier(DELETED_AT)
                )
                + live
                + key_match
            )
            args = [*params, list(keys)]
        with self._cursor(conn) as cur:
            cur.execute(query, args)
            return int(cur.rowcount)

    def delete_where(self, conn: Connection, condition: sql.Composable, mode: str) -> int:
        """Like :meth:`delete`, for the live rows (alias ``t``) meeting ``condition``; the
        number of keys affected."""
        live, params = self._live()
        if mode == "hard":
            query = sql.SQL("DELETE FROM {} AS t WHERE _etl_source = %s AND ").format(self.ident)
            args: list[Any] = [self.source_name]
        elif self.history:
            query = sql.SQL("UPDATE {} AS t SET {} = now(), {} = now() WHERE ").format(
                self.ident, sql.Identifier(VALID_TO), sql.Identifier(DELETED_AT)
            )
            query += live + sql.SQL(" AND ")
            args = list(params)
        else:
            query = sql.SQL("UPDATE {} AS t SET {} = now() WHERE ").format(
                self.ident, sql.Identifier(DELETED_AT)
            )
            query += live + sql.SQL(" AND ")
            args = list(params)
        query += condition + sql.SQL(" RETURNING {}").format(self.key_list)
        with self._cursor(conn) as cur:
            cur.execute(query, args)
            return len({tuple(r) for r in cur.fetchall()})


__all__ = ["TargetChecksums"]
