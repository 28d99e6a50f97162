"""The dashboard's Starlette application: server-rendered pages over one store.

Read-only (GET pages, read-only transactions), no external resources (Chart.js ships in
``static/``; a Content-Security-Policy allows only this origin), and guarded by a bearer
token whenever one is configured — which :func:`etl_express.ui.serve` insists on when the
dashboard is bound beyond the loopback interface.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from .._durations import format_age, format_duration
from ..store.database import mask_url
from .store import StoreView

HERE = Path(__file__).parent
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]

_SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class BearerToken:
    """ASGI middleware: every request must carry ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str):
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            sent = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(sent, self.expected):
                response = Response(
                    "401 Unauthorized: send the dashboard token as "
                    "'Authorization: Bearer <ETL_EXPRESS_UI_TOKEN>'\n",
                    status_code=401,
                    headers={"www-authenticate": 'Bearer realm="etl-express"', **_SECURITY_HEADERS},
                    media_type="text/plain",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """ASGI middleware adding the security headers above to every response."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.encode(), v.encode()) for k, v in _SECURITY_HEADERS.items()]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _number(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _when(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value.replace("T", " ")[:19]
    return value.strftime("%Y-%m-%d %H:%M:%S")


def create_app(engine: Engine, token: str | None = None, *, local_only: bool = True) -> Starlette:
    """The dashboard over the store ``engine`` connects to.

    ``token``: require ``Authorization: Bearer <token>`` on every request. ``local_only``:
    answer only requests addressed to a loopback name (DNS-rebinding protection).
    """
    view = StoreView(engine)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.filters.update(
        percent=_percent, number=_number, when=_when, duration=format_duration, age=format_age
    )
    env.globals["store_url"] = mask_url(engine.url)

    def page(request: Request, template: str, **context: Any) -> Response:
        return templates.TemplateResponse(request, template, context)

    def index(request: Request) -> Response:
        with view.connect() as conn:
            pipelines = view.overview(conn)
        return page(request, "index.html", pipelines=pipelines)

    def pipeline(request: Request) -> Response:
        name = request.path_params["name"]
        with view.connect() as conn:
            data = view.pipeline(conn, name)
        if data is None:
            raise HTTPException(404, f"no pipeline {name!r} in this store")
        return page(request, "pipeline.html", name=name, **data)

    def run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        with view.connect() as conn:
            data = view.run(conn, run_id)
        if data is None:
            raise HTTPException(404, f"no run {run_id!r} in this store")
        return page(request, "run.html", **data)

    def quarantine(request: Request) -> Response:
        name = request.query_params.get("pipeline") or None
        with view.connect() as conn:
            items = view.quarantine(conn, name)
            names = view.quarantine_pipelines(conn)
        return page(request, "quarantine.html", items=items, pipeline=name, pipelines=names)

    middleware = [Middleware(SecurityHeaders)]
    if token:
        middleware.append(Middleware(BearerToken, token=token))
    if local_only:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=LOOPBACK_NAMES))
    return Starlette(
        routes=[
            Route("/", index),
            Route("/pipelines/{name:path}", pipeline),
            Route("/runs/{run_id}", run),
            Route("/quarantine", quarantine),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ],
        middleware=middleware,
    )


__all__ = ["BearerToken", "create_app"]
