"""``etl-express ui`` driven in a real headless browser (Debian's chromium through Playwright)
against a store filled by real pipeline runs: a succeeded, a failed, a stale, a quarantining
and a parallel pipeline."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from etl_express.ui.store import mask_position, mask_positions_in_text
from tests.conftest import pg_exec
from tests.status.stores import CANARY_EMAIL, CANARY_ERROR, fresh_database, run_quarantining

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: raw e-mails of the quarantining pipeline's source, and one planted as an old version's position
RAW_EMAILS = (CANARY_EMAIL, "zz.last@example.com", "person03@example.com")
TOKEN = "t0ken-for-the-dashboard-test-0123456789"  # pragma: allowlist secret


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ETL_EXPRESS_UI_TOKEN",)}
    env.update(extra)
    return env


def start_ui(url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "etl_express.cli", "ui", "--url", url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or _env(),
    )


def wait_until_up(process: subprocess.Popen[str], base: str, headers: dict | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the dashboard exited: {process.communicate()}")
        try:
            httpx.get(base + "/static/style.css", headers=headers, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the dashboard did not start within 60 s")


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


@pytest.fixture(scope="module")
def store(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A store filled by real runs in a separate process with logging to the store on."""
    with fresh_database(pg_url) as url:
        logs = tmp_path_factory.mktemp("logs")
        subprocess.run(
            [sys.executable, "-m", "tests.status.stores", url],
            cwd=ROOT,
            check=True,
            capture_output=True,
            env=_env(ETL_EXPRESS_LOG_DIR=str(logs)),
            timeout=300,
        )
        yield url


@pytest.fixture(scope="module")
def dashboard(store: str) -> Iterator[str]:
    port = free_port()
    process = start_ui(store, "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, base)
        yield base
    finally:
        stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert errors == [], f"the browser reported errors: {errors}"


def open_page(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    page.wait_for_load_state("networkidle")


def test_overview_shows_each_pipeline_with_its_freshness(page, dashboard):
    open_page(page, dashboard + "/")
    assert page.title() == "Pipelines · etl-express"
    rows = page.locator("#pipelines tbody tr")
    names = [rows.nth(i).get_attribute("data-pipeline") for i in range(rows.count())]
    assert names == [
        "crm_failed",
        "events_parallel",
        "legacy_stale",
        "orders_ok",
        "people_quarantine",
    ]

    def badge(name: str) -> str:
        return page.locator(f'tr[data-pipeline="{name}"] [data-fresh]').get_attribute("data-fresh")

    assert badge("legacy_stale") == "stale"
    assert page.locator('tr[data-pipeline="legacy_stale"] .badge.stale').inner_text() == "stale"
    assert badge("orders_ok") == badge("people_quarantine") == "fresh"
    failed = page.locator('tr[data-pipeline="crm_failed"]')
    assert "failed" in failed.locator(".badge.status-failed").inner_text()
    assert CANARY_ERROR in failed.locator(".error").inner_text()
    assert "2 need attention" in page.locator("#summary").inner_text()
    assert (
        page.locator('tr[data-pipeline="people_quarantine"] a[href^="/quarantine"]').inner_text()
        == "2"
    )


def chart_state(page: Page, canvas_id: str) -> dict:
    """What Chart.js holds for the canvas, and how many of its pixels are painted."""
    return page.evaluate(
        """(id) => {
            const canvas = document.getElementById(id);
            const chart = Chart.getChart(canvas);
            const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) painted++; }
            return {
                points: chart.data.datasets.map(d => d.data),
                labels: chart.data.labels.length,
                painted: painted,
                size: canvas.width * canvas.height,
            };
        }""",
        canvas_id,
    )


def test_pipeline_page_draws_its_charts_checks_and_schema_changes(page, dashboard):
    open_page(page, dashboard + "/pipelines/orders_ok")
    rows = chart_state(page, "chart-rows")
    assert rows["points"] == [[100, 200, 300], [0, 0, 0]]
    for canvas in ("chart-rows", "chart-rate", "chart-duration"):
        state = chart_state(page, canvas)
        assert state["labels"] == 3 and len(state["points"][0]) == 3
        assert all(v > 0 for v in state["points"][0]), canvas
        assert state["painted"] > state["size"] * 0.01, f"{canvas} is blank"
    checks = page.locator("#checks tbody tr")
    names = [checks.nth(i).locator("th").inner_text() for i in range(checks.count())]
    assert {"reconciliation", "error_rate", "freshness", "duplicate_keys"} <= set(names)
    assert page.locator("#checks td.cell").count() == 3 * len(names)
    schemas = page.locator("#schemas li")
    assert schemas.count() == 2  # created, then the segment column added
    assert "+ segment text" in schemas.nth(0).inner_text()
    assert "created with 7 columns" in schemas.nth(1).inner_text()
    assert page.locator("#runs tbody tr").count() == 3


def test_failed_checks_are_highlighted_and_the_failed_run_shows_its_error(page, dashboard):
    open_page(page, dashboard + "/pipelines/crm_failed")
    assert CANARY_ERROR in page.locator("#last-error").inner_text()
    failed = page.locator('#checks td[data-status="failed"]')
    assert failed.count() >= 1
    rows = page.locator("#checks tbody tr", has=page.locator('td[data-status="failed"]'))
    assert [rows.nth(i).locator("th").inner_text() for i in range(rows.count())] == ["error_rate"]
    color = failed.first.evaluate("td => getComputedStyle(td).backgroundColor")
    assert color == "rgb(220, 38, 38)"
    # the source failure's run: no checks, its error in full
    page.locator("#runs tbody tr.failed a").first.click()
    page.wait_for_load_state("networkidle")
    assert CANARY_ERROR in page.locator("#run-error").inner_text()
    log = page.locator("#log").inner_text()
    assert "run started" in log and "run failed" in log and CANARY_ERROR in log


def test_a_parallel_runs_detail_lists_its_partitions(page, dashboard):
    open_page(page, dashboard + "/pipelines/events_parallel")
    assert page.locator("#schemas li").count() == 1  # both partitions saw the same columns
    page.locator("#runs tbody tr a").first.click()
    page.wait_for_load_state("networkidle")
    parts = page.locator("#partitions tbody tr")
    assert parts.count() == 2
    assert '{"hi":60,"lo":0}' in parts.nth(0).inner_text()
    assert all("succeeded" in parts.nth(i).inner_text() for i in range(2))
    assert page.locator("#run-checks tbody tr").count() >= 3
    assert page.locator("#log").inner_text().count("run succeeded") == 2  # one a partition


def test_quarantine_shows_only_anonymized_values(page, dashboard, store):
    # the store holds the quarantined records anonymized: the canary never reached it
    stored = pg_exec(store, "SELECT record::text FROM etl_express.quarantine")
    assert stored and not any(raw in record for (record,) in stored for raw in RAW_EMAILS)

    open_page(page, dashboard + "/quarantine")
    table = page.locator("#quarantine tbody tr")
    assert table.count() == 2 + 5  # people: 2 ages not numbers; crm: 5 amounts "n/a"
    text = page.content()
    for raw in RAW_EMAILS:
        assert raw not in text
    people = page.locator("#quarantine tbody tr", has_text="people_quarantine")
    assert people.count() == 2
    assert '"email": "email:' in people.first.inner_text()  # the pseudonym, not the address
    assert '{"key": [19]}' in people.first.inner_text()  # a surrogate key's position shows
    assert "column 'age'" in people.first.inner_text()
    assert "etl-express quarantine replay" in page.locator("#replay-command").inner_text()

    open_page(page, dashboard + "/quarantine?pipeline=crm_failed")
    crm = page.locator("#quarantine tbody tr")
    assert crm.count() == 5 and "n/a" in crm.first.inner_text()
    assert 'Pipeline(name="crm_failed")' in page.locator("#replay-command").inner_text()


def test_no_page_shows_raw_personal_data(page, dashboard, store):
    runs = pg_exec(store, "SELECT run_id FROM etl_express.runs")
    paths = ["/", "/quarantine", "/pipelines/people_quarantine"] + [f"/runs/{r}" for (r,) in runs]
    for path in paths:
        open_page(page, dashboard + path)
        html = page.content()
        for raw in RAW_EMAILS:
            assert raw not in html, path


def test_unknown_pipeline_and_run_are_404(dashboard):
    assert httpx.get(dashboard + "/pipelines/nope").status_code == 404
    assert httpx.get(dashboard + "/runs/nope").status_code == 404


def test_a_local_dashboard_answers_only_loopback_host_names(dashboard):
    # a page fetched through another name (DNS rebinding) is refused
    assert httpx.get(dashboard + "/", headers={"Host": "evil.example"}).status_code == 400
    response = httpx.get(dashboard + "/")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert httpx.post(dashboard + "/").status_code == 405  # read-only


def test_bound_beyond_localhost_it_needs_a_token(store, browser):
    port = free_port()
    refused = start_ui(store, "--host", "0.0.0.0", "--port", str(port))
    _out, err = refused.communicate(timeout=60)
    assert refused.returncode == 2 and "ETL_EXPRESS_UI_TOKEN" in err
    with pytest.raises(httpx.TransportError):  # it never listened
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)

    short = start_ui(
        store, "--host", "0.0.0.0", "--port", str(port), env=_env(ETL_EXPRESS_UI_TOKEN="short")
    )
    short.communicate(timeout=60)
    assert short.returncode == 2

    process = start_ui(
        store, "--host", "0.0.0.0", "--port", str(port), env=_env(ETL_EXPRESS_UI_TOKEN=TOKEN)
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, base)
        assert httpx.get(base + "/").status_code == 401
        assert httpx.get(base + "/quarantine").status_code == 401
        assert httpx.get(base + "/static/chart.umd.min.js").status_code == 401
        wrong = {"Authorization": "Bearer " + TOKEN[:-1] + "x"}
        assert httpx.get(base + "/", headers=wrong).status_code == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(base + "/", headers=good).status_code == 200

        plain = browser.new_context()
        try:
            assert plain.new_page().goto(base + "/").status == 401
        finally:
            plain.close()
        context = browser.new_context(extra_http_headers=good)
        try:
            page = context.new_page()
            open_page(page, base + "/pipelines/orders_ok")
            assert chart_state(page, "chart-rows")["painted"] > 0
        finally:
            context.close()
    finally:
        stop(process)


@pytest.mark.parametrize("declared", ["position_pii", "nothing"])
def test_positions_an_older_version_wrote_with_personal_data_are_masked(pg_url, declared):
    """Versions before the tagged-key refusal wrote raw key values into positions: a pipeline
    declared with ``position_pii`` — or one that declared nothing — has every position masked,
    in quarantine, in run errors and in log lines."""
    raw = "zz.last@example.com"
    with fresh_database(pg_url) as url:
        run_quarantining(url, "data_" + uuid.uuid4().hex[:6])
        position = f"{{'key': ['{raw}']}}"
        pg_exec(url, "UPDATE etl_express.quarantine SET position = %s", (f'{{"key": ["{raw}"]}}',))
        pg_exec(
            url,
            "UPDATE etl_express.runs SET error = %s",
            (f"value out of range [pipeline=people_quarantine, after position={position}]",),
        )
        if declared == "position_pii":
            pg_exec(url, "UPDATE etl_express.pipelines SET position_pii = true")
        else:
            pg_exec(url, "DROP TABLE etl_express.pipelines, etl_express.table_schemas")
        (run_id,) = pg_exec(url, "SELECT run_id FROM etl_express.runs")[0]
        pg_exec(
            url,
            "INSERT INTO etl_express.logs (ts, level, pipeline, run_id, message) "
            "VALUES (now(), 'ERROR', 'people_quarantine', %s, %s)",
            (run_id, f"batch 3 failed [after position={position}, batch=3]"),
        )
        port = free_port()
        process = start_ui(url, "--port", str(port))
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(process, base)
            quarantined = httpx.get(base + "/quarantine")
            assert quarantined.status_code == 200
            assert quarantined.text.count("{&#34;key&#34;: [&#34;***&#34;]}") == 2
            run = httpx.get(f"{base}/runs/{run_id}")
            assert run.text.count("after position=***") >= 2  # the error and the log lines
            for path in ("/", "/quarantine", "/pipelines/people_quarantine", f"/runs/{run_id}"):
                page = httpx.get(base + path)
                assert page.status_code == 200 and raw not in page.text, path
        finally:
            stop(process)


def test_the_dashboard_reads_in_read_only_transactions(store):
    import sqlalchemy as sa

    from etl_express.store.database import engine_for
    from etl_express.ui.store import StoreView

    view = StoreView(engine_for(store))
    with view.connect() as conn, pytest.raises(sa.exc.InternalError, match="read-only"):
        conn.execute(sa.text("DELETE FROM etl_express.quarantine"))


def test_positions_are_masked_in_values_and_in_error_texts():
    assert mask_position({"key": ["a@b.c", 5, None]}) == {"key": ["***", "***", None]}
    text = (
        "value out of range [pipeline=p, partition=all, batch=3, "
        "after position={'key': ['a@b.c', {'$date': '2024-01-01'}]}]. Fix: cast it"
    )
    masked = mask_positions_in_text(text)
    assert "a@b.c" not in masked and "2024-01-01" not in masked
    assert masked == (
        "value out of range [pipeline=p, partition=all, batch=3, after position=***]. Fix: cast it"
    )
    assert mask_positions_in_text("x [after position=a@b.c, batch=2]") == (
        "x [after position=***, batch=2]"
    )
    assert mask_positions_in_text("no position here") == "no position here"
