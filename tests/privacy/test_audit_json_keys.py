"""Personal data in a JSON object's keys: an API that returns a map keyed by e-mail, phone
or name (``{"votes": {"a.b@example.org": 1}}``) holds the personal data in the keys, where
a detector that reads only the values finds nothing. The keys that are not plain names are
judged too — by the column's statistics on the first batch and value by value when they
appear later — and the run stops before the batch is written."""

from __future__ import annotations

from typing import Any

import pytest

import etl_express as etl
from etl_express.errors import AnonymizationError
from etl_express.sinks import PostgresSink
from etl_express.sources.rest import PageNumberPaginator, RESTSource
from etl_express.testing.http import HTTPRequest, HTTPResponse, LocalHTTPServer

from ..conftest import pg_exec

EMAIL = "leak.canary.7f3a@example.org"
PHONE = "+7 916 432-17-88"


def _records(page: int, late: bool) -> list[dict[str, Any]]:
    if late:  # page 1: keys that are plain names; page 2: one record keyed by a phone
        if page == 1:
            return [{"id": i, "payload": {"votes": {"yes": i, "no": 1}}} for i in range(1, 6)]
        return [{"id": 9, "payload": {"votes": {PHONE: 1}}}] if page == 2 else []
    if page > 1:
        return []
    emails = [EMAIL, *(f"user{i}.{i * 7}@example.org" for i in range(2, 6))]
    return [{"id": i, "payload": {"votes": {e: i}}} for i, e in enumerate(emails, 1)]


@pytest.mark.parametrize("late", [False, True], ids=["first-batch", "page-2-one-record"])
def test_personal_data_in_json_keys_stops_the_run_before_it_is_written(
    pg_url: str, schema: str, pipeline_name: str, late: bool
) -> None:
    def api(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(200, {"items": _records(int(request.query.get("page", 1)), late)})

    with LocalHTTPServer(api) as server:
        pipeline = etl.Pipeline(
            pipeline_name,
            RESTSource(
                server.url,
                "votes",
                records_path="items",
                primary_key="id",
                paginator=PageNumberPaginator(),
            ),
            sink=PostgresSink(f"{schema}.votes", url=pg_url),
            progress=False,
        )
        with pytest.raises(AnonymizationError) as err:
            pipeline.run()
    text = str(err.value)
    assert "'payload" in text and "<key>" in text, text
    assert ("a phone number" if late else "email") in text, text
    assert EMAIL not in text and "432-17-88" not in text
    exists = pg_exec(pg_url, f"SELECT to_regclass('{schema}.votes')")[0][0]
    written = pg_exec(pg_url, f"SELECT payload::text FROM {schema}.votes") if exists else []
    assert not any(EMAIL in str(r) or "432-17-88" in str(r) for r in written), written
