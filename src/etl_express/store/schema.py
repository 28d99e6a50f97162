"""Every state table of the ``etl_express`` schema, declared once, and its migrations.

Each table has one owner module under ``store/`` that writes it (reads are free):

=====================================  ==========================================
table                                  owner (the only module that writes it)
=====================================  ==========================================
``runs``                               :mod:`.ledger` (start, batches, heartbeat,
                                       lease and takeover, finish, abandon)
``checkpoints``, ``partition_plans``   :mod:`.checkpoints`
``quarantine``                         :mod:`.quarantine`
``quality_checks``                     :mod:`.checks`
``logs``                               :mod:`.runlog`
``pipelines``, ``table_schemas``       :mod:`.declarations`
``reconcile_state``, ``row_hash_keys`` :mod:`.reconciliation`
``meta``                               this module (the schema version)
=====================================  ==========================================

``tests/store/test_owners.py`` fails when SQL elsewhere in the package writes one of them.
The tables are created on first use (:func:`create_or_migrate`) and migrated in place
(``MIGRATIONS``) when an older version of the library created them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Connection

# defined beside the light connection that checks a store's version without SQLAlchemy
from .database import SCHEMA, SCHEMA_VERSION, psycopg_connection, store_version

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
    sa.Index("ix_runs_started", "started_at"),  # the newest runs of every pipeline
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
    # a run's lines (by its id or the first characters of it) and a pipeline's, in order
    sa.Index("ix_logs_run", "run_id", "id", postgresql_ops={"run_id": "varchar_pattern_ops"}),
    sa.Index("ix_logs_pipeline", "pipeline", "id"),
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
# and the dashboard can judge it without the pipeline's code
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

# the target table's columns after a run, one row each time they change
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

# per pipeline and partition, the delete reconciliation's ranges still to compare and its
# counts so far, written with each step's deletes (a killed reconciliation resumes)
reconcile_state = sa.Table(
    "reconcile_state",
    metadata,
    sa.Column("pipeline", sa.Text, primary_key=True),
    sa.Column("partition", sa.Text, primary_key=True, server_default=""),
    sa.Column("run_id", sa.String(36)),
    sa.Column("plan", JSONB),  # origin, root width; None when finished
    sa.Column("pending", JSONB, nullable=False),
    sa.Column("counts", JSONB, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)

# each pipeline's row-hash key for delete reconciliation (32 random bytes, hex)
row_hash_keys = sa.Table(
    "row_hash_keys",
    metadata,
    sa.Column("pipeline", sa.Text, primary_key=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


#: (version reached, statements): applied in order to a store at an older version (the
#: last one reaches ``SCHEMA_VERSION``, set in :mod:`.database` where the reading commands
#: check it). A new table needs no entry (``create_all`` adds every missing table:
#: ``reconcile_state`` and ``row_hash_keys`` joined this metadata that way); a new column or
#: index does.
MIGRATIONS: list[tuple[int, list[str]]] = [
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
    (
        3,
        [
            f"CREATE INDEX IF NOT EXISTS ix_runs_started ON {SCHEMA}.runs (started_at)",
            f"CREATE INDEX IF NOT EXISTS ix_logs_run ON {SCHEMA}.logs (run_id varchar_pattern_ops, id)",
            f"CREATE INDEX IF NOT EXISTS ix_logs_pipeline ON {SCHEMA}.logs (pipeline, id)",
        ],
    ),
]


def create_or_migrate(conn: Connection) -> None:
    """Create the missing state tables and migrate older ones (idempotent; concurrent first
    runs of parallel workers wait on one advisory lock)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('etl_express.schema'))"))
    conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    metadata.create_all(conn, checkfirst=True)
    conn.execute(
        insert(meta)
        .values(key="schema_version", value=str(SCHEMA_VERSION))
        .on_conflict_do_nothing()
    )
    version = int(
        conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar_one()
    )
    if version < SCHEMA_VERSION:
        for reached, statements in MIGRATIONS:
            if version < reached:
                for statement in statements:
                    conn.execute(sa.text(statement))
        conn.execute(
            sa.update(meta).where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
        )


def is_current(conn: Connection) -> bool:
    """Whether ``conn``'s database holds the store at this version with every state table:
    nothing for :func:`create_or_migrate` to do. Two catalog reads instead of its dozen
    statements (a lock, one existence check per table, the version record) before every
    run's first batch."""
    from psycopg.rows import dict_row

    raw = psycopg_connection(conn)
    with raw.cursor(row_factory=dict_row) as cur:
        return store_version(cur, [t.name for t in metadata.sorted_tables]) == SCHEMA_VERSION


def set_meta(conn: Connection, key: str, value: str) -> None:
    """Record ``key = value`` in ``meta`` (a replication's last finish, see
    ``etl_express.replication``)."""
    conn.execute(
        insert(meta)
        .values(key=key, value=value)
        .on_conflict_do_update(index_elements=[meta.c.key], set_={"value": value})
    )


def has_store(conn: Connection | sa.Engine) -> bool:
    """The database holds an etl-express store (``etl_express.runs`` exists)."""
    return sa.inspect(conn).has_table(runs.name, schema=SCHEMA)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def partition_key(partition: dict[str, Any] | None) -> str:
    """The canonical text key of a partition spec (``""`` for the whole source): the
    ``partition`` column of every state table."""
    if not partition:
        return ""
    return json.dumps(partition, sort_keys=True, separators=(",", ":"), default=str)


__all__ = [
    "MIGRATIONS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "checkpoints",
    "create_or_migrate",
    "has_store",
    "is_current",
    "logs",
    "meta",
    "metadata",
    "now",
    "partition_key",
    "partition_plans",
    "pipelines",
    "quality_checks",
    "quarantine",
    "reconcile_state",
    "row_hash_keys",
    "runs",
    "set_meta",
    "table_schemas",
]
