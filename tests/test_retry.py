"""Which errors are retried, and a serialization failure retried inside a run."""

# detect_pii="off" below: these tests load made-up people raw on purpose (not what they
# test); the personal-data detector has its own tests (tests/anonymizers/test_detection.py)

from __future__ import annotations

import httpx
import psycopg
import pytest

import etl_express as etl
from etl_express.retry import RetryPolicy, TransientError, is_transient
from etl_express.sinks.postgres import PostgresSink
from tests.conftest import pg_exec
from tests.reliability_sources import CUSTOMER_SCHEMA, ListSource, customers


def _http_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://127.0.0.1/api")
    return httpx.HTTPStatusError(
        "bad", request=request, response=httpx.Response(status, request=request)
    )


def _wrapped(inner: BaseException) -> etl.SinkError:
    try:
        try:
            raise inner
        except Exception:
            raise etl.SinkError("writing failed") from None  # how PostgresSink hides the value
    except etl.SinkError as exc:
        return exc


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.SerializationFailure("could not serialize access"),
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.OperationalError("connection failed: Connection refused"),
        OSError("[libpq] PQgetCopyData() failed: server closed the connection unexpectedly"),
        ConnectionResetError("reset by peer"),
        _http_error(503),
        _http_error(429),
        httpx.ReadTimeout("slow"),
        TransientError("try later"),
    ],
)
def test_transient(exc):
    assert is_transient(exc) and is_transient(_wrapped(exc))


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.errors.UniqueViolation("duplicate key value violates unique constraint"),
        psycopg.errors.InvalidTextRepresentation("invalid input syntax for type integer"),
        psycopg.errors.UndefinedTable("relation does not exist"),
        _http_error(404),
        ValueError("bad config"),
        FileNotFoundError("no such file"),
    ],
)
def test_not_transient(exc):
    assert not is_transient(exc) and not is_transient(_wrapped(exc))


def test_backoff_doubles_up_to_the_cap():
    policy = RetryPolicy(backoff=1, max_backoff=5, jitter=0)
    assert [policy.delay(i) for i in range(1, 6)] == [1, 2, 4, 5, 5]


class FlakySink(PostgresSink):
    """Fails its first write with a serialization failure, after writing (rolled back)."""

    failed = False

    def write(self, conn, batch, primary_key):
        written = super().write(conn, batch, primary_key)
        if not self.failed:
            self.failed = True
            raise psycopg.errors.SerializationFailure(
                "could not serialize access due to concurrent update"
            )
        return written


def test_a_serialization_failure_is_retried_without_duplicates(pg_url, schema, pipeline_name):
    source = ListSource(customers(500), batch_size=100, schema=CUSTOMER_SCHEMA)
    sink = FlakySink(f"{schema}.c", write_mode="append")  # append: a replayed batch would duplicate
    result = etl.Pipeline(
        pipeline_name, source, sink=sink, retry=RetryPolicy(backoff=0.01), detect_pii="off"
    ).run()

    assert result.ok and result.retries == 1 and result.rows_written == 500
    assert pg_exec(pg_url, f"SELECT count(*), count(DISTINCT id) FROM {schema}.c") == [(500, 500)]


def test_one_retry_policy_type_serves_runs_and_rest_sources():
    from etl_express.sources import rest

    assert rest.RetryPolicy is RetryPolicy
    former = RetryPolicy(max_attempts=3, backoff_base=1, backoff_max=5, jitter=False)
    assert former == RetryPolicy(attempts=2, backoff=1, max_backoff=5, jitter=0)
    assert former.max_attempts == 3 and former.delay(3) == 4
    assert RetryPolicy(jitter=True).jitter == 1.0


def test_a_wrong_retry_policy_field_is_a_clear_configuration_error():
    with pytest.raises(etl.ETLConfigError) as info:
        RetryPolicy(retries=3)
    assert "retries" in str(info.value) and "attempts=5" in str(info.value)
    with pytest.raises(etl.ETLConfigError, match="both max_attempts= and attempts="):
        RetryPolicy(max_attempts=3, attempts=2)
    with pytest.raises(etl.ETLConfigError, match="backoff"):
        RetryPolicy(backoff=-1)


def test_call_is_the_one_retry_loop(monkeypatch):
    """RetryPolicy.call: ``attempts`` retries in a row, a fresh budget once ``progress()``
    moved, ``transient=`` deciding what is retried, and a response's Retry-After as the wait."""
    import httpx

    from etl_express import retry

    slept: list[float] = []
    monkeypatch.setattr(retry.time, "sleep", slept.append)
    policy = RetryPolicy(attempts=2, backoff=0.01, jitter=0)
    calls, position = [0], [0]

    def step():  # five failures; the position moves before the third and the fifth
        calls[0] += 1
        if calls[0] in (3, 5):
            position[0] += 1
        if calls[0] == 6:
            return "done"
        raise ConnectionError()

    assert policy.call(step, progress=lambda: position[0]) == "done"
    calls[0] = 0
    with pytest.raises(ConnectionError):  # without progress, the third failure in a row ends it
        policy.call(step)
    assert calls[0] == 3
    retried: list[int] = []

    def refused():
        raise ValueError("not worth retrying")

    with pytest.raises(ValueError):
        policy.call(refused, on_retry=lambda: retried.append(1))
    assert retried == []
    response = httpx.Response(503, headers={"Retry-After": "7"})
    failing = iter(
        [httpx.HTTPStatusError("503", request=httpx.Request("GET", "http://x"), response=response)]
    )

    def http():
        for exc in failing:
            raise exc
        return "ok"

    slept.clear()
    assert policy.call(http, transient=lambda e: isinstance(e, httpx.HTTPStatusError)) == "ok"
    assert slept == [7.0]
