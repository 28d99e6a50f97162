"""RetryPolicy and RateLimit (pure logic: clocks are faked, nothing sleeps)."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from etl_express.errors import ETLConfigError
from etl_express.sources.rest import RateLimit, RetryPolicy, client
from etl_express.sources.rest.client import retry_after, safe_url


def _resp(headers: dict[str, str]) -> httpx.Response:
    return httpx.Response(429, headers=headers)


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after(_resp({"Retry-After": "7"})) == 7.0
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 50 < retry_after(_resp({"Retry-After": later})) <= 60  # type: ignore[operator]
    assert retry_after(_resp({"Retry-After": "soon"})) is None
    assert retry_after(_resp({})) is None


def test_delay_honours_retry_after_up_to_the_cap() -> None:
    policy = RetryPolicy(backoff_base=100, max_retry_after=30)
    assert policy.delay(1, _resp({"Retry-After": "3"})) == 3
    assert policy.delay(1, _resp({"Retry-After": "3000"})) == 30


def test_exponential_backoff_with_jitter_is_bounded() -> None:
    policy = RetryPolicy(backoff_base=1, backoff_max=5)
    assert RetryPolicy(backoff_base=1, jitter=False).delay(3) == 4
    for retry in range(1, 8):
        assert 0 <= policy.delay(retry) <= min(5, 2 ** (retry - 1))


def test_rate_limit_spaces_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    slept: list[float] = []
    monkeypatch.setattr(client.time, "monotonic", lambda: clock[0])

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    monkeypatch.setattr(client.time, "sleep", sleep)
    limit = RateLimit(requests_per_second=4, burst=2)
    waits = [limit.acquire() for _ in range(6)]
    assert waits[:2] == [0.0, 0.0]  # the burst
    assert waits[2:] == pytest.approx([0.25] * 4)
    assert sum(slept) == pytest.approx(1.0)
    with pytest.raises(ETLConfigError):
        RateLimit(0)


def test_safe_url_drops_query_and_credentials() -> None:
    assert safe_url("https://u:p@api.test/x?api_key=secret") == "https://api.test/x"
