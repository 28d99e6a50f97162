"""SQLSource runs the standard connector suite on PostgreSQL, SQLite and MariaDB."""

from __future__ import annotations

from typing import Any

import pytest

from etl_express.sources import Source, SQLSource
from etl_express.testing import MakeSource, SourceTestSuite, common_records, nested_as_json_text

from .conftest import MakeTable, create_table


class TextColumnsSuite(SourceTestSuite):
    def expected(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # create_table stores lists as JSON text in a text column: text is what comes back
        return common_records(nested_as_json_text(records))


class TestSQLSourcePostgresSuite(TextColumnsSuite):
    @pytest.fixture
    def state_url(self, pg_url: str) -> str:
        return pg_url

    @pytest.fixture
    def make_source(self, pg_url: str, schema: str) -> MakeSource:
        return lambda records: SQLSource(
            pg_url, create_table(pg_url, records, schema=schema), primary_key="id", batch_size=7
        )

    @pytest.fixture
    def bad_source(self, pg_url: str, schema: str) -> Source:
        return SQLSource(pg_url, f"{schema}.no_such_table", primary_key="id")


class TestSQLSourceSQLiteSuite(TextColumnsSuite):
    @pytest.fixture
    def state_url(self, pg_url: str) -> str:
        return pg_url

    @pytest.fixture
    def make_source(self, sqlite_url: str) -> MakeSource:
        return lambda records: SQLSource(
            sqlite_url, create_table(sqlite_url, records), primary_key="id", batch_size=7
        )

    @pytest.fixture
    def bad_source(self, sqlite_url: str) -> Source:
        return SQLSource(sqlite_url, "no_such_table", primary_key="id")


@pytest.mark.mysql
class TestSQLSourceMariaDBSuite(TextColumnsSuite):
    @pytest.fixture
    def state_url(self, pg_url: str) -> str:
        return pg_url

    def expected(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # MariaDB's BOOLEAN is TINYINT(1): it arrives as a boolean all the same
        return common_records(nested_as_json_text(records))

    @pytest.fixture
    def make_source(self, mysql_url: str, mysql_tables: MakeTable) -> MakeSource:
        return lambda records: SQLSource(
            mysql_url, mysql_tables(records), primary_key="id", batch_size=7
        )

    @pytest.fixture
    def bad_source(self, mysql_url: str) -> Source:
        return SQLSource(mysql_url, "no_such_table_etl", primary_key="id")
