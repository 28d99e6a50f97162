"""The run's start takes the partition's lease, inserts the run's row and reads what the run
starts from in one pipelined round trip: a live owner found there still refuses the run and
leaves no row of it, a dead one's row is taken over, and the history read is the store's as
it was before this run."""

from __future__ import annotations

import uuid

import pytest

from etl_express.errors import RunLockedError
from etl_express.store.checkpoints import CheckpointStore
from etl_express.store.database import engine_for
from etl_express.store.ledger import RunLedger
from tests.conftest import pg_exec


@pytest.fixture
def ledger(pg_url: str) -> RunLedger:
    store = CheckpointStore(pg_url)
    store.ensure_schema()
    return RunLedger(store, lease_seconds=60)


def statuses(url: str, pipeline: str) -> dict[str, str]:
    rows = pg_exec(
        url, "SELECT run_id, status FROM etl_express.runs WHERE pipeline = %s", (pipeline,)
    )
    return dict(rows)


def test_a_live_owner_refuses_the_run_and_leaves_no_row_of_it(
    pg_url: str, ledger: RunLedger
) -> None:
    pipeline = "lease_" + uuid.uuid4().hex[:8]
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    ledger.start(first, pipeline, "")
    with pytest.raises(RunLockedError):
        ledger.start(second, pipeline, "")
    assert statuses(pg_url, pipeline) == {first: "running"}


def test_a_dead_owners_run_is_taken_over_and_the_history_is_the_one_before(
    pg_url: str, ledger: RunLedger
) -> None:
    pipeline = "lease_" + uuid.uuid4().hex[:8]
    done, dead, taker = (str(uuid.uuid4()) for _ in range(3))
    ledger.start(done, pipeline, "p")
    ledger.finish(done, "succeeded", rows_read=7)
    with engine_for(pg_url).begin() as conn:
        ledger.store.save_checkpoint(conn, pipeline, "p", {"key": [41]}, done)
    ledger.start(dead, pipeline, "p")
    pg_exec(  # its heartbeat is long gone, on another host
        pg_url,
        "UPDATE etl_express.runs SET heartbeat_at = now() - interval '1 hour', "
        "owner = 'elsewhere:1' WHERE run_id = %s",
        (dead,),
    )
    started = ledger.start(taker, pipeline, "p")
    assert statuses(pg_url, pipeline) == {done: "succeeded", dead: "abandoned", taker: "running"}
    assert started.position == {"key": [41]}
    assert started.rows_read == [7]  # the succeeded run's, not the abandoned one's or its own
    finished = pg_exec(
        pg_url, "SELECT finished_at FROM etl_express.runs WHERE run_id = %s", (done,)
    )[0][0]
    assert started.last_success_at == finished
