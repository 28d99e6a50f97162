"""Connector audit: RESTSource against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json

from etl_express.sources import RESTSource
from etl_express.sources.rest import JSONCursorPaginator, OffsetPaginator
from etl_express.testing import HTTPRequest, HTTPResponse, LocalHTTPServer, records_of

ROWS = [{"id": i, "name": f"Пётр {i}"} for i in range(1, 8)]


def test_json_in_the_charset_its_content_type_declares() -> None:
    # a corporate API answering application/json; charset=windows-1251
    def handler(req: HTTPRequest) -> HTTPResponse:
        offset = int(req.query.get("offset", 0))
        page = {"items": ROWS[offset : offset + 3], "next": "c" if offset == 0 else None}
        return HTTPResponse(
            200,
            json.dumps(page, ensure_ascii=False).encode("cp1251"),
            {"Content-Type": "application/json; charset=windows-1251"},
        )

    with LocalHTTPServer(handler) as server:
        source = RESTSource(server.url, "items", paginator=OffsetPaginator(limit=3))
        assert records_of(list(source.read())) == ROWS


def test_cursor_in_a_body_in_a_declared_charset_and_a_utf8_bom() -> None:
    def handler(req: HTTPRequest) -> HTTPResponse:
        cursor = req.query.get("cursor")
        page = {"items": ROWS[:4], "next": "дальше"} if cursor is None else {"items": ROWS[4:]}
        return HTTPResponse(
            200,
            b"\xef\xbb\xbf" + json.dumps(page, ensure_ascii=False).encode(),
            {"Content-Type": "application/json; charset=utf-8"},
        )

    with LocalHTTPServer(handler) as server:
        source = RESTSource(server.url, "items", paginator=JSONCursorPaginator("next"))
        assert records_of(list(source.read())) == ROWS
