"""What only the data tells: a position made of a record's personal value (a REST API whose
keyset cursor is the last e-mail), and a column that appears mid-run. Against a real HTTP
server on 127.0.0.1 and the test PostgreSQL."""

from __future__ import annotations

import secrets
from typing import Any

import pyarrow as pa
import pytest
from loguru import logger

import etl_express as etl
from etl_express.anonymizers import Pseudonymize
from etl_express.errors import AnonymizationError, ETLConfigError
from etl_express.sinks import PostgresSink
from etl_express.sources.rest import JSONCursorPaginator, RESTSource
from etl_express.testing.http import HTTPRequest, HTTPResponse, LocalHTTPServer

from ..conftest import pg_exec

PEOPLE = [
    {"id": i, "email": f"kanareyka{i}.{secrets.token_hex(4)}@example.org"} for i in range(1, 7)
]


def _keyset_api(request: HTTPRequest) -> HTTPResponse:
    """Pages of two, ordered by e-mail; the cursor is the last e-mail of the page."""
    after = request.query.get("cursor")
    ordered = sorted(PEOPLE, key=lambda p: p["email"])
    rest = [p for p in ordered if after is None or p["email"] > after]
    page = rest[:2]
    return HTTPResponse(200, {"items": page, "next_cursor": page[-1]["email"] if page else None})


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> etl.SecretRef:
    monkeypatch.setenv("ETL_EXPRESS_RUNTIME_KEY", secrets.token_urlsafe(48))
    return etl.secret("RUNTIME_KEY")


def test_a_keyset_cursor_on_an_email_is_refused_before_any_write(
    pg_url: str, schema: str, pipeline_name: str, key: etl.SecretRef
) -> None:
    with LocalHTTPServer(_keyset_api) as server:
        pipeline = etl.Pipeline(
            pipeline_name,
            RESTSource(
                server.url,
                "people",
                records_path="items",
                paginator=JSONCursorPaginator(),
                primary_key="id",
                pii=["email"],
            ),
            anonymizers=[Pseudonymize(["email"], key=key)],
            sink=PostgresSink(f"{schema}.people", url=pg_url),
            progress=False,
        )
        with pytest.raises(ETLConfigError) as err:
            pipeline.run()
    text = str(err.value)
    assert "personal column 'email'" in text and "surrogate" in text
    assert not any(p["email"] in text for p in PEOPLE)
    assert pg_exec(pg_url, f"SELECT to_regclass('{schema}.people')") == [(None,)]
    for table in ("checkpoints", "runs"):
        stored = pg_exec(
            pg_url,
            f"SELECT t::text FROM etl_express.{table} t WHERE pipeline = %s",
            [pipeline_name],
        )
        assert not any(p["email"] in str(stored) for p in PEOPLE), table
    assert pg_exec(
        pg_url, "SELECT count(*) FROM etl_express.checkpoints WHERE pipeline = %s", [pipeline_name]
    ) == [(0,)]


def _growing_api(request: HTTPRequest) -> HTTPResponse:
    """Page 1 has no phone field; page 2 brings one (an API that omits empty fields)."""
    page = int(request.query.get("page", 1))
    if page == 1:
        return HTTPResponse(200, {"items": [{"id": 1, "email": "a@example.org"}]})
    if page == 2:
        items: list[dict[str, Any]] = [
            {"id": 2, "email": "b@example.org", "phone": "+7 916 555-01-32"},
            {"id": "two", "email": "c@example.org", "phone": "+7 916 555-01-33"},
        ]
        return HTTPResponse(200, {"items": items})
    return HTTPResponse(200, {"items": []})


def _phone_in(text: str) -> bool:
    """Whether a phone value of ``_growing_api`` appears in ``text``, as sent or as digits."""
    return any(v in text for v in ("555-01-3", "55501", "9165550"))


def test_a_column_appearing_mid_run_is_refused_before_its_first_write(
    pg_url: str, schema: str, pipeline_name: str, key: etl.SecretRef
) -> None:
    """Page 2 brings an untagged phone (two values: too few for the detector's statistics,
    so each value is judged alone): the run stops before page 2 is written; declared safe,
    the same run loads it."""
    from etl_express.sources.rest import PageNumberPaginator

    def pipeline(url: str, schema: pa.Schema | None = None, **kw: Any) -> etl.Pipeline:
        source = RESTSource(
            url,
            "people",
            records_path="items",
            paginator=PageNumberPaginator(),
            primary_key="id",
            pii=["email"],
            schema=schema,
        )
        return etl.Pipeline(
            pipeline_name,
            source,
            anonymizers=[Pseudonymize(["email"], key=key)],
            sink=PostgresSink(f"{schema}.people", url=pg_url),
            max_error_rate=1.0,
            progress=False,
            **kw,
        )

    with LocalHTTPServer(_growing_api) as server:
        lines: list[str] = []
        logger.enable("etl_express")
        sink = logger.add(lambda m: lines.append(str(m)), level="INFO")
        try:
            with pytest.raises(AnonymizationError) as err:
                pipeline(server.url).run()
            assert any("new column(s) ['phone'] planned" in line for line in lines), lines
            text = str(err.value)
            assert "['phone'] look like personal data" in text and "a phone number" in text, text
            # no phone value, as sent or as digits, in the message (not just "555": the random
            # schema name in its where= may hold that)
            assert "not_pii={'phone'" in text and "schema=" in text and not _phone_in(text)
            exists = pg_exec(pg_url, f"SELECT to_regclass('{schema}.people')")[0][0]
            written = pg_exec(pg_url, f"SELECT * FROM {schema}.people") if exists else []
            assert len(written) <= 1 and not _phone_in(str(written))  # page 1 at most
            assert pg_exec(
                pg_url,
                "SELECT count(*) FROM etl_express.quarantine WHERE pipeline = %s",
                [pipeline_name],
            ) == [(0,)]
            columns = pa.schema(
                [("id", pa.int64()), ("email", pa.string()), ("phone", pa.string())]
            )
            declared = pipeline(server.url, columns, not_pii={"phone": "a switchboard number"}).run(
                reset=True
            )
        finally:
            logger.remove(sink)
            logger.disable("etl_express")
    assert declared.status == "succeeded" and declared.rows_quarantined == 1
    # the record page 2 could not convert: its e-mail hashed
    (record,) = pg_exec(
        pg_url, "SELECT record FROM etl_express.quarantine WHERE pipeline = %s", [pipeline_name]
    )[0]
    assert record["email"].startswith("email:")
