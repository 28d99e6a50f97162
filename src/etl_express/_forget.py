"""``etl.forget``: remove a pipeline from the store — a failed experiment, a renamed
pipeline — so that ``etl-express status`` no longer judges it.

Every state table's owner module (:mod:`etl_express.store`) deletes the pipeline's rows of its
tables; :func:`forget` calls them all in one transaction, with the target table dropped in the
same transaction when asked, and says how many rows each removed. Which pipelines the store
knows (:func:`known_pipelines`) is answered here too, for every command that names one.
"""

from __future__ import annotations

import datetime as dt
import difflib
from typing import Any

from .errors import ETLConfigError, RunLockedError
from .secrets import SecretLike

#: a ``running`` run whose heartbeat is younger than this is taken to be alive
LIVE_HEARTBEAT_S = 120.0


def known_pipelines(conn: Any) -> list[str]:
    """Every pipeline the store has a trace of (runs, checkpoints, quarantine, declarations),
    the most recently run first."""
    import sqlalchemy as sa

    from .store import schema

    tables = (schema.runs, schema.checkpoints, schema.quarantine, schema.pipelines)
    names = sa.union(*(sa.select(t.c.pipeline.label("pipeline")) for t in tables)).subquery()
    last = (
        sa.select(schema.runs.c.pipeline, sa.func.max(schema.runs.c.started_at).label("at"))
        .group_by(schema.runs.c.pipeline)
        .subquery()
    )
    query = (
        sa.select(names.c.pipeline)
        .outerjoin(last, last.c.pipeline == names.c.pipeline)
        .order_by(last.c.at.desc().nulls_last(), names.c.pipeline)
    )
    return [row[0] for row in conn.execute(query)]


def unknown_pipeline(name: str, known: list[str], where: str) -> ETLConfigError:
    """The error for a pipeline name the store at ``where`` has never seen."""
    listed = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "") if known else "none yet"
    close = difflib.get_close_matches(name, known, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    return ETLConfigError(
        f"unknown pipeline {name!r} in the store at {where}",
        hint=f"{guess}known pipelines, most recently run first: {listed}. A pipeline appears "
        "there once it has run; check the name, or pass --url for another store",
    )


def _targets(conn: Any, name: str) -> tuple[list[str], dict[str, list[str]]]:
    """The pipeline's target tables (its declaration, else the tables whose columns were
    recorded for it) and, for each, the other pipelines that declare it too."""
    import sqlalchemy as sa

    from .store.schema import pipelines, table_schemas

    declared = conn.execute(
        sa.select(pipelines.c.target).where(pipelines.c.pipeline == name)
    ).scalar()
    targets = (
        [declared]
        if declared
        else sorted(
            {
                row[0]
                for row in conn.execute(
                    sa.select(table_schemas.c.target).where(table_schemas.c.pipeline == name)
                )
            }
        )
    )
    shared = {
        target: [
            row[0]
            for row in conn.execute(
                sa.select(pipelines.c.pipeline).where(
                    pipelines.c.target == target, pipelines.c.pipeline != name
                )
            )
        ]
        for target in targets
    }
    return targets, shared


def _live_runs(conn: Any, name: str) -> list[tuple[str, str]]:
    """The pipeline's runs that are still at work: (run id, owner)."""
    import sqlalchemy as sa

    from .store._leases import owner_is_dead
    from .store.schema import now, runs

    fresh = now() - dt.timedelta(seconds=LIVE_HEARTBEAT_S)
    rows = conn.execute(
        sa.select(runs.c.run_id, runs.c.owner).where(
            runs.c.pipeline == name, runs.c.status == "running", runs.c.heartbeat_at >= fresh
        )
    ).all()
    return [(r.run_id, r.owner) for r in rows if not owner_is_dead(r.owner)]


def forget(
    name: str, url: SecretLike | None = None, drop_table: bool = False, *, dry_run: bool = False
) -> dict[str, Any]:
    """Remove pipeline ``name`` from the store: its declaration, checkpoints and partition
    plans, runs, quality-check results, quarantined records, log lines and reconciliation
    state — and, with ``drop_table=True``, its target table. One transaction: all of it or
    nothing. ``dry_run=True`` counts what would go and removes nothing.

    ``url`` is the store (default: ``ETL_EXPRESS_DATABASE_URL``, else the embedded server).
    Returns what was removed, JSON-like::

        {"pipeline": "crm_try3", "removed": {"runs": 4, "checkpoints": 1, ...},
         "rows": 37, "table": "sandbox.crm", "table_dropped": True, "dry_run": False}

    Refused (nothing removed) when the store never saw ``name`` (the error lists the names
    it knows), when a run of it is still at work, and when ``drop_table`` would drop a table
    another pipeline also writes. Log files on disk are left to their retention.
    """
    import sqlalchemy as sa

    from .sinks.postgres import split_table
    from .store import (
        checkpoints,
        checks,
        declarations,
        ledger,
        quarantine,
        reconciliation,
        runlog,
        tables,
    )
    from .store.checkpoints import open_store
    from .store.database import mask_url

    store = open_store(url)
    owners = {
        "runs": ledger,
        "checkpoints": checkpoints,
        "quality_checks": checks,
        "quarantine": quarantine,
        "logs": runlog,
        "declarations": declarations,
        "reconciliation": reconciliation,
    }
    with store.engine.connect() as conn, conn.begin() as transaction:
        known = known_pipelines(conn)
        if name not in known:
            raise unknown_pipeline(name, known, mask_url(store.url))
        live = _live_runs(conn, name)
        if live:
            run_id, owner = live[0]
            raise RunLockedError(
                f"pipeline {name!r} is being run by {owner} (run {run_id})",
                hint="wait for the run to finish (or stop it), then forget the pipeline",
            )
        targets, shared = _targets(conn, name)
        if drop_table:
            for target, others in shared.items():
                if others:
                    raise ETLConfigError(
                        f"table {target} is also the target of pipeline(s) {', '.join(others)}; "
                        f"dropping it would remove their data too",
                        hint=f"forget {name!r} without dropping the table, and drop it "
                        "yourself once no pipeline writes it",
                    )
        removed = {what: owner.forget(conn, name) for what, owner in owners.items()}
        dropped = False
        if drop_table:
            quote = conn.dialect.identifier_preparer.quote
            for target in targets:
                table = tables.TableName(*split_table(target))
                if tables.exists(conn, table):
                    conn.execute(sa.text(f"DROP TABLE {'.'.join(quote(part) for part in table)}"))
                    dropped = True
        if dry_run:
            transaction.rollback()
    return {
        "pipeline": name,
        "removed": removed,
        "rows": sum(removed.values()),
        "table": ", ".join(targets) or None,
        "table_dropped": dropped,
        "dry_run": dry_run,
    }


__all__ = ["forget", "known_pipelines", "unknown_pipeline"]
