"""A fake JSON API on a real local HTTP server, speaking every pagination style."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from etl_express.testing import HTTPRequest, HTTPResponse, LocalHTTPServer

PAGE = 7


class FakeAPI:
    """Routes ``/<dataset>/<style>``; records are served sorted by id, ``since`` filters
    on ``updated_at``. ``failures`` is a cycle of statuses (``None`` = answer normally)."""

    def __init__(self) -> None:
        self.datasets: dict[str, list[dict[str, Any]]] = {}
        self.failures: Iterator[tuple[int, dict[str, str]] | None] | None = None
        self.oauth = False
        self.token_uses: dict[str, int] = {}
        self.token_budget = 3
        self.tokens_issued = 0
        self.data_requests = 0
        self.url = ""
        self.server: LocalHTTPServer | None = None
        self._lock = threading.Lock()

    def add(self, records: list[dict[str, Any]]) -> str:
        name = "ds" + uuid.uuid4().hex[:8]
        self.datasets[name] = records
        return name

    def fail(self, *pattern: tuple[int, dict[str, str]] | None) -> None:
        self.failures = itertools.cycle(pattern)

    def __call__(self, req: HTTPRequest) -> HTTPResponse:
        if req.path == "/token":
            return self._token(req)
        with self._lock:
            failure = next(self.failures) if self.failures is not None else None
            self.data_requests += 1
        if failure is not None:
            status, headers = failure
            return HTTPResponse(status, {"error": "try again"}, headers)
        if self.oauth and not self._authorized(req):
            return HTTPResponse(401, {"error": "invalid_token"})
        _, name, style = req.path.split("/")
        rows = sorted(self.datasets[name], key=lambda r: r["id"])
        since = req.query.get("since")
        if since:
            rows = [r for r in rows if r["updated_at"] > since]
        return getattr(self, "_" + style)(req, name, style, rows)

    # -- auth -------------------------------------------------------------------------------

    def _token(self, req: HTTPRequest) -> HTTPResponse:
        import base64

        expected = "Basic " + base64.b64encode(b"client:s3cret").decode()
        if (
            req.headers.get("authorization") != expected
            or req.form().get("grant_type") != "client_credentials"
        ):
            return HTTPResponse(401, {"error": "invalid_client"})
        with self._lock:
            self.tokens_issued += 1
            token = f"tok{self.tokens_issued}"
            self.token_uses[token] = 0
        return HTTPResponse(
            200, {"access_token": token, "token_type": "bearer", "expires_in": 3600}
        )

    def _authorized(self, req: HTTPRequest) -> bool:
        token = req.headers.get("authorization", "").removeprefix("Bearer ")
        with self._lock:
            if token not in self.token_uses or self.token_uses[token] >= self.token_budget:
                return False  # unknown or expired on the server side
            self.token_uses[token] += 1
        return True

    # -- pagination styles ----------------------------------------------------------------

    def _link(self, name: str, style: str, query: dict[str, Any]) -> str:
        return f"{self.url}/{name}/{style}?{urlencode(query)}"

    def _single(self, req, name, style, rows):
        return HTTPResponse(200, rows)

    def _offset(self, req, name, style, rows):
        offset, limit = int(req.query.get("offset", 0)), int(req.query.get("limit", 10))
        return HTTPResponse(
            200, {"data": {"items": rows[offset : offset + limit]}, "total": len(rows)}
        )

    def _null_total(self, req, name, style, rows):
        offset, limit = int(req.query.get("offset", 0)), int(req.query.get("limit", 10))
        return HTTPResponse(200, {"data": {"items": rows[offset : offset + limit]}, "total": None})

    def _ignores_offset(self, req, name, style, rows):
        return HTTPResponse(200, {"data": {"items": rows[:5]}})

    def _page(self, req, name, style, rows):
        page = int(req.query.get("page", 1))
        return HTTPResponse(
            200,
            {
                "results": rows[(page - 1) * PAGE : page * PAGE],
                "total_pages": -(-len(rows) // PAGE),
            },
        )

    def _cursor(self, req, name, style, rows):
        start = int(req.query.get("cursor", "c0")[1:])
        nxt = f"c{start + PAGE}" if start + PAGE < len(rows) else None
        return HTTPResponse(
            200, {"items": rows[start : start + PAGE], "meta": {"next_cursor": nxt}}
        )

    def _loop_cursor(self, req, name, style, rows):
        start = int(req.query.get("cursor", "c0")[1:])
        # a broken server: after the second page it hands out the first page's cursor again
        nxt = f"c{PAGE}" if start <= PAGE else None
        return HTTPResponse(
            200, {"items": rows[start : start + PAGE], "meta": {"next_cursor": nxt}}
        )

    def _header_cursor(self, req, name, style, rows):
        start = int(req.query.get("cursor", "c0")[1:])
        headers = {"X-Next-Cursor": f"c{start + PAGE}"} if start + PAGE < len(rows) else {}
        return HTTPResponse(200, rows[start : start + PAGE], headers)

    def _link_header(self, req, name, style, rows):
        page = int(req.query.get("page", 1))
        headers = {}
        if page * PAGE < len(rows):
            query = {k: v for k, v in req.query.items() if k != "page"} | {"page": page + 1}
            headers["Link"] = (
                f'<{self._link(name, style, query)}>; rel="next", <{self.url}/x>; rel="last"'
            )
        return HTTPResponse(200, {"data": rows[(page - 1) * PAGE : page * PAGE]}, headers)

    def _next_url(self, req, name, style, rows):
        page = int(req.query.get("page", 1))
        query = {k: v for k, v in req.query.items() if k != "page"} | {"page": page + 1}
        nxt = f"/{name}/{style}?{urlencode(query)}" if page * PAGE < len(rows) else None
        return HTTPResponse(200, {"items": rows[(page - 1) * PAGE : page * PAGE], "next": nxt})

    def _orders(self, req, name, style, rows):  # per-parent endpoint: ?customer=<id>
        customer = int(req.query["customer"])
        return HTTPResponse(200, [r for r in rows if r["customer"] == customer])


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    fake = FakeAPI()
    with LocalHTTPServer(fake) as server:
        fake.url = server.url
        fake.server = server
        yield fake
