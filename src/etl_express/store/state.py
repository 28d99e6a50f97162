"""Pipeline state in PostgreSQL, schema ``etl_express``.

``runs`` (one row a run and partition), ``checkpoints`` (pipeline, partition -> position),
``quarantine`` (rejected records, anonymized, with the reason), ``quality_checks`` (each
check's result per run), ``partition_plans`` (the partition specs a parallel run works
through, kept so a restart resumes the same partitions), ``logs`` (each run's log lines,
kept 30 days), ``pipelines`` (what each pipeline declared: freshness, personal-data columns)
and ``table_schemas`` (a target's columns each time they change). The tables are created on first use from the SQLAlchemy Core metadata below
and migrated in place (``_MIGRATIONS``) when an older version of the library created them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Connection, Engine

from ..errors import RunLockedError
from ..retry import RetryPolicy, as_etl_error
from .database import engine_for, mask_url

SCHEMA = "etl_express"
SCHEMA_VERSION = 2

metadata = sa.MetaData(schema=SCHEMA)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("pipeline", sa.Text, nullable=False),
    sa.Column("partition", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
    sa.Column("owner", sa.Text),
    sa.Column("rows_read", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_written", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_quarantined", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("batches", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("error", sa.Text),
    sa.Index("ix_runs_pipeline_partition", "pipeline", "partition", "started_at"),
)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("pipeline", sa.Text, primary_key=True),
    sa.Column("partition", sa.Text, primary_key=True, server_default=""),
    sa.Column("position", JSONB),
    sa.Column("run_id", sa.String(36)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("pipeline", sa.Text, nullable=False),
    sa.Column("partition", sa.Text, nullable=False, server_default=""),
    sa.Column("position", JSONB),
    sa.Column("reason", sa.Text, nullable=False),
    # where the record was rejected: "source", "convert" (to the common format) or "sink"
    sa.Column("stage", sa.String(16), nullable=False, server_default="sink"),
    sa.Column("record", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("replayed_at", sa.DateTime(timezone=True)),
    sa.Index("ix_quarantine_pipeline", "pipeline", "created_at"),
)

quality_checks = sa.Table(
    "quality_checks",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("pipeline", sa.Text, nullable=False),
    sa.Column("partition", sa.Text, nullable=False, server_default=""),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("policy", sa.String(16), nullable=False),
    sa.Column("details", JSONB),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_quality_checks_run", "run_id"),
    sa.Index("ix_quality_checks_history", "pipeline", "partition", "name", "created_at"),
)

logs = sa.Table(
    "logs",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("pipeline", sa.Text),
    sa.Column("run_id", sa.String(36)),
    sa.Column("partition", sa.Text),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("extra", JSONB),
    sa.Index("ix_logs_ts", "ts"),
)

partition_plans = sa.Table(
    "partition_plans",
    metadata,
    sa.Column("pipeline", sa.Text, primary_key=True),
    sa.Column("n", sa.Integer, primary_key=True),
    sa.Column("specs", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# what each pipeline declared (freshness, personal-data columns), so ``etl-express status``
# and the dashboard can judge it without the pipeline's code; written by _status.declare
pipelines = sa.Table(
    "pipelines",
    metadata,
    sa.Column("pipeline", sa.Text, primary_key=True),
    sa.Column("freshness_s", sa.Float),
    sa.Column("pii", JSONB, nullable=False, server_default="[]"),
    sa.Column("position_pii", sa.Boolean, nullable=False, server_default="true"),
    sa.Column("target", sa.Text),
    sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
)

# the target table's columns after a run, one row each time they change (_status.observe_run)
table_schemas = sa.Table(
    "table_schemas",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("pipeline", sa.Text, nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("columns", JSONB, nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_table_schemas_pipeline", "pipeline", "recorded_at"),
)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


# (version reached, statements): applied in order to databases at an older version
_MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        2,
        [
            f"ALTER TABLE {SCHEMA}.quarantine ADD COLUMN IF NOT EXISTS stage varchar(16) NOT NULL DEFAULT 'sink'",
            (
                f"CREATE INDEX IF NOT EXISTS ix_quality_checks_history ON {SCHEMA}.quality_checks "
                "(pipeline, partition, name, created_at)"
            ),
        ],
    ),
]


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def partition_key(partition: dict[str, Any] | None) -> str:
    """The canonical text key of a partition spec (``""`` for the whole source)."""
    if not partition:
        return ""
    return json.dumps(partition, sort_keys=True, separators=(",", ":"), default=str)


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_dead(owner: str | None) -> bool:
    """``True`` when ``owner`` (``host:pid``) is a process on this host that no longer runs.

    Owners on other hosts, and unparsable owners, are never declared dead here: their
    lease (heartbeat age) decides. A zombie (killed, not yet reaped) counts as dead.
    """
    if not owner or ":" not in owner:
        return False
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by another user
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


class CheckpointStore:
    """Reads and writes pipeline state in one PostgreSQL database.

    Writes that belong to a batch take the caller's connection, so they commit in the
    batch's transaction.
    """

    def __init__(self, url: str, *, lease_seconds: float = 120.0):
        self.url = url
        self.engine: Engine = engine_for(url)
        #: a ``running`` run whose heartbeat is older than this is considered dead
        self.lease_seconds = lease_seconds
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
        with self.engine.begin() as conn:
            # serialize concurrent first runs (parallel workers) on an advisory lock
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('etl_express.schema'))"))
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
            metadata.create_all(conn, checkfirst=True)
            conn.execute(
                insert(meta)
                .values(key="schema_version", value=str(SCHEMA_VERSION))
                .on_conflict_do_nothing()
            )
            version = int(
                conn.execute(
                    sa.select(meta.c.value).where(meta.c.key == "schema_version")
                ).scalar_one()
            )
            if version < SCHEMA_VERSION:
                for reached, statements in _MIGRATIONS:
                    if version < reached:
                        for statement in statements:
                            conn.execute(sa.text(statement))
                conn.execute(
                    sa.update(meta)
                    .where(meta.c.key == "schema_version")
                    .values(value=str(SCHEMA_VERSION))
                )

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # -- checkpoints -------------------------------------------------------------------

    def checkpoint(self, pipeline: str, partition: str) -> Any:
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
        stmt = insert(checkpoints).values(
            pipeline=pipeline,
            partition=partition,
            position=position,
            run_id=run_id,
            updated_at=now(),
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[checkpoints.c.pipeline, checkpoints.c.partition],
                set_={
                    "position": stmt.excluded.position,
                    "run_id": run_id,
                    "updated_at": stmt.excluded.updated_at,
                },
            )
        )

    def reset(self, pipeline: str, partition: str | None = None) -> int:
        """Forget checkpoints so the next run starts from the beginning."""
        with self.engine.begin() as conn:
            q = sa.delete(checkpoints).where(checkpoints.c.pipeline == pipeline)
            if partition is not None:
                q = q.where(checkpoints.c.partition == partition)
            return conn.execute(q).rowcount

    # -- runs and leases ---------------------------------------------------------------

    def start_run(self, run_id: str, pipeline: str, partition: str) -> None:
        """Register a run, taking the partition's lease.

        A ``running`` run of the same partition with a fresh heartbeat means another live
        process is at work: :class:`RunLockedError`. One with a stale heartbeat, or whose
        owner was a process on this host that is gone, belongs to a dead process: it is
        marked ``abandoned`` and this run takes over.
        """
        with self.engine.begin() as conn:
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                {"k": f"etl_express.run:{pipeline}:{partition}"},
            )
            stale_before = now() - dt.timedelta(seconds=self.lease_seconds)
            live = conn.execute(
                sa.select(runs.c.run_id, runs.c.owner, runs.c.heartbeat_at).where(
                    runs.c.pipeline == pipeline,
                    runs.c.partition == partition,
                    runs.c.status == "running",
                )
            ).all()
            for other in live:
                fresh = other.heartbeat_at is not None and other.heartbeat_at >= stale_before
                if fresh and not owner_is_dead(other.owner):
                    raise RunLockedError(
                        f"pipeline {pipeline!r} partition {partition or 'all'!r} is being run by "
                        f"{other.owner} (run {other.run_id})",
                        hint=f"wait for it to finish; a dead run's lease expires after "
                        f"{self.lease_seconds:.0f} s without heartbeat and is then taken over",
                    )
                conn.execute(
                    sa.update(runs)
                    .where(runs.c.run_id == other.run_id)
                    .values(
                        status="abandoned",
                        finished_at=now(),
                        error=f"taken over by run {run_id}: owner {other.owner} is gone "
                        f"(last heartbeat {other.heartbeat_at})",
                    )
                )
            t = now()
            conn.execute(
                sa.insert(runs).values(
                    run_id=run_id,
                    pipeline=pipeline,
                    partition=partition,
                    status="running",
                    started_at=t,
                    heartbeat_at=t,
                    owner=owner_id(),
                )
            )

    def record_batch(
        self, conn: Connection, run_id: str, read: int, written: int, quarantined: int
    ) -> None:
        """Count a batch in the run's row, in the batch's transaction.

        Raises :class:`RunLockedError` when the run is no longer ``running`` (another
        process took its lease over): the batch then rolls back instead of racing the new
        owner.
        """
        updated = conn.execute(
            sa.update(runs)
            .where(runs.c.run_id == run_id, runs.c.status == "running")
            .values(
                rows_read=runs.c.rows_read + read,
                rows_written=runs.c.rows_written + written,
                rows_quarantined=runs.c.rows_quarantined + quarantined,
                batches=runs.c.batches + 1,
                heartbeat_at=now(),
            )
        ).rowcount
        if updated != 1:
            raise RunLockedError(
                f"run {run_id} lost its lease: another process took the partition over",
                hint="make lease_seconds longer than the slowest batch, or stop running the "
                "same pipeline partition from two places",
            )

    def heartbeat(self, run_id: str) -> bool:
        """Refresh the run's lease; ``False`` when the run is no longer ``running``."""
        with self.engine.begin() as conn:
            return (
                conn.execute(
                    sa.update(runs)
                    .where(runs.c.run_id == run_id, runs.c.status == "running")
                    .values(heartbeat_at=now())
                ).rowcount
                == 1
            )

    def finish_run(self, run_id: str, status: str, error: str | None = None, **counts: int) -> None:
        """Close a run; ``counts`` (``rows_read=...``) overwrite its counters (parallel runs)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(runs)
                .where(runs.c.run_id == run_id)
                .values(status=status, finished_at=now(), heartbeat_at=now(), error=error, **counts)
            )

    def fail_owned_runs(self, pipeline: str, partition: str, owner: str, error: str) -> int:
        """Close the ``running`` rows of a partition that ``owner`` (``host:pid``) held."""
        with self.engine.begin() as conn:
            return conn.execute(
                sa.update(runs)
                .where(
                    runs.c.pipeline == pipeline,
                    runs.c.partition == partition,
                    runs.c.owner == owner,
                    runs.c.status == "running",
                )
                .values(status="failed", finished_at=now(), error=error)
            ).rowcount

    def run_outcomes(self, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Status and failed check names of the recorded runs among ``run_ids``."""
        if not run_ids:
            return []
        with self.engine.connect() as conn:
            stored = conn.execute(
                sa.select(runs.c.run_id, runs.c.partition, runs.c.status).where(
                    runs.c.run_id.in_(list(run_ids))
                )
            ).all()
            failed = conn.execute(
                sa.select(quality_checks.c.run_id, quality_checks.c.name).where(
                    quality_checks.c.run_id.in_(list(run_ids)),
                    quality_checks.c.status == "failed",
                )
            ).all()
        return [
            {
                "run_id": row.run_id,
                "partition": row.partition,
                "status": row.status,
                "failed_checks": [c.name for c in failed if c.run_id == row.run_id],
            }
            for row in stored
        ]

    def recent_runs(
        self, pipeline: str, partition: str, limit: int = 10, status: str = "succeeded"
    ) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(runs)
                    .where(
                        runs.c.pipeline == pipeline,
                        runs.c.partition == partition,
                        runs.c.status == status,
                    )
                    .order_by(runs.c.started_at.desc())
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [dict(r) for r in rows]

    # -- quarantine and checks ------------------------------------------------------------

    def add_quarantine(
        self,
        conn: Connection,
        run_id: str,
        pipeline: str,
        partition: str,
        items: Sequence[tuple[dict[str, Any], str, Any]],
        stage: str = "sink",
    ) -> None:
        """Store anonymized records: ``(record, reason, position)`` tuples."""
        if not items:
            return
        t = now()
        conn.execute(
            sa.insert(quarantine),
            [
                {
                    "run_id": run_id,
                    "pipeline": pipeline,
                    "partition": partition,
                    "record": record,
                    "reason": reason,
                    "position": position,
                    "created_at": t,
                    "stage": stage,
                }
                for record, reason, position in items
            ],
        )

    def quarantined(
        self,
        pipeline: str,
        *,
        run_id: str | None = None,
        ids: Sequence[int] | None = None,
        include_replayed: bool = False,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Quarantined records of ``pipeline``, oldest first."""
        q = sa.select(quarantine).where(quarantine.c.pipeline == pipeline).order_by(quarantine.c.id)
        if run_id is not None:
            q = q.where(quarantine.c.run_id == run_id)
        if ids is not None:
            q = q.where(quarantine.c.id.in_(list(ids)))
        if not include_replayed:
            q = q.where(quarantine.c.replayed_at.is_(None))
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings().all()]

    def mark_replayed(self, conn: Connection, ids: Sequence[int], run_id: str) -> None:
        if ids:
            conn.execute(
                sa.update(quarantine)
                .where(quarantine.c.id.in_(list(ids)))
                .values(
                    replayed_at=now(), reason=quarantine.c.reason + f" [replayed by run {run_id}]"
                )
            )

    def update_quarantine_reason(self, conn: Connection, item_id: int, reason: str) -> None:
        conn.execute(sa.update(quarantine).where(quarantine.c.id == item_id).values(reason=reason))

    # -- partition plans -----------------------------------------------------------------

    def partition_plan(self, pipeline: str, n: int) -> list[dict[str, Any]] | None:
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

    def recent_checks(
        self, pipeline: str, partition: str, name: str, limit: int = 10
    ) -> list[dict[str, Any]]:
        """Details of check ``name`` in the latest succeeded runs, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(quality_checks.c.details)
                .select_from(quality_checks.join(runs, runs.c.run_id == quality_checks.c.run_id))
                .where(
                    quality_checks.c.pipeline == pipeline,
                    quality_checks.c.partition == partition,
                    quality_checks.c.name == name,
                    runs.c.status == "succeeded",
                )
                .order_by(quality_checks.c.created_at.desc())
                .limit(limit)
            ).all()
        return [dict(r[0] or {}) for r in rows]

    def add_checks(self, run_id: str, pipeline: str, partition: str, checks: Sequence[Any]) -> None:
        if not checks:
            return
        t = now()
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(quality_checks),
                [
                    {
                        "run_id": run_id,
                        "pipeline": pipeline,
                        "partition": partition,
                        "name": c.name,
                        "status": c.status,
                        "policy": c.policy,
                        "details": c.details,
                        "created_at": t,
                    }
                    for c in checks
                ],
            )


__all__ = [
    "SCHEMA",
    "CheckpointStore",
    "checkpoints",
    "logs",
    "metadata",
    "owner_is_dead",
    "partition_key",
    "partition_plans",
    "pipelines",
    "quality_checks",
    "quarantine",
    "runs",
    "table_schemas",
]
