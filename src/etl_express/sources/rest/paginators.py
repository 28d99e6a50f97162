"""Paginators: how a REST API says where the next page is.

A paginator is a small state machine. :class:`RESTSource` calls
:meth:`~BasePaginator.update_request` before every request (to put the current page's
parameters on it) and :meth:`~BasePaginator.update_state` after every response (to learn
where the next page is, or that there is none). Every paginator stops on an empty page and
refuses a page token it has already seen, so a misbehaving server can never make a run
loop forever. Its state is JSON-serializable: the source commits it as the checkpoint, and
a resumed run continues at the page after the last committed one.
"""

from __future__ import annotations

import copy
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx
from loguru import logger

from ...errors import ETLConfigError, SourceError
from .jsonpath import find_path


@dataclass
class PageRequest:
    """The request for one page; paginators edit it in place.

    ``params`` are query parameters, merged into ``url``'s own query string when sent.
    """

    method: str
    url: str
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None


class BasePaginator(ABC):
    """The contract of a paginator.

    Implement :meth:`update_state` (read the response, set :attr:`has_next_page` and the
    next page's token) and :meth:`update_request` (apply the current token to the request),
    plus :meth:`get_state`/:meth:`set_state` when the position should survive a restart.
    Call :meth:`advance_token` to record each new token: it raises :class:`SourceError`
    when the server hands out a token it already gave, instead of looping forever.

    Example — a paginator for an API returning ``{"items": [...], "next_page": 3}``::

        class NextPagePaginator(BasePaginator):
            def __init__(self):
                super().__init__()
                self.page = None

            def update_state(self, response, data):
                token = response.json().get("next_page")
                self.has_next_page = bool(data) and token is not None
                if self.has_next_page:
                    self.advance_token(token)
                    self.page = token

            def update_request(self, request):
                if self.page is not None:
                    request.params["page"] = self.page

            def get_state(self):
                return {"page": self.page}

            def set_state(self, state):
                self.page = state["page"]
    """

    def __init__(self) -> None:
        self.has_next_page = True
        self._seen: set[str] = set()

    @abstractmethod
    def update_state(self, response: httpx.Response, data: list[Any]) -> None:
        """Learn from ``response`` (whose records are ``data``) where the next page is."""

    @abstractmethod
    def update_request(self, request: PageRequest) -> None:
        """Put the current page's parameters on ``request`` (called before every request)."""

    def get_state(self) -> dict[str, Any] | None:
        """The JSON-serializable position of the next page (``None``: not resumable)."""
        return None

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a position returned by :meth:`get_state`."""

    def fresh(self) -> BasePaginator:
        """A copy in its initial state (one per partition and run)."""
        new = copy.deepcopy(self)
        new.has_next_page = True
        new._seen = set()
        return new

    def advance_token(self, token: Any) -> None:
        """Record ``token``; a token seen before means the server is looping."""
        key = str(token)
        if key in self._seen:
            raise SourceError(
                f"{type(self).__name__}: the server returned a page token it already gave "
                f"(after {len(self._seen)} pages); stopping instead of looping forever",
                hint="check the paginator settings (cursor path, parameter name) against the API",
            )
        self._seen.add(key)

    def _stop_on_empty(self, data: list[Any]) -> bool:
        if not data:
            self.has_next_page = False
            return True
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SinglePagePaginator(BasePaginator):
    """The endpoint returns everything in one response."""

    def update_state(self, response: httpx.Response, data: list[Any]) -> None:
        self.has_next_page = False

    def update_request(self, request: PageRequest) -> None:
        pass


def _total(response: httpx.Response, path: str, paginator: str) -> int | None:
    value = find_path(_json(response), path)
    if value is None:
        logger.warning(
            "{}: total {!r} is missing or null in the response; stopping pagination",
            paginator,
            path,
        )
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SourceError(
            f"{paginator}: total {path!r} is not a number ({type(value).__name__})",
            hint="point total_path at the numeric total, or set total_path=None",
        ) from None


def _json(response: httpx.Response) -> Any:
    try:
        return response_json(response)
    except ValueError:
        return None


def response_json(response: httpx.Response) -> Any:
    """The JSON body of ``response``, decoded in the charset its ``Content-Type`` declares
    (``application/json; charset=windows-1251``); without one, JSON's own UTF-8/16/32.
    Raises ``ValueError`` when it is not JSON."""
    charset = response.charset_encoding
    if charset is None:
        return response.json()
    try:
        text = response.content.decode(charset)
    except LookupError:  # a charset Python does not know: JSON's own detection
        return response.json()
    except UnicodeDecodeError as exc:
        raise ValueError(f"the body does not decode as {charset}") from exc
    return json.loads(text.removeprefix("\ufeff"))


class OffsetPaginator(BasePaginator):
    """``?offset=0&limit=100``, then ``offset=100`` ... (1C's ``$skip``/``$top`` too).

    Stops on an empty page, at ``offset >= total`` when ``total_path`` names the total in
    the body, and — with a warning — when that total is missing or null. With
    ``stop_on_short_page`` a page with fewer than ``limit`` records is the last one (for APIs
    that always honour the limit, like 1C: it saves the final empty request).
    """

    def __init__(
        self,
        limit: int,
        *,
        offset: int = 0,
        offset_param: str = "offset",
        limit_param: str = "limit",
        total_path: str | None = None,
        stop_on_short_page: bool = False,
    ):
        super().__init__()
        if limit < 1:
            raise ETLConfigError(f"OffsetPaginator limit must be >= 1, got {limit}")
        self.limit, self.offset = limit, offset
        self.offset_param, self.limit_param, self.total_path = offset_param, limit_param, total_path
        self.stop_on_short_page = stop_on_short_page

    def update_state(self, response: httpx.Response, data: list[Any]) -> None:
        if self._stop_on_empty(data):
            return
        self.offset += self.limit
        if self.stop_on_short_page and len(data) < self.limit:
            self.has_next_page = False
            return
        if self.total_path is not None:
            total = _total(response, self.total_path, "OffsetPaginator")
            if total is None or self.offset >= total:
                self.has_next_page = False

    def update_request(self, request: PageRequest) -> None:
        request.params[self.offset_param] = self.offset
        request.params[self.limit_param] = self.limit

    def get_state(self) -> dict[str, Any]:
        return {"offset": self.offset}

    def set_state(self, state: dict[str, Any]) -> None:
        self.offset = int(state["offset"])

    def __repr__(self) -> str:
        return f"OffsetPaginator(limit={self.limit})"


class PageNumberPaginator(BasePaginator):
    """``?page=1``, ``?page=2`` ... Stops on an empty page or past ``total_path`` pages."""

    def __init__(
        self,
        *,
        base_page: int = 1,
        page_param: str = "page",
        page_size: int | None = None,
        page_size_param: str = "per_page",
        total_path: str | None = None,
    ):
        super().__init__()
        self.page = base_page
        self.base_page, self.page_param = base_page, page_param
        self.page_size, self.page_size_param, self.total_path = (
            page_size,
            page_size_param,
            total_path,
        )

    def update_state(self, response: httpx.Response, data: list[Any]) -> None:
        if self._stop_on_empty(data):
            return
        self.page += 1
        if self.total_path is not None:
            total = _total(response, self.total_path, "PageNumberPaginator")
            if total is None or self.page - self.base_page >= total:
                self.has_next_page = False

    def update_request(self, request: PageRequest) -> None:
        request.params[self.page_param] = self.page
        if self.page_size is not None:
            request.params[self.page_size_param] = self.page_size

    def get_state(self) -> dict[str, Any]:
        return {"page": self.page}

    def set_state(self, state: dict[str, Any]) -> None:
        self.page = int(state["page"])


class _TokenPaginator(BasePaginator):
    """Shared logic of the paginators that follow an opaque token (cursor or URL)."""

    def __init__(self) -> None:
        super().__init__()
        self.token: Any = None

    def _next_token(self, response: httpx.Response) -> Any:
        raise NotImplementedError

    def update_state(self, response: httpx.Response, data: list[Any]) -> None:
        if self._stop_on_empty(data):
            return
        token = self._next_token(response)
        if token in (None, ""):
            self.has_next_page = False
            return
        self.advance_token(token)
        self.token = token

    def get_state(self) -> dict[str, Any]:
        return {"token": self.token}

    def set_state(self, state: dict[str, Any]) -> None:
        self.token = state.get("token")
        if self.token is not None:
            self._seen.add(str(self.token))


class JSONCursorPaginator(_TokenPaginator):
    """The body carries the next cursor (``{"next_cursor": "abc"}``), sent back as
    ``?cursor=abc``. Stops when it is missing, null or empty."""

    def __init__(self, cursor_path: str = "next_cursor", cursor_param: str = "cursor"):
        super().__init__()
        self.cursor_path, self.cursor_param = cursor_path, cursor_param

    def _next_token(self, response: httpx.Response) -> Any:
        return find_path(_json(response), self.cursor_path)

    def update_request(self, request: PageRequest) -> None:
        if self.token is not None:
            request.params[self.cursor_param] = self.token


class HeaderCursorPaginator(_TokenPaginator):
    """A response header carries the next cursor (``X-Next-Cursor: abc``)."""

    def __init__(self, header: str = "X-Next-Cursor", cursor_param: str = "cursor"):
        super().__init__()
        self.header, self.cursor_param = header, cursor_param

    def _next_token(self, response: httpx.Response) -> Any:
        return response.headers.get(self.header)

    def update_request(self, request: PageRequest) -> None:
        if self.token is not None:
            request.params[self.cursor_param] = self.token


class _NextURLPaginator(_TokenPaginator):
    def get_state(self) -> dict[str, Any]:
        return {"token": None if self.token is None else _without_secrets(str(self.token))}

    def update_request(self, request: PageRequest) -> None:
        if self.token is not None:
            # the next URL carries every query parameter itself
            request.url = self.token
            request.params = {}


def _without_secrets(url: str) -> str:
    """``url`` without the query parameters holding a secret — an API key the auth sends as
    a query parameter, which the server echoes into its next link. The state is stored as
    the checkpoint, where a secret must never be; a resumed run's auth adds the key again."""
    from ..._masking import mask_secrets

    parsed = httpx.URL(url)
    items = parsed.params.multi_items()
    kept: list[tuple[str, str | int | float | bool | None]] = [
        (k, v) for k, v in items if mask_secrets(v) == v
    ]
    if len(kept) == len(items):
        return url
    return str(parsed.copy_with(params=httpx.QueryParams(kept)))


class HeaderLinkPaginator(_NextURLPaginator):
    """RFC 8288 ``Link: <https://api/items?page=2>; rel="next"`` (GitHub style)."""

    def __init__(self, rel: str = "next"):
        super().__init__()
        self.rel = rel

    def _next_token(self, response: httpx.Response) -> Any:
        link = response.links.get(self.rel)
        url = link.get("url") if link else None
        return urljoin(str(response.request.url), url) if url else None


class JSONLinkPaginator(_NextURLPaginator):
    """The body carries the next page's URL (``{"next": "https://api/items?page=2"}``)."""

    def __init__(self, next_url_path: str = "next"):
        super().__init__()
        self.next_url_path = next_url_path

    def _next_token(self, response: httpx.Response) -> Any:
        url = find_path(_json(response), self.next_url_path)
        return urljoin(str(response.request.url), str(url)) if url else None


__all__ = [
    "BasePaginator",
    "HeaderCursorPaginator",
    "HeaderLinkPaginator",
    "JSONCursorPaginator",
    "JSONLinkPaginator",
    "OffsetPaginator",
    "PageNumberPaginator",
    "PageRequest",
    "SinglePagePaginator",
]
