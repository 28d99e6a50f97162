"""Narrow paginator unit tests (httpx.MockTransport); end-to-end ones are in test_source.py."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from etl_express.errors import SourceError
from etl_express.sources.rest import (
    HeaderLinkPaginator,
    JSONCursorPaginator,
    JSONLinkPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    PageRequest,
)


def _response(
    body: Any = None,
    headers: dict[str, str] | None = None,
    url: str = "https://api.test/items?page=1",
) -> httpx.Response:
    return httpx.Response(
        200, content=json.dumps(body).encode(), headers=headers, request=httpx.Request("GET", url)
    )


def test_offset_stops_at_total_and_applies_its_params() -> None:
    p = OffsetPaginator(limit=10, total_path="meta.total", offset_param="$skip", limit_param="$top")
    request = PageRequest("GET", "https://api.test/items")
    p.update_request(request)
    assert request.params == {"$skip": 0, "$top": 10}
    p.update_state(_response({"meta": {"total": 15}}), [{}] * 10)
    assert p.has_next_page and p.get_state() == {"offset": 10}
    p.update_request(request)
    assert request.params["$skip"] == 10
    p.update_state(_response({"meta": {"total": 15}}), [{}] * 5)
    assert not p.has_next_page


def test_offset_total_that_is_not_a_number_is_an_error() -> None:
    p = OffsetPaginator(limit=10, total_path="total")
    with pytest.raises(SourceError, match="not a number"):
        p.update_state(_response({"total": "many"}), [{}])


@pytest.mark.parametrize(
    "paginator",
    [OffsetPaginator(limit=5), PageNumberPaginator(), JSONCursorPaginator(), JSONLinkPaginator()],
)
def test_every_paginator_stops_on_an_empty_page(paginator: Any) -> None:
    paginator.update_state(_response({"next_cursor": "x", "next": "/items?page=9"}), [])
    assert not paginator.has_next_page


def test_page_number_resumes_from_state() -> None:
    p = PageNumberPaginator(base_page=0, page_size=50)
    p.set_state({"page": 4})
    request = PageRequest("GET", "https://api.test/items")
    p.update_request(request)
    assert request.params == {"page": 4, "per_page": 50}


def test_cursor_refuses_a_repeated_token() -> None:
    p = JSONCursorPaginator("next_cursor")
    p.update_state(_response({"next_cursor": "a"}), [{}])
    p.update_state(_response({"next_cursor": "b"}), [{}])
    with pytest.raises(SourceError, match="already gave"):
        p.update_state(_response({"next_cursor": "a"}), [{}])


def test_cursor_restored_from_state_is_not_accepted_again() -> None:
    p = JSONCursorPaginator()
    p.set_state({"token": "a"})
    with pytest.raises(SourceError, match="already gave"):
        p.update_state(_response({"next_cursor": "a"}), [{}])


def test_link_header_resolves_relative_urls_and_clears_params() -> None:
    p = HeaderLinkPaginator()
    p.update_state(_response([1], {"Link": '</items?page=2>; rel="next"'}), [{}])
    request = PageRequest("GET", "https://api.test/items", params={"page": 1, "q": "x"})
    p.update_request(request)
    assert request.url == "https://api.test/items?page=2" and request.params == {}
    p.update_state(_response([1], {"Link": '</items?page=1>; rel="prev"'}), [{}])
    assert not p.has_next_page


def test_fresh_copy_forgets_seen_tokens() -> None:
    p = JSONCursorPaginator()
    p.update_state(_response({"next_cursor": "a"}), [{}])
    q = p.fresh()
    q.update_state(_response({"next_cursor": "a"}), [{}])  # no error: a new run
    assert q.has_next_page and q.get_state() == {"token": "a"}


def test_paginator_through_mock_transport() -> None:
    from etl_express.sources import RESTSource

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", 1))
        return httpx.Response(200, json={"items": [{"id": page}] if page <= 3 else []})

    source = RESTSource(
        "https://api.test",
        "items",
        paginator=PageNumberPaginator(),
        records_path="items",
        transport=httpx.MockTransport(handler),
    )
    assert [r["id"] for b in source.read() for r in b.data] == [1, 2, 3]
