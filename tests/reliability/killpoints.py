"""A pipeline run in a child process that kills itself (SIGKILL) at a chosen moment.

usage: python -m tests.reliability.killpoints URL SCHEMA PIPELINE KILL_AT [history]

KILL_AT: ``batch:N`` (after the N-th batch's COPY, before its commit), ``commit:N`` (right
after the N-th batch committed), ``finish_load`` (key build done, not committed),
``checks`` (inside the end-of-run checks), ``history:N`` (inside the N-th history write).
"""

from __future__ import annotations

import json
import os
import signal
import sys

import etl_express as etl
from etl_express._engine import batches as engine_batches
from etl_express._engine import checks as engine_checks
from etl_express.sinks import postgres as pg_sink
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources.sql import SQLSource


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    url, schema, name, kill_at = sys.argv[1:5]
    history = len(sys.argv) > 5 and sys.argv[5] == "history"
    what, _, n = kill_at.partition(":")
    count = {"writes": 0, "commits": 0}

    if what in ("batch", "history"):
        write = PostgresSink.write

        def killing_write(self, conn, batch, primary_key):  # type: ignore[no-untyped-def]
            written = write(self, conn, batch, primary_key)
            count["writes"] += 1
            if count["writes"] == int(n):
                die()
            return written

        PostgresSink.write = killing_write  # type: ignore[method-assign]
    elif what == "commit":
        cls = engine_batches.PartitionRunner
        commit = cls._commit

        def killing_commit(self, item):  # type: ignore[no-untyped-def]
            commit(self, item)
            count["commits"] += 1
            if count["commits"] == int(n):
                die()

        cls._commit = killing_commit  # type: ignore[method-assign]
    elif what == "finish_load":
        finish = PostgresSink.finish_load

        def killing_finish(self, conn, primary_key):  # type: ignore[no-untyped-def]
            finish(self, conn, primary_key)
            die()

        PostgresSink.finish_load = killing_finish  # type: ignore[method-assign]
    elif what == "key_build":
        build = pg_sink.add_primary_key

        def killing_build(cur, *args, **kwargs):  # type: ignore[no-untyped-def]
            build(cur, *args, **kwargs)
            die()

        pg_sink.add_primary_key = killing_build
    elif what == "checks":
        table_checks = engine_checks.table_checks

        def killing_checks(*args, **kwargs):  # type: ignore[no-untyped-def]
            table_checks(*args, **kwargs)
            die()

        import etl_express._engine.run as engine_run

        engine_run.table_checks = killing_checks  # type: ignore[assignment]

    # EO_SOURCE (JSON): another source than {schema}.src by id (url, table, key, cursor)
    spec = json.loads(os.environ.get("EO_SOURCE") or "{}")
    etl.Pipeline(
        name,
        SQLSource(
            spec.get("url", url),
            table=spec.get("table", f"{schema}.src"),
            primary_key=spec.get("primary_key", "id"),
            cursor=spec.get("cursor"),
            batch_size=100,
        ),
        sink=PostgresSink(f"{schema}.target", history=history),
        detect_pii="off",
        progress=False,
    ).run()


if __name__ == "__main__":
    main()
