"""The HTTP client under :class:`RESTSource`: retries, rate limit, timeouts.

The library's one :class:`~etl_express.retry.RetryPolicy` retries connect errors, timeouts,
HTTP 429 and 5xx with exponential backoff and jitter, honouring ``Retry-After``; ``RateLimit`` is a thread-safe token bucket
shared by concurrent requests; ``RESTClient`` wraps one ``httpx.Client`` with both.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import ssl
import threading
import time
from typing import Any
from urllib.parse import unquote

import httpx
from loguru import logger

from ...errors import ETLConfigError, SourceError
from ...retry import RetryPolicy, retry_after
from .paginators import PageRequest


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
    """The URL without its query string (which may carry an API key) or credentials, shown
    as written (``/odata/standard.odata/Catalog_Контрагенты``, not percent-encoded)."""
    u = httpx.URL(str(url))
    return unquote(str(u.copy_with(query=None, fragment=None, userinfo=b"")))


#: what the request an etl-express client is sending is named by (see ``send``); unset
#: outside its ``send``
_SENDING: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "etl_express_rest_sending", default=None
)


class _RequestLineFilter(logging.Filter):
    """httpx logs every request at INFO through the standard library (``HTTP Request: GET
    https://api/items?cursor=... "HTTP/1.1 200 OK"``), and Airflow's task log, like any
    ``logging.basicConfig(level=INFO)``, prints it: the full URL, with the paginator's token
    (a record's value, before the engine has judged it) and an API key sent as a query
    parameter. While an etl-express client sends, the line names the request as the client
    does (configured URL and page) instead; other httpx users' lines are left as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        label = _SENDING.get()
        if label is None:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        if str(record.msg).startswith("HTTP Request:") and len(args) == 5:
            record.msg, record.args = 'HTTP Request: %s "%s %d %s"', (label, *args[2:])
            return True
        return False  # another line of httpx's with the URL in it: not shown


_REQUEST_LINES = _RequestLineFilter()


def _filter_request_lines() -> None:
    logger_ = logging.getLogger("httpx")
    if _REQUEST_LINES not in logger_.filters:
        logger_.addFilter(_REQUEST_LINES)


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
        hints: dict[int, str] | None = None,
    ):
        self.retry = retry or RetryPolicy()
        self.rate_limit = rate_limit
        self.hints = dict(hints or {})  # what to check for an HTTP status, by the API's kind
        _filter_request_lines()
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

    def send(self, page: PageRequest, where: str | None = None) -> httpx.Response:
        """Send ``page``, retrying per the policy; raise :class:`SourceError` when it fails.

        ``where`` names the request in retry log lines and errors (default: ``page.url``
        without its query). A paginator may point ``page.url`` at a URL the server handed
        out, whose path can hold a record's values (``/people/after/<e-mail>``): callers
        that follow such URLs name the request by what they were configured with."""
        policy = self.retry
        where = where or safe_url(page.url)
        attempts = 0

        def attempt() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            if self.rate_limit is not None:
                self.rate_limit.acquire()
            request = self.http.build_request(
                page.method,
                page.url,
                params=_merged(page),
                headers=page.headers or None,
                json=page.json,
            )
            sending = _SENDING.set(f"{page.method} {where}")
            try:
                response = self.http.send(request)
            finally:
                _SENDING.reset(sending)
            if response.status_code < 400:
                return response
            if response.status_code in policy.retry_statuses:
                raise RetryableStatus(response)
            raise SourceError(
                f"{page.method} {where} failed with HTTP {response.status_code}",
                hint=self.hints.get(response.status_code) or _hint(response.status_code),
            )

        try:
            return policy.call(
                attempt,
                what=f"{page.method} {where}",
                log=logger,
                transient=lambda exc: isinstance(exc, (httpx.TransportError, RetryableStatus)),
            )
        except (httpx.TransportError, RetryableStatus) as exc:
            raise SourceError(
                f"{page.method} {where} failed after {attempts} attempts: {_problem(exc)}",
                hint="the server is unreachable or overloaded; the next run resumes "
                "from the last committed page (give retry=RetryPolicy(attempts=...) more attempts to wait longer)",
            ) from None


class RetryableStatus(Exception):
    """An HTTP response whose status the retry policy retries (429, 5xx by default)."""

    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _problem(exc: Exception) -> str:
    return str(exc) if isinstance(exc, RetryableStatus) else type(exc).__name__


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
