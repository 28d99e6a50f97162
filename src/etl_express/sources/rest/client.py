"""The HTTP client under :class:`RESTSource`: retries, rate limit, timeouts.

``RetryPolicy`` retries connect errors, timeouts, HTTP 429 and 5xx with exponential backoff
and full jitter, honouring ``Retry-After``; ``RateLimit`` is a thread-safe token bucket
shared by concurrent requests; ``RESTClient`` wraps one ``httpx.Client`` with both.
"""

from __future__ import annotations

import email.utils
import functools
import random
import ssl
import threading
import time
from typing import Any

import httpx
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field

from ...errors import ETLConfigError, SourceError
from .paginators import PageRequest


class RetryPolicy(BaseModel):
    """When and how long to wait before sending a failed request again.

    The delay before attempt ``n`` (1-based retries) is a random value between 0 and
    ``min(backoff_max, backoff_base * 2 ** (n - 1))`` (full jitter, so many clients do not
    retry in lockstep); a ``Retry-After`` header (seconds or an HTTP date) replaces it, up
    to ``max_retry_after`` seconds.
    """

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(5, ge=1, description="attempts in total, the first one included")
    backoff_base: float = Field(0.5, ge=0, description="seconds; doubles each retry")
    backoff_max: float = Field(30.0, ge=0)
    jitter: bool = True
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    max_retry_after: float = Field(120.0, ge=0, description="cap on a server's Retry-After")

    def delay(self, retry: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        if response is not None:
            after = retry_after(response)
            if after is not None:
                return min(after, self.max_retry_after)
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (retry - 1))
        return random.uniform(0, ceiling) if self.jitter else ceiling


def retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds, or ``None`` when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class RateLimit:
    """At most ``requests_per_second`` requests, with bursts of up to ``burst``.

    A token bucket: each request takes a token, tokens refill continuously; a request that
    finds the bucket empty sleeps until one is available. Shared by all threads of a source.
    """

    def __init__(self, requests_per_second: float, burst: int = 1):
        if requests_per_second <= 0:
            raise ETLConfigError(f"requests_per_second must be > 0, got {requests_per_second}")
        self.rate, self.burst = float(requests_per_second), max(1, burst)
        self._tokens = float(self.burst)
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping as needed; returns the seconds slept."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)
        return wait

    def __deepcopy__(self, memo: dict) -> RateLimit:
        return self

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_lock": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RateLimit(requests_per_second={self.rate}, burst={self.burst})"


def safe_url(url: httpx.URL | str) -> str:
    """The URL without its query string (which may carry an API key) or credentials."""
    u = httpx.URL(str(url))
    return str(u.copy_with(query=None, fragment=None, userinfo=b""))


class RESTClient:
    """One ``httpx.Client`` with retries and a rate limit; sends :class:`PageRequest` s."""

    def __init__(
        self,
        *,
        auth: httpx.Auth | None = None,
        retry: RetryPolicy | None = None,
        rate_limit: RateLimit | None = None,
        timeout: float | httpx.Timeout = 30.0,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        verify: bool | str = True,
    ):
        self.retry = retry or RetryPolicy()
        self.rate_limit = rate_limit
        self.http = httpx.Client(
            auth=auth,
            timeout=timeout,
            headers=headers,
            transport=transport,
            verify=_default_ssl_context() if verify is True else verify,
            follow_redirects=True,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RESTClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, page: PageRequest) -> httpx.Response:
        """Send ``page``, retrying per the policy; raise :class:`SourceError` when it fails."""
        policy = self.retry
        where = safe_url(page.url)
        attempt = 0
        while True:
            attempt += 1
            if self.rate_limit is not None:
                self.rate_limit.acquire()
            response: httpx.Response | None = None
            try:
                request = self.http.build_request(
                    page.method,
                    page.url,
                    params=_merged(page),
                    headers=page.headers or None,
                    json=page.json,
                )
                response = self.http.send(request)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}"
            else:
                if response.status_code < 400:
                    return response
                problem = f"HTTP {response.status_code}"
                if response.status_code not in policy.retry_statuses:
                    raise SourceError(
                        f"GET {where} failed with HTTP {response.status_code}"
                        if page.method == "GET"
                        else f"{page.method} {where} failed with HTTP {response.status_code}",
                        hint=_hint(response.status_code),
                    )
            if attempt >= policy.max_attempts:
                raise SourceError(
                    f"{page.method} {where} failed after {attempt} attempts: {problem}",
                    hint="the server is unreachable or overloaded; the next run resumes "
                    "from the last committed page (raise RetryPolicy.max_attempts to wait longer)",
                )
            wait = policy.delay(attempt, response)
            logger.warning(
                "{} {} -> {}; retry {} of {} in {:.2f} s",
                page.method,
                where,
                problem,
                attempt,
                policy.max_attempts - 1,
                wait,
            )
            time.sleep(wait)


@functools.lru_cache(maxsize=1)
def _default_ssl_context() -> ssl.SSLContext:
    """Loading the CA bundle takes ~0.1 s: do it once per process, not once per read."""
    return httpx.create_ssl_context()


def _merged(page: PageRequest) -> dict[str, Any] | None:
    # httpx merges these into the query string already in the URL (a next-page link)
    return {k: v for k, v in page.params.items() if v is not None} or None


def _hint(status: int) -> str:
    if status in (401, 403):
        return "check the credentials (the secret behind auth=) and that the account may read this endpoint"
    if status == 404:
        return "check base_url and path"
    if status == 400:
        return "check the query parameters (params=, paginator and incremental settings)"
    return "see the API's documentation for this status"


__all__ = ["RESTClient", "RateLimit", "RetryPolicy", "retry_after", "safe_url"]
