"""RESTSource against a real HTTP server on 127.0.0.1 (see conftest.FakeAPI)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from etl_express.errors import ETLConfigError, SourceError
from etl_express.sources import RESTSource
from etl_express.sources.rest import (
    APIKeyAuth,
    BasicAuth,
    BearerAuth,
    HeaderCursorPaginator,
    HeaderLinkPaginator,
    Incremental,
    JSONCursorPaginator,
    JSONLinkPaginator,
    OAuth2ClientCredentials,
    OffsetPaginator,
    PageNumberPaginator,
    RetryPolicy,
    SinglePagePaginator,
)
from etl_express.testing import assert_same_records, common_records, default_records, records_of

from .conftest import FakeAPI

FAST = RetryPolicy(max_attempts=6, backoff_base=0.001, backoff_max=0.01)


@pytest.fixture
def warnings_logged() -> Iterator[list[str]]:
    messages: list[str] = []
    logger.enable("etl_express")
    handler = logger.add(lambda m: messages.append(str(m)), level="WARNING", format="{message}")
    yield messages
    logger.remove(handler)
    logger.disable("etl_express")


PAGINATORS = {
    "single": (lambda: SinglePagePaginator(), None),
    "offset": (lambda: OffsetPaginator(limit=6, total_path="total"), "data.items"),
    "offset_no_total": (lambda: OffsetPaginator(limit=6), "data.items"),
    "page": (lambda: PageNumberPaginator(total_path="total_pages"), "results"),
    "page_no_total": (lambda: PageNumberPaginator(), "results"),
    "cursor": (lambda: JSONCursorPaginator("meta.next_cursor"), "items"),
    "header_cursor": (lambda: HeaderCursorPaginator(), None),
    "link_header": (lambda: HeaderLinkPaginator(), "data"),
    "next_url": (lambda: JSONLinkPaginator("next"), "items"),
}


def _source(api: FakeAPI, name: str, style: str, **kwargs: Any) -> RESTSource:
    endpoint = style.removesuffix("_no_total")
    paginator, path = PAGINATORS[style]
    kwargs.setdefault("retry", FAST)
    return RESTSource(
        api.url,
        f"{name}/{endpoint}",
        paginator=paginator(),
        records_path=path,
        primary_key="id",
        **kwargs,
    )


@pytest.mark.parametrize("style", sorted(PAGINATORS))
def test_every_paginator_returns_every_record_once(api: FakeAPI, style: str) -> None:
    records = default_records(23)
    source = _source(api, api.add(records), style)
    batches = list(source.read())
    assert_same_records(records_of(batches), common_records(records), style)
    assert batches[-1].position["complete"] is True
    if style != "single":
        assert len([b for b in batches if b.num_rows]) >= 4


@pytest.mark.parametrize(
    "style", ["offset", "page", "cursor", "header_cursor", "link_header", "next_url"]
)
def test_resume_from_every_page(api: FakeAPI, style: str) -> None:
    records = default_records(23)
    source = _source(api, api.add(records), style)
    batches = list(source.read())
    for k in range(len(batches) - 1):
        rest = list(source.read(batches[k].position))
        assert_same_records(
            records_of(batches[: k + 1]) + records_of(rest),
            common_records(records),
            f"{style} resumed after page {k + 1}",
        )


def test_429_and_503_are_retried_honouring_retry_after(
    api: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etl_express.sources.rest import client

    slept: list[float] = []
    monkeypatch.setattr(client.time, "sleep", slept.append)
    api.fail(None, (429, {"Retry-After": "2"}), None, (503, {}), (502, {}))
    records = default_records(30)
    source = _source(api, api.add(records), "offset")
    assert_same_records(records_of(source.read()), common_records(records), "flaky server")
    assert 2.0 in slept  # the server's Retry-After, not the tiny backoff
    assert all(s <= 0.01 for s in slept if s != 2.0)
    assert api.data_requests > 6  # failures happened and were retried


def test_retries_give_up_with_a_clear_error(api: FakeAPI) -> None:
    api.fail((503, {}))
    source = _source(
        api,
        api.add(default_records(3)),
        "single",
        retry=RetryPolicy(max_attempts=3, backoff_base=0),
    )
    with pytest.raises(SourceError, match="failed after 3 attempts: HTTP 503") as info:
        list(source.read())
    assert info.value.hint and api.data_requests == 3


def test_client_error_is_not_retried(api: FakeAPI) -> None:
    source = RESTSource(api.url, "nothing/here/at/all", retry=FAST)
    with pytest.raises(SourceError, match=r"HTTP 500|HTTP 404"):
        list(source.read())
    assert api.data_requests == 1 or api.data_requests == FAST.max_attempts


def test_connect_errors_are_retried_then_reported() -> None:
    source = RESTSource(
        "http://127.0.0.1:9", "items", retry=RetryPolicy(max_attempts=2, backoff_base=0)
    )
    with pytest.raises(SourceError, match="after 2 attempts: ConnectError"):
        list(source.read())


def test_repeated_cursor_is_refused(api: FakeAPI) -> None:
    source = RESTSource(
        api.url,
        f"{api.add(default_records(30))}/loop_cursor",
        retry=FAST,
        paginator=JSONCursorPaginator("meta.next_cursor"),
        records_path="items",
    )
    with pytest.raises(SourceError, match="page token it already gave"):
        list(source.read())
    assert api.data_requests == 2  # page 1 gave c7, page 2 gave c7 again


def test_null_total_ends_with_a_warning(api: FakeAPI, warnings_logged: list[str]) -> None:
    source = RESTSource(
        api.url,
        f"{api.add(default_records(30))}/null_total",
        retry=FAST,
        paginator=OffsetPaginator(limit=10, total_path="total"),
        records_path="data.items",
    )
    rows = records_of(list(source.read()))
    assert len(rows) == 10 and api.data_requests == 1
    assert any("total 'total' is missing or null" in m for m in warnings_logged)


def test_server_ignoring_the_page_parameter_is_stopped(api: FakeAPI) -> None:
    source = RESTSource(
        api.url,
        f"{api.add(default_records(30))}/ignores_offset",
        retry=FAST,
        paginator=OffsetPaginator(limit=5),
        records_path="data.items",
    )
    with pytest.raises(SourceError, match="same page twice"):
        list(source.read())
    assert api.data_requests == 2


def test_max_pages_stops_with_a_warning(api: FakeAPI, warnings_logged: list[str]) -> None:
    source = _source(api, api.add(default_records(30)), "offset", max_pages=2)
    assert len(records_of(list(source.read()))) == 12
    assert any("max_pages=2" in m for m in warnings_logged)


def test_expired_oauth2_token_is_refreshed(api: FakeAPI) -> None:
    api.oauth = True
    records = default_records(23)
    auth = OAuth2ClientCredentials(f"{api.url}/token", "client", "s3cret")
    source = RESTSource(
        api.url,
        f"{api.add(records)}/offset",
        paginator=OffsetPaginator(limit=3, total_path="total"),
        records_path="data.items",
        auth=auth,
        retry=FAST,
    )
    assert_same_records(records_of(source.read()), common_records(records), "oauth2")
    assert api.tokens_issued == 3 == auth.refreshes  # 8 pages, 3 uses a token, refreshed on 401
    assert "s3cret" not in repr(auth) and "s3cret" not in repr(source)


def test_oauth2_token_is_refreshed_before_it_expires(api: FakeAPI) -> None:
    api.oauth = True
    auth = OAuth2ClientCredentials(
        f"{api.url}/token", "client", "s3cret", leeway=7200
    )  # always stale
    source = RESTSource(
        api.url,
        f"{api.add(default_records(10))}/offset",
        records_path="data.items",
        paginator=OffsetPaginator(limit=5, total_path="total"),
        auth=auth,
        retry=FAST,
    )
    assert len(records_of(source.read())) == 10
    assert api.tokens_issued == 2  # one fresh token per request, no 401 needed


def test_oauth2_bad_credentials_are_reported(api: FakeAPI) -> None:
    api.oauth = True
    auth = OAuth2ClientCredentials(f"{api.url}/token", "client", "wrong")
    source = RESTSource(api.url, f"{api.add(default_records(3))}/single", auth=auth, retry=FAST)
    with pytest.raises(SourceError, match=r"token request .* failed with HTTP 401") as info:
        list(source.read())
    assert "wrong" not in str(info.value)


def test_incremental_runs_fetch_only_new_records(api: FakeAPI) -> None:
    records = default_records(20)
    name = api.add(records)
    source = _source(
        api, name, "offset", incremental=Incremental(cursor_field="updated_at", param="since")
    )
    first = list(source.read())
    assert_same_records(records_of(first), common_records(records), "first run")
    position = first[-1].position
    assert position["cursor"] == max(r["updated_at"] for r in records) and position["complete"]

    assert records_of(source.read(position)) == []  # nothing new
    new = [
        {**r, "id": 100 + r["id"], "updated_at": "2024-02-01T00:00:00+00:00"} for r in records[:9]
    ]
    records.extend(new)
    second = list(source.read(position))
    assert_same_records(records_of(second), common_records(new), "second run")
    assert api.server.requests[-1].query["since"] == position["cursor"]
    assert second[-1].position["cursor"] == "2024-02-01T00:00:00+00:00"


def test_incremental_initial_value_and_template(api: FakeAPI) -> None:
    records = default_records(20)
    source = _source(
        api,
        api.add(records),
        "offset",
        incremental=Incremental(
            cursor_field="updated_at",
            param="since",
            initial_value="2024-01-15",
            template="{value}T00:00:00+00:00",
        ),
    )
    rows = records_of(source.read())
    assert_same_records(
        rows,
        common_records([r for r in records if r["updated_at"] > "2024-01-15T00:00:00+00:00"]),
        "initial value",
    )


def test_concurrent_partitions_per_parent_record(api: FakeAPI) -> None:
    orders = [{"id": i, "customer": 1 + i % 5, "total": i * 2.5} for i in range(1, 41)]
    name = api.add(orders)
    source = RESTSource(
        api.url,
        f"{name}/orders",
        primary_key="id",
        retry=FAST,
        concurrency=3,
        partitions=lambda: [{"customer": c} for c in range(1, 6)],
    )
    assert source.partitions() == [{"customer": c} for c in range(1, 6)]
    batches = list(source.read())
    assert_same_records(records_of(batches), common_records(orders), "5 parents, 3 threads")
    assert batches[-1].position["complete"] is True
    # one partition alone (how the pipeline runs them on separate workers)
    assert_same_records(
        records_of(source.read(partition={"customer": 2})),
        common_records([o for o in orders if o["customer"] == 2]),
        "one partition",
    )


def test_concurrent_resume_skips_finished_partitions(api: FakeAPI) -> None:
    orders = [{"id": i, "customer": 1 + i % 4} for i in range(1, 21)]
    source = RESTSource(
        api.url,
        f"{api.add(orders)}/orders",
        primary_key="id",
        retry=FAST,
        concurrency=2,
        partitions=[{"customer": c} for c in range(1, 5)],
    )
    batches = list(source.read())
    before = api.data_requests
    rest = list(source.read(batches[1].position))
    assert_same_records(
        records_of(batches[:2]) + records_of(rest), common_records(orders), "resumed"
    )
    assert api.data_requests - before == 2


def test_concurrent_errors_surface(api: FakeAPI) -> None:
    source = RESTSource(
        api.url,
        "{x}/orders",
        retry=RetryPolicy(max_attempts=1),
        concurrency=2,
        partitions=[{"x": "missing1"}, {"x": "missing2"}],
    )
    with pytest.raises(SourceError):
        list(source.read())


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        (BearerAuth("t0ken"), "authorization", "Bearer t0ken"),
        (BasicAuth("user", "pw"), "authorization", "Basic dXNlcjpwdw=="),
        (APIKeyAuth("k3y", name="X-API-Key"), "x-api-key", "k3y"),
    ],
)
def test_header_auth_is_sent(auth: Any, header: str, value: str) -> None:
    from etl_express.testing import HTTPResponse, LocalHTTPServer

    with LocalHTTPServer(lambda r: HTTPResponse(200, [{"id": 1}])) as server:
        rows = records_of(RESTSource(server.url, "x", auth=auth).read())
        assert rows == [{"id": 1}]
        assert server.requests[0].headers[header] == value
    assert "t0ken" not in repr(auth) and "pw" not in repr(auth).replace("password", "")


def test_api_key_in_query_never_shows_in_errors() -> None:
    from etl_express.testing import HTTPResponse, LocalHTTPServer

    with LocalHTTPServer(lambda r: HTTPResponse(403, {"error": "no"})) as server:
        source = RESTSource(
            server.url, "x", auth=APIKeyAuth("k3y-secret", name="api_key", location="query")
        )
        with pytest.raises(SourceError, match="HTTP 403") as info:
            list(source.read())
        assert server.requests[0].query["api_key"] == "k3y-secret"  # pragma: allowlist secret
    assert "k3y-secret" not in str(info.value)


def test_non_json_body_is_reported() -> None:
    from etl_express.testing import HTTPResponse, LocalHTTPServer

    with (
        LocalHTTPServer(
            lambda r: HTTPResponse(200, b"<html>login</html>", {"Content-Type": "text/html"})
        ) as server,
        pytest.raises(SourceError, match=r"not JSON .*text/html"),
    ):
        list(RESTSource(server.url, "x").read())


def test_configuration_errors_are_clear() -> None:
    with pytest.raises(ETLConfigError, match="http"):
        RESTSource("ftp://example", "x")
    with pytest.raises(ETLConfigError, match="paginator must be a BasePaginator"):
        RESTSource("http://x", "y", paginator="offset")  # type: ignore[arg-type]
    with pytest.raises(ETLConfigError, match="placeholder"):
        list(RESTSource("http://x", "{customer}/orders").read())


def test_timeouts_are_retried_then_reported() -> None:
    import time

    from etl_express.testing import HTTPResponse, LocalHTTPServer

    def slow(request: Any) -> HTTPResponse:
        time.sleep(0.3)
        return HTTPResponse(200, [])

    with LocalHTTPServer(slow) as server:
        source = RESTSource(
            server.url, "x", timeout=0.05, retry=RetryPolicy(max_attempts=2, backoff_base=0)
        )
        with pytest.raises(SourceError, match="after 2 attempts: ReadTimeout"):
            list(source.read())
        assert len(server.requests) == 2


def test_rate_limit_is_applied_to_every_request(
    api: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etl_express.sources.rest import client

    clock = [0.0]
    slept: list[float] = []
    monkeypatch.setattr(client.time, "monotonic", lambda: clock[0])  # time moves only by sleeping

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(client.time, "sleep", sleep)
    source = _source(api, api.add(default_records(20)), "offset", rate_limit=2.0)  # 4 pages of 6
    assert len(records_of(source.read())) == 20
    assert slept == pytest.approx([0.5, 0.5, 0.5])  # the first request uses the burst


def test_sources_pickle_for_worker_processes(api: FakeAPI) -> None:
    import pickle

    from etl_express.sources import OneCODataSource

    auth = OAuth2ClientCredentials(f"{api.url}/token", "client", "s3cret")
    api.oauth = True
    source = RESTSource(
        api.url,
        f"{api.add(default_records(5))}/offset",
        auth=auth,
        rate_limit=100.0,
        paginator=OffsetPaginator(limit=2),
        retry=FAST,
        records_path="data.items",
    )
    assert len(records_of(source.read())) == 5
    copy = pickle.loads(pickle.dumps(source))
    assert copy.auth._token is None and len(records_of(copy.read())) == 5
    onec = OneCODataSource(
        "http://1c/trade", "Catalog_X", username="u", password="p", timezone="Europe/Moscow"
    )
    assert pickle.loads(pickle.dumps(onec)).entity == "Catalog_X"
