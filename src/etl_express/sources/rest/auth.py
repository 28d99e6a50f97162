"""Authentication as plain :class:`httpx.Auth` objects, reading secrets lazily.

Each class takes its credentials as ``etl.secret("NAME")`` references (or plain strings in
tests) and resolves them only when a request is sent, so nothing secret is held in a repr,
a log line or a pickled DAG. Any other ``httpx.Auth`` works with :class:`RESTSource` too.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Generator
from typing import Literal

import httpx

from ..._masking import mask_url
from ...errors import ETLConfigError, SourceError
from ...secrets import SecretLike, reveal


def _required(value: SecretLike | None, what: str) -> str:
    text = reveal(value)
    if not text:
        raise ETLConfigError(f"{what} is empty", hint=f"pass {what}=etl.secret('...')")
    return text


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>``."""

    def __init__(self, token: SecretLike):
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {_required(self.token, 'token')}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token=***)"


class BasicAuth(httpx.Auth):
    """HTTP basic auth (1C publishes OData with it)."""

    def __init__(self, username: SecretLike, password: SecretLike):
        self.username, self.password = username, password

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        pair = f"{_required(self.username, 'username')}:{reveal(self.password) or ''}"
        request.headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("utf-8")).decode(
            "ascii"
        )
        yield request

    def __repr__(self) -> str:
        return "BasicAuth(username=***, password=***)"


class APIKeyAuth(httpx.Auth):
    """An API key in a header (``X-API-Key: ...``) or a query parameter (``?api_key=...``)."""

    def __init__(
        self,
        key: SecretLike,
        name: str = "X-API-Key",
        location: Literal["header", "query"] = "header",
    ):
        if location not in ("header", "query"):
            raise ETLConfigError(
                f"APIKeyAuth location must be 'header' or 'query', got {location!r}"
            )
        self.key, self.name, self.location = key, name, location

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        key = _required(self.key, "key")
        if self.location == "header":
            request.headers[self.name] = key
        else:
            request.url = request.url.copy_merge_params({self.name: key})
        yield request

    def __repr__(self) -> str:
        return f"APIKeyAuth(name={self.name!r}, location={self.location!r}, key=***)"


class OAuth2ClientCredentials(httpx.Auth):
    """OAuth2 client-credentials grant with token caching and refresh.

    The token is fetched on first use, refreshed ``leeway`` seconds before its
    ``expires_in`` runs out, and refreshed once more when the API answers 401 anyway (a
    token revoked early). The token request goes through the same client, so it shares
    the source's retries, timeouts and transport. Thread-safe for concurrent requests.
    """

    requires_response_body = True

    def __init__(
        self,
        token_url: str,
        client_id: SecretLike,
        client_secret: SecretLike,
        *,
        scope: str | None = None,
        leeway: float = 30.0,
        extra: dict[str, str] | None = None,
    ):
        self.token_url, self.client_id, self.client_secret = token_url, client_id, client_secret
        self.scope, self.leeway, self.extra = scope, leeway, dict(extra or {})
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.refreshes = 0  #: how many tokens were fetched (observability, tests)

    def __deepcopy__(self, memo: dict) -> OAuth2ClientCredentials:
        return self  # shared token cache; the lock cannot be copied

    def __getstate__(self) -> dict:
        # sent to worker processes without the lock and without the token
        return {**self.__dict__, "_lock": None, "_token": None, "_expires_at": 0.0}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _token_request(self) -> httpx.Request:
        data = {"grant_type": "client_credentials", **self.extra}
        if self.scope:
            data["scope"] = self.scope
        pair = f"{_required(self.client_id, 'client_id')}:{_required(self.client_secret, 'client_secret')}"
        return httpx.Request(
            "POST",
            self.token_url,
            data=data,
            headers={
                "Accept": "application/json",
                "Authorization": "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii"),
            },
        )

    def _store(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            raise SourceError(
                f"OAuth2 token request to {httpx.URL(self.token_url).copy_with(query=None)} "
                f"failed with HTTP {response.status_code}",
                hint="check client_id, client_secret and scope",
            )
        try:
            body = response.json()
            token = body["access_token"]
        except (ValueError, KeyError, TypeError):
            raise SourceError(
                "OAuth2 token response has no access_token",
                hint="check token_url points at the token endpoint",
            ) from None
        self._token = str(token)
        expires_in = body.get("expires_in")
        self._expires_at = (
            time.monotonic() + float(expires_in) - self.leeway
            if expires_in is not None
            else float("inf")
        )
        self.refreshes += 1

    def _valid(self) -> bool:
        return self._token is not None and time.monotonic() < self._expires_at

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:
            if not self._valid():
                self._store((yield self._token_request()))
            token = self._token
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            with self._lock:
                if self._token == token:  # nobody refreshed it meanwhile
                    self._store((yield self._token_request()))
                token = self._token
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials(token_url={mask_url(self.token_url)!r}, client_id=***, client_secret=***)"


__all__ = ["APIKeyAuth", "BasicAuth", "BearerAuth", "OAuth2ClientCredentials"]
