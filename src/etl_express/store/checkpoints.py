"""The store handle and the resume state: ``checkpoints`` (pipeline, partition -> the
source position after the last committed batch) and ``partition_plans`` (the partition
specs a parallel run works through, so a restart resumes the same partitions).

:class:`CheckpointStore` is what the engine holds for one state database: its engine, the
schema set-up and transactions. The other state tables have owner modules of their own
(see :mod:`.schema`) that take this store or a connection of it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Connection, Engine

from ..retry import RetryPolicy, as_etl_error
from ..secrets import SecretLike
from .database import SCHEMA, engine_for, mask_url, no_store, resolve_url, unreachable_as_error
from .schema import checkpoints, create_or_migrate, has_store, is_current, now, partition_plans


class CheckpointStore:
    """Pipeline state in one PostgreSQL database; reads and writes the checkpoints.

    Writes that belong to a batch take the caller's connection, so they commit in the
    batch's transaction.
    """

    def __init__(self, url: str):
        self.url = url
        self.engine: Engine = engine_for(url)
        self._ready = False

    def ensure_schema(self) -> None:
        """Create or migrate the state tables (idempotent, safe under concurrency).

        The first contact with the state database: a wrong URL, role, password or database
        fails here at once with the fix; a transient error is retried a few times.
        """
        if self._ready:
            return
        try:
            RetryPolicy(attempts=3, backoff=0.5).call(self._create_schema)
        except Exception as exc:
            raise as_etl_error(
                exc,
                what="the state database cannot be used",
                where={"database": mask_url(self.url)},
            ) from None
        self._ready = True

    def _create_schema(self) -> None:
        with self.engine.connect() as conn:
            if is_current(conn):  # the usual case: asked in two reads, no lock taken
                return
        with self.engine.begin() as conn:
            create_or_migrate(conn)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection outside any transaction (autocommit), for reads that need no
        transaction of their own: each statement one round trip, no BEGIN and COMMIT (under
        READ COMMITTED a transaction's statements see the data as of each statement
        anyway)."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn

    # -- checkpoints -------------------------------------------------------------------

    def checkpoint(self, pipeline: str, partition: str) -> Any:
        """The committed position of a pipeline's partition (``None``: none yet)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(checkpoints.c.position).where(
                    checkpoints.c.pipeline == pipeline, checkpoints.c.partition == partition
                )
            ).first()
        return None if row is None else row[0]

    def save_checkpoint(
        self, conn: Connection, pipeline: str, partition: str, position: Any, run_id: str
    ) -> None:
        conn.execute(
            _UPSERT,
            {**Checkpoint(pipeline, partition, position).params(), "run_id": run_id, "t": now()},
        )

    def reset(self, pipeline: str, partition: str | None = None) -> int:
        """Forget checkpoints so the next run starts from the beginning."""
        with self.engine.begin() as conn:
            q = sa.delete(checkpoints).where(checkpoints.c.pipeline == pipeline)
            if partition is not None:
                q = q.where(checkpoints.c.partition == partition)
            return conn.execute(q).rowcount

    # -- partition plans -----------------------------------------------------------------

    def partition_plan(self, pipeline: str, n: int) -> list[dict[str, Any]] | None:
        """The stored plan of ``n`` partitions (``None``: none stored)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(partition_plans.c.specs).where(
                    partition_plans.c.pipeline == pipeline, partition_plans.c.n == n
                )
            ).first()
        return None if row is None else list(row[0])

    def save_partition_plan(self, pipeline: str, n: int, specs: Sequence[dict[str, Any]]) -> None:
        stmt = insert(partition_plans).values(
            pipeline=pipeline, n=n, specs=list(specs), created_at=now()
        )
        with self.engine.begin() as conn:
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[partition_plans.c.pipeline, partition_plans.c.n],
                    set_={"specs": stmt.excluded.specs, "created_at": stmt.excluded.created_at},
                )
            )


#: the statement saving a partition's checkpoint, with parameters ``:pipeline``,
#: ``:partition``, ``:position`` (jsonb), ``:run_id`` and ``:t``; a batch's commit sends it
#: along with the run's counters (:func:`etl_express.store.ledger.record_batch`)
checkpoint_upsert_sql = f"""
INSERT INTO {SCHEMA}.checkpoints (pipeline, partition, position, run_id, updated_at)
VALUES (:pipeline, :partition, :position, :run_id, :t)
ON CONFLICT (pipeline, partition) DO UPDATE
SET position = excluded.position, run_id = excluded.run_id, updated_at = excluded.updated_at
"""

_UPSERT = sa.text(checkpoint_upsert_sql).bindparams(sa.bindparam("position", type_=JSONB))


@dataclass(frozen=True)
class Checkpoint:
    """A partition's position to save (in a batch's transaction)."""

    pipeline: str
    partition: str
    position: Any

    def params(self) -> dict[str, Any]:
        """The parameters of :data:`checkpoint_upsert_sql` but ``run_id`` and ``t``."""
        return {"pipeline": self.pipeline, "partition": self.partition, "position": self.position}


def open_store(url: SecretLike | None = None, *, create: bool = True) -> CheckpointStore:
    """The store at ``url`` (a URL or an ``etl.secret`` reference; ``None``:
    ``ETL_EXPRESS_DATABASE_URL``, else the embedded server).

    With ``create`` its state tables are created or migrated (a run, the CLI's commands);
    without, it is only checked to hold an etl-express store and nothing is created (status
    and the dashboard): :class:`ETLConfigError` naming the database when it holds none.
    """
    store = CheckpointStore(resolve_url(url))
    if create:
        store.ensure_schema()
        return store
    with unreachable_as_error(store.url):
        found = has_store(store.engine)
    if not found:
        raise no_store(store.url)
    return store


@contextmanager
def read_only(engine: Engine) -> Iterator[Connection]:
    """A connection to a store in a read-only transaction (status and the dashboard never
    write); an unreachable store is an :class:`ETLError` naming it."""
    with unreachable_as_error(engine.url), engine.connect() as conn:
        conn.execute(sa.text("SET TRANSACTION READ ONLY"))
        yield conn


def forget(conn: Connection, pipeline: str) -> int:
    """Delete every checkpoint and partition plan of ``pipeline``; the rows removed."""
    removed = conn.execute(sa.delete(checkpoints).where(checkpoints.c.pipeline == pipeline))
    plans = conn.execute(sa.delete(partition_plans).where(partition_plans.c.pipeline == pipeline))
    return removed.rowcount + plans.rowcount


__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "checkpoint_upsert_sql",
    "forget",
    "open_store",
    "read_only",
    "unreachable_as_error",
]
