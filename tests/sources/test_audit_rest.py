"""Connector audit: RESTSource against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

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


def _paged(page_two: HTTPResponse) -> LocalHTTPServer:
    def handler(req: HTTPRequest) -> HTTPResponse:
        page = int(req.query.get("page", 1))
        if page == 2:
            return page_two
        return HTTPResponse(200, {"data": {"items": ROWS[(page - 1) * 3 : page * 3]}})

    return LocalHTTPServer(handler)


def test_a_200_answer_without_the_records_path_is_an_error_not_the_last_page() -> None:
    # an error object in a 200 answer ended the pagination: page 3 on were silently lost

    from etl_express.errors import SourceError
    from etl_express.sources.rest import PageNumberPaginator

    with _paged(HTTPResponse(200, {"error": {"message": "quota exceeded"}})) as server:
        source = RESTSource(
            server.url, "items", paginator=PageNumberPaginator(), records_path="data.items"
        )
        batches = []
        with pytest.raises(
            SourceError, match=r"records_path 'data\.items' is not in the response"
        ) as exc:
            for batch in source.read():
                batches.append(batch)
        assert "keys: ['error']" in str(exc.value) and "quota" not in str(exc.value)
        assert records_of(batches) == ROWS[:3]  # the resumed run starts again at page 2


def test_empty_pages_in_any_style_still_end_the_pagination() -> None:
    from etl_express.sources.rest import PageNumberPaginator

    for last in (
        HTTPResponse(200, {"data": {"items": None}}),
        HTTPResponse(200, {"data": None}),
        HTTPResponse(200, {"data": {"items": []}}),
        HTTPResponse(200, []),
        HTTPResponse(200, {}),
        HTTPResponse(204, b""),
    ):
        with _paged(last) as server:
            source = RESTSource(
                server.url, "items", paginator=PageNumberPaginator(), records_path="data.items"
            )
            assert records_of(list(source.read())) == ROWS[:3], last


def test_an_api_key_the_server_echoes_into_its_next_link_is_not_stored_in_the_checkpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # DRF-style next links repeat the whole query string, the API key from a secret included
    from urllib.parse import urlencode

    from etl_express import secret
    from etl_express.sources.rest import APIKeyAuth, HeaderLinkPaginator, JSONLinkPaginator

    monkeypatch.setenv("AUDIT_API_KEY", "k3y-from-a-secret-0f9")
    rows = [{"id": i} for i in range(1, 8)]

    def handler(req: HTTPRequest) -> HTTPResponse:
        if req.query.get("api_key") != "k3y-from-a-secret-0f9":
            return HTTPResponse(401, {"error": "no key"})
        page = int(req.query.get("page", 1))
        link = f"/items?{urlencode({**req.query, 'page': page + 1})}" if page < 3 else None
        headers = {"Link": f'<{link}>; rel="next"'} if link else {}
        return HTTPResponse(200, {"items": rows[(page - 1) * 3 : page * 3], "next": link}, headers)

    with LocalHTTPServer(handler) as server:
        for paginator in (JSONLinkPaginator("next"), HeaderLinkPaginator()):
            source = RESTSource(
                server.url,
                "items",
                paginator=paginator,
                auth=APIKeyAuth(secret("AUDIT_API_KEY"), name="api_key", location="query"),
            )
            batches = list(source.read())
            assert records_of(batches) == rows
            assert "k3y" not in json.dumps([b.position for b in batches])
            resumed = list(source.read(batches[0].position))  # the auth adds the key again
            assert records_of(resumed) == rows[3:]
