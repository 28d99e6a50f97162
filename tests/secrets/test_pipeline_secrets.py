"""A pipeline configured only through ``etl.secret``, with its database URLs supplied the
way GitHub Actions supplies them (environment variables), leaks them nowhere."""

from __future__ import annotations

import importlib.util
import json
import secrets as stdlib_secrets
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy.engine import make_url

import etl_express as etl
from etl_express.logs import flush_logs, shutdown_logging

from ..conftest import pg_exec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "github_actions_daily.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("github_actions_daily", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _with_password(url: str, password: str, **changes: object) -> str:
    # the test server trusts local connections, so any password is accepted
    return make_url(url).set(password=password, **changes).render_as_string(hide_password=False)  # type: ignore[arg-type]


@pytest.fixture
def logging_on(tmp_path: Path) -> Iterator[Path]:
    folder = etl.configure_logging(tmp_path / "logs", level="DEBUG")
    yield folder
    shutdown_logging()


def _everything_printed(folder: Path, stderr: str, pg_url: str, name: str, *objects: object) -> str:
    assert flush_logs()
    parts = [stderr, *(p.read_text() for p in folder.glob("*.jsonl")), *(repr(o) for o in objects)]
    for table in ("runs", "checkpoints", "logs", "quality_checks", "quarantine"):
        rows = pg_exec(
            pg_url, f"SELECT t::text FROM etl_express.{table} t WHERE pipeline = %s", (name,)
        )
        parts += [r[0] for r in rows]
    return "\n".join(parts)


def test_pipeline_with_urls_from_github_style_env(
    pg_url: str,
    schema: str,
    pipeline_name: str,
    logging_on: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pg_exec(pg_url, f"CREATE TABLE {schema}.orders (id int PRIMARY KEY, amount numeric(10,2))")
    pg_exec(pg_url, f"INSERT INTO {schema}.orders SELECT g, g * 1.5 FROM generate_series(1, 50) g")
    source_password, sink_password = stdlib_secrets.token_hex(10), stdlib_secrets.token_hex(10)
    source_url = _with_password(pg_url, source_password)
    sink_url = _with_password(pg_url, sink_password)
    # how a workflow step's `env:` hands over ${{ secrets.CRM_DB_URL }} and friends
    monkeypatch.setenv("CRM_DB_URL", source_url)
    monkeypatch.setenv("ETL_EXPRESS_WAREHOUSE_DB_URL", sink_url)

    pipeline = _example().build_pipeline(pipeline_name, f"{schema}.orders", f"{schema}.orders_copy")
    result = pipeline.run()

    assert (result.status, result.rows_written) == ("succeeded", 50)
    assert pg_exec(pg_url, f"SELECT count(*), sum(amount) FROM {schema}.orders_copy") == [
        (50, 1912.5)
    ]
    printed = _everything_printed(
        logging_on,
        capsys.readouterr().err,
        pg_url,
        pipeline_name,
        pipeline,
        pipeline.source,
        pipeline.sink,
        result,
    )
    printed += json.dumps(result.to_dict())
    assert "run succeeded: 50 read, 50 written" in printed  # the logs really are in there
    for leaked in (source_password, sink_password, source_url, sink_url):
        assert leaked not in printed
    assert "secret('CRM_DB_URL')" in repr(pipeline.source)


def test_failing_connection_error_masks_the_url(
    pg_url: str,
    schema: str,
    pipeline_name: str,
    logging_on: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    password = stdlib_secrets.token_hex(10)
    broken = _with_password(pg_url, password, port=1)  # nothing listens there
    monkeypatch.setenv("CRM_DB_URL", broken)
    monkeypatch.setenv("WAREHOUSE_DB_URL", _with_password(pg_url, stdlib_secrets.token_hex(10)))
    pipeline = _example().build_pipeline(pipeline_name, f"{schema}.orders", f"{schema}.orders_copy")
    from etl_express.retry import RetryPolicy

    pipeline.retry = RetryPolicy(
        attempts=1, backoff=0.01
    )  # one quick retry: its log line is checked too
    with pytest.raises(etl.SourceError) as info:
        pipeline.run()
    result = info.value.result  # type: ignore[attr-defined]
    assert result.status == "failed" and "cannot read" in str(info.value)
    printed = _everything_printed(
        logging_on, capsys.readouterr().err, pg_url, pipeline_name, info.value, result.to_dict()
    )
    assert "run failed" in printed
    assert password not in printed and broken not in printed


def test_sqlsource_repr_masks_a_plain_url_password() -> None:
    from etl_express.sources import SQLSource

    password = stdlib_secrets.token_hex(8)
    source = SQLSource(
        url=f"postgresql://etl:{password}@db.corp:5432/crm", table="orders", primary_key="id"
    )
    assert password not in repr(source) and "etl:***@db.corp" in repr(source)
