"""Screenshots of the dashboard's main pages for docs/dashboard.md (docs/img/dashboard-*.png).

Run from the repository root with the test database set, as the tests run:

    ETL_EXPRESS_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        python -m tests.ui.screenshots

It fills a fresh database with the tests' pipelines, serves ``etl-express ui`` on it and
photographs each page in Debian's chromium.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
from playwright.sync_api import sync_playwright

from tests.status.stores import fresh_database
from tests.ui.test_dashboard import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    free_port,
    start_ui,
    stop,
    wait_until_up,
)

IMG = ROOT / "docs" / "img"


def main() -> None:
    with fresh_database(os.environ["ETL_EXPRESS_TEST_DATABASE_URL"]) as url:
        subprocess.run([sys.executable, "-m", "tests.status.stores", url], cwd=ROOT, check=True)
        with psycopg.connect(url) as conn:
            (failed_run,) = conn.execute(
                "SELECT run_id FROM etl_express.runs WHERE pipeline = 'crm_failed' "
                "AND status = 'failed' ORDER BY started_at DESC LIMIT 1"
            ).fetchone()
        port = free_port()
        process = start_ui(url, "--port", str(port))
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(process, base)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                for path, name in [
                    ("/", "overview"),
                    ("/pipelines/orders_ok", "pipeline"),
                    ("/pipelines/crm_failed", "checks"),
                    (f"/runs/{failed_run}", "run"),
                    ("/quarantine", "quarantine"),
                ]:
                    page.goto(base + path)
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(IMG / f"dashboard-{name}.png"), full_page=True)
                    print(f"docs/img/dashboard-{name}.png")
                browser.close()
        finally:
            stop(process)


if __name__ == "__main__":
    main()
