"""What a REST source says about its requests holds no record's value and no key.

A paginator may send the next page to a URL or a token the server handed out, made of the
last record's values (``/people/after/<e-mail>``, ``?cursor=<name>``); the read-ahead thread
sends it before the engine has judged the page's position. Retry log lines, errors and the
request lines httpx itself logs through the standard library (what Airflow's task log and any
``logging.basicConfig(level=INFO)`` print) name the request by the configured URL and the
page instead; an API key sent as a query parameter is not in them either. A cursor that is a
person's name is refused before it is committed as a checkpoint."""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import quote

import pytest
from loguru import logger

import etl_express as etl
from etl_express.errors import ETLError
from etl_express.sinks import PostgresSink
from etl_express.sources.rest import (
    APIKeyAuth,
    JSONCursorPaginator,
    JSONLinkPaginator,
    RESTSource,
    RetryPolicy,
)
from etl_express.testing.http import HTTPRequest, HTTPResponse, LocalHTTPServer

from ..conftest import pg_exec

EMAIL = "leak.canary.7f3a@example.org"
NAME = "Смирнова Анна Петровна"
API_KEY = "k" + secrets.token_hex(16)
CANARIES = (EMAIL, quote(EMAIL), quote(EMAIL, safe=""), NAME, quote(NAME), API_KEY)


def _api(request: HTTPRequest) -> HTTPResponse:
    items = [{"id": 1, "city": "Тверь"}, {"id": 2, "city": "Тверь"}]
    if request.path.endswith("/linked"):  # the next link's path is the last e-mail; it fails
        return HTTPResponse(200, {"items": items, "next": f"linked/after/{quote(EMAIL)}"})
    if "/after/" in request.path:
        return HTTPResponse(503, {"error": "busy"})
    if request.path.endswith("/by-name"):  # keyset over names: the token is the last name
        if request.query.get("cursor"):
            return HTTPResponse(404, {})
        return HTTPResponse(200, {"items": items, "next_cursor": NAME})
    return HTTPResponse(404, {})


def _run(pipeline: etl.Pipeline) -> str:
    try:
        pipeline.run()
    except ETLError as exc:
        return str(exc)
    return ""


def test_requests_are_named_by_configuration_in_logs_and_errors(
    pg_url: str, schema: str, pipeline_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    lines: list[str] = []
    logger.enable("etl_express")
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG")
    caplog.set_level(logging.INFO, logger="httpx")
    try:
        with LocalHTTPServer(_api) as server:
            source = RESTSource(
                server.url,
                "linked",
                records_path="items",
                primary_key="id",
                paginator=JSONLinkPaginator(),
                auth=APIKeyAuth(API_KEY, name="api_key", location="query"),
                retry=RetryPolicy(attempts=2, backoff=0.01, jitter=0),
            )
            pipeline = etl.Pipeline(
                pipeline_name,
                source,
                sink=PostgresSink(f"{schema}.people", url=pg_url),
                progress=False,
            )
            error = _run(pipeline)
    finally:
        logger.remove(sink)
        logger.disable("etl_express")
    retried = [line for line in lines if "retry 1/2" in line]
    assert retried and "linked (page 2)" in retried[0], lines
    requests = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("linked (page 1)" in r and "200 OK" in r for r in requests), requests
    assert any("linked (page 2)" in r and "503" in r for r in requests), requests
    text = error + "\n".join(lines) + "\n".join(requests)
    assert not [c for c in CANARIES if c in text], text


def test_other_httpx_clients_lines_are_left_as_they_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import httpx

    from etl_express.sources.rest.client import RESTClient

    RESTClient().close()  # installs the filter
    caplog.set_level(logging.INFO, logger="httpx")
    with LocalHTTPServer(_api) as server, httpx.Client() as client:
        client.get(f"{server.url}/other?q=1")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert "/other?q=1" in line


def test_a_cursor_holding_a_name_is_never_committed(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    with LocalHTTPServer(_api) as server:
        pipeline = etl.Pipeline(
            pipeline_name,
            RESTSource(
                server.url,
                "by-name",
                records_path="items",
                primary_key="id",
                paginator=JSONCursorPaginator(),
            ),
            sink=PostgresSink(f"{schema}.people", url=pg_url),
            progress=False,
        )
        error = _run(pipeline)
    assert "a person's name" in error and NAME not in error, error
    stored: list[Any] = pg_exec(
        pg_url,
        "SELECT position::text FROM etl_express.checkpoints WHERE pipeline = %s",
        [pipeline_name],
    )
    assert not any(NAME in str(row) for row in stored), stored


def test_a_body_keyed_by_personal_data_is_described_without_its_keys(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    """An API answering a map keyed by e-mail (no list of records in it): the error that says
    the records were not found lists the body's plain keys only."""

    def api(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(200, {EMAIL: {"plan": "gold"}, NAME: {"plan": "free"}, "total": 2})

    with LocalHTTPServer(api) as server:
        pipeline = etl.Pipeline(
            pipeline_name,
            RESTSource(server.url, "members", primary_key="id"),
            sink=PostgresSink(f"{schema}.members", url=pg_url),
            progress=False,
        )
        error = _run(pipeline)
    assert "cannot find the records" in error and "'*', 'total'" in error, error
    assert not [c for c in CANARIES if c in error], error
