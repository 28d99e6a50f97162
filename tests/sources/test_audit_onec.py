"""Connector audit: OneCODataSource against a 1C-like OData server on 127.0.0.1."""

from __future__ import annotations

import pytest

from etl_express.errors import SourceError
from etl_express.sources import OneCODataSource
from etl_express.sources.rest import RetryPolicy
from etl_express.testing import HTTPRequest, HTTPResponse, LocalHTTPServer


def test_an_unpublished_entity_names_what_to_check_in_1c() -> None:
    # 1C answers 400 for an entity set outside its OData composition; the hint spoke of
    # "query parameters (params=, paginator...)", options a 1C source does not even have
    def handler(req: HTTPRequest) -> HTTPResponse:
        error = {"code": "14", "message": {"lang": "ru", "value": "Не найден объект"}}
        return HTTPResponse(400, {"odata.error": error})

    with LocalHTTPServer(handler) as server:
        source = OneCODataSource(
            server.url + "/trade",
            "Document_ЗаказКлиента",
            username="u",
            password="p",
            retry=RetryPolicy(attempts=0),
        )
        with pytest.raises(SourceError) as exc:
            list(source.read())
    text = str(exc.value)
    # the entity as written, not percent-encoded (Document_%D0%97%D0%B0...)
    assert "standard.odata/Document_ЗаказКлиента (page 1)" in text and "HTTP 400" in text
    assert "OData composition" in text and "entity=" in text and "params=" not in text
