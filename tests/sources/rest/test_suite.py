"""RESTSource runs the standard connector suite (incremental, offset pages of 7)."""

from __future__ import annotations

from typing import Any

import pytest

from etl_express.sources import RESTSource, Source
from etl_express.sources.rest import Incremental, JSONCursorPaginator, OffsetPaginator, RetryPolicy
from etl_express.testing import MakeSource, SourceTestSuite

from .conftest import FakeAPI

FAST = RetryPolicy(max_attempts=3, backoff_base=0.001)


class TestRESTSourceSuite(SourceTestSuite):
    @pytest.fixture
    def state_url(self, pg_url: str) -> str:
        return pg_url

    @pytest.fixture
    def make_source(self, api: FakeAPI) -> MakeSource:
        def make(records: list[dict[str, Any]]) -> Source:
            return RESTSource(
                api.url,
                f"{api.add(records)}/offset",
                primary_key="id",
                retry=FAST,
                paginator=OffsetPaginator(limit=7, total_path="total"),
                records_path="data.items",
                incremental=Incremental(cursor_field="updated_at", param="since"),
            )

        return make

    @pytest.fixture
    def bad_source(self) -> Source:
        return RESTSource(
            "http://127.0.0.1:9", "items", retry=RetryPolicy(max_attempts=2, backoff_base=0)
        )


class TestRESTSourceCursorSuite(SourceTestSuite):
    """A full-refresh (not incremental) source with cursor pagination."""

    @pytest.fixture
    def state_url(self, pg_url: str) -> str:
        return pg_url

    @pytest.fixture
    def make_source(self, api: FakeAPI) -> MakeSource:
        return lambda records: RESTSource(
            api.url,
            f"{api.add(records)}/cursor",
            primary_key="id",
            retry=FAST,
            paginator=JSONCursorPaginator("meta.next_cursor"),
            records_path="items",
        )

    @pytest.fixture
    def bad_source(self, api: FakeAPI) -> Source:
        return RESTSource(api.url, "missing/here", retry=FAST)
