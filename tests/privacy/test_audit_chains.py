"""The error a failed run raises carries no raw exception behind it.

``raise SourceError(...) from None`` only hides the driver's error from ``traceback``'s
printout: it stays on ``__context__``, with its raw text (a quoted value, a ``DETAIL`` line),
for anything that walks the chain (error trackers, ``exc.__context__`` in a notebook, a
handler formatting the chain its own way). Whatever failed — a query PostgreSQL refuses
quoting the value, a user's transformer whose message holds one, a target that refuses a
row — what leaves ``run()`` has only etl-express errors on its chain, and no canary in any."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

import etl_express as etl
from etl_express import Transformer
from etl_express.errors import ETLError
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource

from ..conftest import pg_exec
from .canaries import PeopleSource

PHONE = "79164321788"
EMAIL = "leak.canary.7f3a@example.org"


class Failing(Transformer):
    """A user's step that fails on a record, saying which (as user code does)."""

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        raise ValueError(f"cannot parse the contact {batch.column('contact')[0].as_py()}")


def _query(url: str, schema: str, name: str) -> etl.Pipeline:
    return etl.Pipeline(
        name,
        SQLSource(
            url, query=f"SELECT id, phone::integer AS phone FROM {schema}.src", primary_key="id"
        ),
        sink=PostgresSink(f"{schema}.target", url=url),
        not_pii={"phone": "a test of the error path"},
        progress=False,
    )


def _user_step(url: str, schema: str, name: str) -> etl.Pipeline:
    rows: list[dict[str, Any]] = [{"id": 1, "contact": EMAIL}]
    return etl.Pipeline(
        name,
        PeopleSource(rows, schema=pa.schema([("id", pa.int64()), ("contact", pa.string())])),
        transformers=[Failing()],
        sink=PostgresSink(f"{schema}.target", url=url),
        not_pii={"contact": "a test of the error path"},
        progress=False,
    )


def _target(url: str, schema: str, name: str) -> etl.Pipeline:
    """The target refuses the row (a trigger quoting it); no error budget: the run fails."""
    pg_exec(url, f"CREATE TABLE {schema}.target (id bigint PRIMARY KEY, contact text)")
    pg_exec(
        url,
        f"CREATE FUNCTION {schema}.refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION "
        "USING ERRCODE = 'check_violation', MESSAGE = 'refused: ' || NEW.contact; END $$ "
        "LANGUAGE plpgsql",
    )
    pg_exec(
        url,
        f"CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON {schema}.target "
        f"FOR EACH ROW EXECUTE FUNCTION {schema}.refuse()",
    )
    rows: list[dict[str, Any]] = [{"id": 1, "contact": EMAIL}]
    return etl.Pipeline(
        name,
        PeopleSource(rows, schema=pa.schema([("id", pa.int64()), ("contact", pa.string())])),
        sink=PostgresSink(f"{schema}.target", url=url),
        not_pii={"contact": "a test of the error path"},
        max_error_rate=0.0,
        progress=False,
    )


FAILURES: dict[str, Callable[[str, str, str], etl.Pipeline]] = {
    "query-out-of-range": _query,
    "user-transformer": _user_step,
    "target-refuses": _target,
}


def _chain(exc: BaseException) -> list[BaseException]:
    out, seen, todo = [], set(), [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        out.append(e)
        todo += [n for n in (e.__cause__, e.__context__) if n is not None]
    return out


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failed_runs_error_has_no_raw_exception_behind_it(
    pg_url: str, schema: str, pipeline_name: str, failure: str
) -> None:
    pg_exec(pg_url, f"CREATE TABLE {schema}.src (id int PRIMARY KEY, phone text)")
    pg_exec(pg_url, f"INSERT INTO {schema}.src VALUES (1, %s)", [PHONE])
    pipeline = FAILURES[failure](pg_url, schema, pipeline_name)
    with pytest.raises(ETLError) as failed:
        pipeline.run()
    error = failed.value
    chain = _chain(error)
    assert all(isinstance(e, ETLError) for e in chain), [type(e).__name__ for e in chain]
    text = "".join(traceback.format_exception(error)) + "\n".join(map(str, chain))
    assert PHONE not in text and EMAIL not in text and "leak.canary" not in text, text
