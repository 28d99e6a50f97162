"""The standard test suite every etl-express connector runs, built-in or third-party.

Each data module is tested for data loss, duplication and empty values the same way.
:class:`SourceTestSuite` is a pytest base class (like singer-sdk's ``get_tap_test_class``):
a connector's test module subclasses it and overrides one fixture, ``make_source`` — a
function that puts a list of records where a new source instance reads them (a table, a
folder of files, a local HTTP server) and returns that source. pytest then collects the
inherited tests, which check that:

* the source yields :class:`~etl_express.Batch` objects in the common format (snake_case
  names, JSON-serializable records and positions);
* every record arrives exactly once — counts and content equal the fixture's records;
* a run killed after any batch and resumed from its checkpoint, and a re-run after a
  finished run, add nothing twice (an incremental re-run reads nothing);
* empty values (null, ``""``, whitespace, ``[]``) come out unchanged, or as the connector
  documents through :meth:`SourceTestSuite.expected_empty`;
* an empty source is a clean run with zero rows;
* bad input (``bad_source`` fixture) raises an :class:`~etl_express.ETLError` with a hint,
  or is rejected record by record with a reason;
* a real :class:`~etl_express.Pipeline` run (state in PostgreSQL, the ``state_url``
  fixture) loads every record once and a second run duplicates nothing.

Example — ``tests/test_suite.py`` of a package ``etl-express-myapi``::

    import pytest
    from etl_express.testing import LocalHTTPServer, HTTPResponse, SourceTestSuite
    from etl_express_myapi import MyAPISource

    class TestMyAPISource(SourceTestSuite):
        @pytest.fixture
        def make_source(self):
            servers = []

            def make(records):
                def api(request):
                    offset = int(request.query.get("offset", 0))
                    return HTTPResponse(200, {"data": records[offset : offset + 10]})

                servers.append(LocalHTTPServer(api).start())
                return MyAPISource(base_url=servers[-1].url, page_size=10)

            yield make
            for server in servers:
                server.stop()

        @pytest.fixture
        def bad_source(self):
            return MyAPISource(base_url="http://127.0.0.1:9", page_size=10)  # nothing listens

Override ``records`` for a connector-specific dataset, :meth:`SourceTestSuite.expected`
when the connector converts values, and ``state_url`` to point the pipeline test at a
PostgreSQL server (default: ``ETL_EXPRESS_DATABASE_URL`` or the embedded server).
Requires pytest.
"""

from .http import HTTPRequest, HTTPResponse, LocalHTTPServer
from .suite import (
    MakeSource,
    MemorySink,
    SourceTestSuite,
    assert_same_records,
    common_records,
    default_records,
    empty_value_records,
    nested_as_json_text,
    records_of,
    roundtrip,
)

__all__ = [
    "HTTPRequest",
    "HTTPResponse",
    "LocalHTTPServer",
    "MakeSource",
    "MemorySink",
    "SourceTestSuite",
    "assert_same_records",
    "common_records",
    "default_records",
    "empty_value_records",
    "nested_as_json_text",
    "records_of",
    "roundtrip",
]
