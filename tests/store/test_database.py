"""The shared engines' liveness: a pooled connection is pinged at checkout only when it has
been idle, and one that died while idle is replaced without the caller seeing it; a forked
child never uses (nor closes) its parent's pooled connections."""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection

import pytest
import sqlalchemy as sa

from etl_express.store import database
from etl_express.store.database import engine_for
from tests.conftest import pg_exec


def _pid(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def test_a_recently_used_connection_is_not_pinged(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engine_for(pg_url, pool_size=1)
    pings: list[object] = []
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(c) or True)
    first = _pid(engine)
    assert [_pid(engine) for _ in range(5)] == [first] * 5
    assert pings == []
    monkeypatch.setattr(database, "IDLE_PING_S", -1.0)  # every checked-in one counts as idle
    assert _pid(engine) == first
    assert len(pings) == 1


def test_a_connection_that_died_while_idle_is_replaced(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engine_for(pg_url, pool_size=1, max_overflow=0)
    before = _pid(engine)
    pg_exec(pg_url, "SELECT pg_terminate_backend(%s)", (before,))
    monkeypatch.setattr(database, "IDLE_PING_S", -1.0)
    after = _pid(engine)  # the ping fails, the pool connects again: no error reaches here
    assert after != before
    assert pg_exec(pg_url, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (before,)) == [
        (0,)
    ]


def _backend_in_child(engine: sa.Engine, out: Connection) -> None:
    out.send(_pid(engine))  # the engine object a store keeps, inherited through fork


def test_a_forked_child_opens_its_own_connections_and_leaves_the_parents_alone(
    pg_url: str,
) -> None:
    engine = engine_for(pg_url, pool_size=1, max_overflow=0)
    parent_backend = _pid(engine)  # its connection pooled (checked in) when the child forks
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=_backend_in_child, args=(engine, writer))
    child.start()
    child_backend = reader.recv()
    child.join(30)
    assert child.exitcode == 0
    assert child_backend != parent_backend  # a connection of its own, not the parent's socket
    assert _pid(engine) == parent_backend  # the parent's pooled session outlived the child
