"""No URL password leaves the library: not in an error, a log line, the runs table, the CLI,
the dashboard or a repr — whether the URL is valid or not. A URL that cannot be parsed is shown
as its scheme and host only.

Every case uses a canary password; the assertions look for the password and for each piece of
it a parser could split off (a password with an unencoded ``@`` is cut differently by
SQLAlchemy and by a browser)."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import psycopg
import pytest
from loguru import logger
from typer.testing import CliRunner

import etl_express as etl
from etl_express._masking import mask_url, mask_url_passwords, url_problem
from etl_express.errors import ETLConfigError
from etl_express.logs import configure_logging, flush_logs, shutdown_logging
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource
from etl_express.store.database import sqlalchemy_url
from tests.reliability_sources import CUSTOMER_SCHEMA, ListSource, customers
from tests.status.stores import fresh_database

PASSWORD = "Canary9pass"
PIECES = (PASSWORD, "Canary9", "9pass")  # what a misparse of "Canary9@pass" shows

# (url, what it shows when it does not parse: None when it parses)
URLS = {
    "postgresql://etl:Canary9pass@db.example:5432/analytics": None,
    "postgresql+psycopg://etl:Canary9pass@db.example/analytics?sslmode=require": None,
    "postgresql://etl:Canary9%40pass@db.example/analytics": None,  # encoded '@'
    "postgresql://etl:Canary9/pass@db.example/analytics": None,  # SQLAlchemy takes it
    "postgresql://etl:Canary9:pass@[::1]:5432/analytics": None,
    "postgresql://etl:Canary9 pass@db.example/analytics": None,
    "postgresql://db.example/analytics?user=etl&password=Canary9pass": None,
    # not URLs the library can use: scheme and host only
    "postgresql//etl:Canary9pass@localhost/analytics": "postgresql://localhost",
    "postgresql:/etl:Canary9pass@localhost/analytics": "postgresql://localhost",
    "postgresql://etl:Canary9@pass@db.example/analytics": "postgresql://db.example",
    "postgresql:etl:Canary9pass@db.example/analytics": None,  # shown hidden, see below
    "etl:Canary9pass@db.example/analytics": None,
    "host=db.example user=etl password=Canary9pass dbname=analytics": None,
}


def leaked(text: str) -> list[str]:
    return [piece for piece in PIECES if piece in text]


@pytest.mark.parametrize("url", list(URLS))
def test_every_url_form_has_its_password_masked(url: str) -> None:
    assert leaked(mask_url_passwords(f"cannot connect to {url} (retrying)")) == []
    assert leaked(mask_url_passwords(f"[database={url!r}]")) == []
    assert leaked(mask_url(url)) == []
    if url_problem(url) is not None:
        shown = mask_url(url)
        assert shown == (URLS[url] or "<URL hidden: not a valid URL>"), shown
        assert "etl" not in shown  # no user name either: scheme and host only


def test_masking_keeps_the_rest_of_the_text() -> None:
    text = "load from postgresql://etl:Canary9pass@db:5432/crm failed at 10:30; mail ops@corp.ru"
    assert mask_url_passwords(text) == (
        "load from postgresql://etl:***@db:5432/crm failed at 10:30; mail ops@corp.ru"
    )
    assert mask_url("postgresql://etl@db/crm") == "postgresql://etl@db/crm"
    assert mask_url("sqlite:///:memory:") == "sqlite:///:memory:"


@pytest.mark.parametrize("url", [u for u in URLS if url_problem(u) is not None])
def test_a_database_url_that_does_not_parse_is_named_by_scheme_and_host(url: str) -> None:
    with pytest.raises(ETLConfigError, match="not a database URL") as err:
        sqlalchemy_url(url)
    assert leaked(str(err.value)) == [] and "etl:" not in str(err.value)
    assert "Fix: " in str(err.value)


def test_environment_url_that_does_not_parse_never_prints_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ETL_EXPRESS_DATABASE_URL", "postgresql//etl:Canary9pass@localhost/db")
    with pytest.raises(ETLConfigError) as err:
        list(etl.read("analytics.customers"))
    assert leaked(str(err.value)) == [] and "postgresql://localhost" in str(err.value)


class UnreachableSource(ListSource):
    """A user's source whose own exception quotes the URL it was given."""

    def read(self, position=None, partition=None):
        raise ValueError(f"could not reach {self.url}")
        yield  # pragma: no cover


async def dashboard(store: str, *paths: str) -> list[httpx.Response]:
    from etl_express.ui import build

    transport = httpx.ASGITransport(app=build(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        return [await client.get(path) for path in paths]


def test_runs_table_cli_dashboard_and_logs_never_hold_a_password(pg_url: str, tmp_path) -> None:
    schema = "t_" + uuid.uuid4().hex[:8]
    with fresh_database(pg_url) as store:
        with psycopg.connect(store, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        configure_logging(tmp_path / "logs", console=False)
        try:
            failing = {
                "malformed_url": SQLSource(
                    "postgresql//etl:Canary9pass@localhost/crm", table="customers", primary_key="id"
                ),
                "at_in_password": SQLSource(
                    "postgresql://etl:Canary9@pass@127.0.0.1:1/crm",
                    table="customers",
                    primary_key="id",
                ),
                "unreachable": SQLSource(
                    "postgresql://etl:Canary9pass@127.0.0.1:1/crm",
                    table="customers",
                    primary_key="id",
                ),
                "user_error": UnreachableSource(customers(5), schema=CUSTOMER_SCHEMA),
            }
            failing["user_error"].url = "postgresql://etl:Canary9pass@crm.internal/crm"
            for name, source in failing.items():
                pipeline = etl.Pipeline(
                    name, source, sink=PostgresSink(f"{schema}.{name}", url=store), progress=False
                )
                assert leaked(repr(pipeline)) == [], repr(pipeline)
                with pytest.raises(Exception) as err:
                    pipeline.run()
                assert leaked(str(err.value)) == [], str(err.value)
            logger.bind(pipeline="unreachable").error(
                "retrying postgresql//etl:Canary9pass@localhost/crm"
            )
            assert flush_logs()
        finally:
            shutdown_logging()
        with psycopg.connect(store) as conn:
            errors = [r[0] for r in conn.execute("SELECT error FROM etl_express.runs")]
            logged = [r[0] for r in conn.execute("SELECT message FROM etl_express.logs")]
            assert len(errors) == 4 and all(errors)
            assert leaked(" ".join(errors + logged)) == [], errors + logged
            # a run recorded by an older version, its error holding a password in clear
            conn.execute(
                "UPDATE etl_express.runs SET error = %s WHERE pipeline = 'unreachable'",
                ("cannot connect to postgresql//etl:Canary9pass@localhost/crm",),
            )
            conn.commit()

        from etl_express.cli import _register, app

        _register()
        runner = CliRunner()
        outputs = []
        for args in (
            ["runs", "--url", store],
            ["runs", "--url", store, "--json"],
            ["status", "--url", store],
            ["status", "--url", store, "--json"],
            ["logs", "show", "unreachable", "--url", store],
        ):
            result = runner.invoke(app, args)
            shutdown_logging()  # the CLI's root callback turned logging on in this process
            outputs.append(result.output)
            assert leaked(result.output) == [], (args, result.output)
        assert "cannot connect to postgresql://" not in outputs[0]
        assert "error: " in outputs[0] and "***" in outputs[0]
        assert any(r["error"] for r in json.loads(outputs[3]))

        pages = asyncio.run(dashboard(store, "/", "/pipelines/unreachable", "/quarantine"))
        for page in pages:
            assert page.status_code == 200 and leaked(page.text) == [], page.text[-2000:]
        assert "***" in pages[1].text
