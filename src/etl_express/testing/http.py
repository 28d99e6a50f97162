"""A real HTTP server on 127.0.0.1 for testing REST connectors.

REST behaviour (pagination, 429, 5xx, auth) is tested against a real socket, not a mock:
:class:`LocalHTTPServer` runs the standard library's ``ThreadingHTTPServer`` in a thread
and answers each request with whatever a plain function returns::

    def api(request: HTTPRequest) -> HTTPResponse:
        page = int(request.query.get("page", 1))
        return HTTPResponse(200, {"items": ROWS[(page - 1) * 10 : page * 10]})

    with LocalHTTPServer(api) as server:
        source = RESTSource(server.url, "items", paginator=PageNumberPaginator())
        ...

``server.requests`` records every request, to assert what the connector sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


@dataclass
class HTTPRequest:
    """One request as the server saw it (query values are single strings)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""

    def form(self) -> dict[str, str]:
        """The body parsed as ``application/x-www-form-urlencoded``."""
        return dict(parse_qsl(self.body.decode("utf-8")))


@dataclass
class HTTPResponse:
    """What to answer: ``body`` is sent as JSON unless it is ``bytes``."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[HTTPRequest], HTTPResponse]


class LocalHTTPServer:
    """Serves ``handler`` on ``http://127.0.0.1:<free port>`` until :meth:`stop`."""

    def __init__(self, handler: Handler):
        self.handler = handler
        self.requests: list[HTTPRequest] = []
        self._lock = threading.Lock()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else every response waits ~40 ms for a delayed ACK

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = HTTPRequest(
                    self.command,
                    unquote(parts.path),
                    dict(parse_qsl(parts.query, keep_blank_values=True)),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                with outer._lock:
                    outer.requests.append(request)
                try:
                    response = outer.handler(request)
                except Exception as exc:  # a bug in the test's handler: answer 500, keep serving
                    response = HTTPResponse(500, {"error": f"{type(exc).__name__}: {exc}"})
                body = (
                    response.body
                    if isinstance(response.body, bytes)
                    else json.dumps(response.body, ensure_ascii=False).encode("utf-8")
                )
                self.send_response(response.status)
                headers = {"Content-Type": "application/json; charset=utf-8", **response.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

        class _Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up (a timeout test) is not the server's problem

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="etl-test-http",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def start(self) -> LocalHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["HTTPRequest", "HTTPResponse", "LocalHTTPServer"]
