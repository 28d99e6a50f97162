"""The deletes-and-history example of docs/reliability.md runs as printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_documented_example_runs_and_prints_what_it_says(pg_url, schema, tmp_path):
    page = (ROOT / "docs" / "reliability.md").read_text()
    code = re.search(r"<!-- deletes-example -->\n```python\n(.*?)```", page, re.DOTALL).group(1)
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {**os.environ, "ETL_EXPRESS_DATABASE_URL": pg_url, "EXAMPLE_SCHEMA": schema}
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == ["10 1", "1000", "990"]
