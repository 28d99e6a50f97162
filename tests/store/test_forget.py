"""Each state table's owner module can forget a pipeline: ``forget(conn, pipeline)`` deletes
that pipeline's rows of the tables it owns, returns how many, and leaves other pipelines'
rows alone (``etl-express forget`` calls them all in one transaction)."""

from __future__ import annotations

import datetime as dt
import uuid

from etl_express.quality import judge
from etl_express.store import (
    checkpoints,
    checks,
    declarations,
    ledger,
    quarantine,
    reconciliation,
    runlog,
    schema,
)
from etl_express.store.checkpoints import CheckpointStore
from etl_express.store.ledger import RunLedger
from tests.conftest import pg_exec

#: the owner modules, each with forget(conn, pipeline) -> rows removed
OWNERS = (checkpoints, checks, declarations, ledger, quarantine, reconciliation, runlog)


def _remember(store: CheckpointStore, pipeline: str) -> None:
    """One row of every state table for ``pipeline``, written by its owner."""
    run_id = str(uuid.uuid4())
    RunLedger(store).start(run_id, pipeline, "")
    store.save_partition_plan(pipeline, 2, [{"lo": 0}, {"lo": 5}])
    with store.transaction() as conn:
        store.save_checkpoint(conn, pipeline, "", {"id": 1}, run_id)
        quarantine.add(conn, run_id, pipeline, "", [({"id": 1}, "bad", {"id": 1})])
        ledger.record_batch(conn, run_id, 2, 1, 1)
        declarations.declare(
            conn, pipeline, freshness_s=60.0, pii=["email"], position_pii=False, target="a.b"
        )
        declarations.record_columns(conn, pipeline, "a.b", {"id": "bigint"}, run_id)
        reconciliation.save(
            conn, pipeline, "", run_id, None, [], {"deletes_applied": 0}, schema.now()
        )
        raw: runlog.RawLine = (
            schema.now(),
            "INFO",
            {"pipeline": pipeline, "run_id": run_id},
            "hi",
            None,
            None,
            None,
            None,
        )
        runlog.insert(conn, [runlog.line_row(raw)])
    # a row-hash key an earlier version kept (reconciliation.forget removes it too)
    pg_exec(
        store.url,
        "INSERT INTO etl_express.row_hash_keys (pipeline, key, created_at) VALUES (%s, 'k', now())",
        (pipeline,),
    )
    checks.record(store, run_id, pipeline, "", [judge("reconciliation", True, "fail")])
    RunLedger(store).finish(run_id, "succeeded")


def _rows(store: CheckpointStore, pipeline: str) -> dict[str, int]:
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        return {
            t.name: conn.execute(
                sa.select(sa.func.count()).select_from(t).where(t.c.pipeline == pipeline)
            ).scalar_one()
            for t in schema.metadata.tables.values()
            if "pipeline" in t.c
        }


def test_each_owner_forgets_one_pipeline_and_only_it(pg_url: str) -> None:
    store = CheckpointStore(pg_url)
    store.ensure_schema()
    gone, kept = f"forget_{uuid.uuid4().hex[:8]}", f"keep_{uuid.uuid4().hex[:8]}"
    for name in (gone, kept):
        _remember(store, name)
    before = _rows(store, gone)
    assert set(before.values()) == {1}, before  # every table that names a pipeline has its row
    with store.transaction() as conn:
        removed = {owner.__name__.rpartition(".")[2]: owner.forget(conn, gone) for owner in OWNERS}
    assert removed == {
        "checkpoints": 2,  # its checkpoint and its partition plan
        "checks": 1,
        "declarations": 2,  # its declaration and its recorded columns
        "ledger": 1,
        "quarantine": 1,
        "reconciliation": 2,  # its reconciliation state and its row-hash key
        "runlog": 1,
    }
    assert set(_rows(store, gone).values()) == {0}
    assert _rows(store, kept) == before
    with store.transaction() as conn:  # forgetting again finds nothing
        assert [owner.forget(conn, gone) for owner in OWNERS] == [0] * len(OWNERS)


def test_reset_forgets_the_reconciliation_of_one_partition(pg_url: str) -> None:
    store = CheckpointStore(pg_url)
    store.ensure_schema()
    name = f"reset_{uuid.uuid4().hex[:8]}"
    started = schema.now() - dt.timedelta(minutes=1)
    with store.transaction() as conn:
        for partition in ("a", "b"):
            reconciliation.save(conn, name, partition, "r", None, [], {}, started, finished=True)
    with store.transaction() as conn:
        assert reconciliation.reset(conn, name, "a") == 1
    assert reconciliation.load(store, name, "a") is None
    assert reconciliation.load(store, name, "b") is not None
