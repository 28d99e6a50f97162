"""``etl-express quarantine list / replay`` against a real PostgreSQL."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from etl_express.cli import _register, app
from tests.conftest import pg_exec

PIPELINE_FILE = """
import etl_express as etl
from etl_express.sinks.postgres import PostgresSink
from tests.reliability_sources import CUSTOMER_SCHEMA, HashEmail, ListSource, customers

pipeline = etl.Pipeline("{name}", ListSource(customers(100), schema=CUSTOMER_SCHEMA),
                        anonymizers=[HashEmail()], sink=PostgresSink("{schema}.customers"), max_error_rate=0.5)

if __name__ == "__main__":
    raise SystemExit("must not run on import")
"""


def test_list_and_replay(pg_url, schema, pipeline_name, tmp_path):
    _register()
    pg_exec(
        pg_url,
        f"CREATE TABLE {schema}.customers (id bigint PRIMARY KEY, name text, email text, "
        f"amount bigint CONSTRAINT low CHECK (amount < 95))",
    )
    path = tmp_path / "crm_pipeline.py"
    path.write_text(PIPELINE_FILE.format(name=pipeline_name, schema=schema))
    runner = CliRunner()
    from etl_express.cli._pipelines import load_pipeline

    assert load_pipeline(f"{path}:pipeline").run().rows_quarantined == 5

    listed = runner.invoke(app, ["quarantine", "list", pipeline_name])
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("customers_low") == 0 and listed.output.count('"low"') == 5
    rows = [
        json.loads(line)
        for line in runner.invoke(
            app, ["quarantine", "list", pipeline_name, "--json"]
        ).output.splitlines()
    ]
    assert sorted(r["record"]["id"] for r in rows) == [95, 96, 97, 98, 99]
    assert all(r["record"]["email"].startswith("h_") and r["stage"] == "sink" for r in rows)

    refused = runner.invoke(
        app, ["quarantine", "replay", f"{path}:pipeline", "--id", str(rows[0]["id"])]
    )
    assert refused.exit_code == 2 and "0 record(s), 1 still refused" in refused.output

    pg_exec(pg_url, f"ALTER TABLE {schema}.customers DROP CONSTRAINT low")
    done = runner.invoke(app, ["quarantine", "replay", f"{path}:pipeline"])
    assert done.exit_code == 0 and "replayed 5 record(s), 0 still refused" in done.output
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.customers") == [(100,)]
    assert (
        "no quarantined records" in runner.invoke(app, ["quarantine", "list", pipeline_name]).output
    )
    assert (
        runner.invoke(app, ["quarantine", "list", pipeline_name, "--all"]).output.count(" yes ")
        == 5
    )


def test_replay_names_a_missing_pipeline_file(tmp_path):
    _register()
    result = CliRunner().invoke(app, ["quarantine", "replay", f"{tmp_path}/nope.py:pipeline"])
    assert result.exit_code == 1 and "does not exist" in result.output
