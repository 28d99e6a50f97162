"""OneCODataSource runs the standard connector suite (documents, incremental by Date)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from etl_express.sources import OneCODataSource, Source
from etl_express.sources.rest import RetryPolicy
from etl_express.testing import MakeSource, SourceTestSuite, common_records

from .conftest import PASSWORD, USER, FakeOneC, as_common, documents

FAST = RetryPolicy(max_attempts=2, backoff_base=0.001)
BAD_PASSWORD = "nope"  # pragma: allowlist secret


class TestOneCODataSourceSuite(SourceTestSuite):
    @pytest.fixture
    def state_url(self, pg_url: str) -> str:
        return pg_url

    @pytest.fixture
    def records(self) -> list[dict[str, Any]]:
        return documents(23)

    def expected(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return common_records([as_common(r) for r in records])

    @pytest.fixture
    def make_source(self, onec: FakeOneC) -> MakeSource:
        def make(records: list[dict[str, Any]]) -> Source:
            entity = "Document_Заказ" + uuid.uuid4().hex[:8]
            onec.entities[entity] = records
            return OneCODataSource(
                f"{onec.url}/trade",
                entity,
                username=USER,
                password=PASSWORD,
                page_size=7,
                date_field="Date",
                retry=FAST,
            )

        return make

    @pytest.fixture
    def bad_source(self, onec: FakeOneC) -> Source:
        onec.entities["Catalog_Банки"] = []
        return OneCODataSource(
            f"{onec.url}/trade", "Catalog_Банки", username=USER, password=BAD_PASSWORD, retry=FAST
        )
