"""``etl-express scan URL``: tables, rows, keys, candidate cursors and personal-looking columns
of a real database, without a value or the URL's password in the output, and a
``Replication(...)`` that runs as pasted (refusing, with the fix, the tables without a key)."""

from __future__ import annotations

import json
import os
import secrets

import pytest
from typer.testing import CliRunner

from etl_express.cli import _register, app
from etl_express.errors import ETLConfigError
from tests.conftest import pg_exec


def test_scan_shows_what_a_replication_would_find_and_no_value(
    pg_url: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_exec(
        pg_url,
        f"CREATE TABLE {schema}.clients (client_id int PRIMARY KEY, contact text, note text, "
        "segment char(10), modified_at timestamptz, created date)",
    )
    pg_exec(
        pg_url,
        f"INSERT INTO {schema}.clients SELECT g, 'person' || g || '@mail.ru', 'order ' || g, "
        "'AUTO', now(), current_date FROM generate_series(1, 50) g",
    )
    pg_exec(pg_url, f"CREATE TABLE {schema}.events (at timestamptz, kind text, phone text)")
    pg_exec(pg_url, f"ANALYZE {schema}.clients")
    _register()
    url = pg_url.replace("postgresql://postgres@", "postgresql://postgres:Sup3rSecret@", 1)
    assert "Sup3rSecret" in url
    out = CliRunner().invoke(app, ["scan", url, "--schema", schema])
    assert out.exit_code == 0, out.output
    text = out.output
    assert "Sup3rSecret" not in text and "***" in text
    assert "@mail.ru" not in text and "person1" not in text  # findings name columns, not values
    clients = next(line for line in text.splitlines() if line.startswith("clients"))
    assert "client_id" in clients and "modified_at" in clients and "50" in clients
    assert "contact (" in clients and "note" not in clients.split("modified_at")[1]
    assert "No primary key: events" in text
    assert '"clients.contact"' in text and '"events.phone"' in text

    report = json.loads(CliRunner().invoke(app, ["scan", url, "--schema", schema, "--json"]).output)
    by_table = {t["table"]: t for t in report["tables"]}
    assert by_table["clients"]["cursors"] == ["modified_at"]
    assert by_table["events"]["primary_key"] == []
    # the replication runs as pasted: the keyless table is refused, naming the fix
    monkeypatch.setenv("ETL_EXPRESS_SOURCE_DB_URL", pg_url)
    monkeypatch.setenv("ETL_EXPRESS_ANON_KEY", secrets.token_urlsafe(48))
    code = report["replication"]
    with pytest.raises(ETLConfigError, match="primary_key="):
        exec(compile(code, "pasted.py", "exec"), {})
    assert os.environ["ETL_EXPRESS_SOURCE_DB_URL"] == pg_url
