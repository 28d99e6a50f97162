"""Docs that are checked: every Python code block in README.md and docs/ runs, and what the
docs say about the store matches the code.

Each page's blocks run in order, in one fresh interpreter (a page's later blocks may use what
its earlier ones defined), in an environment holding only what a reader of that page has
installed (:mod:`tests.docs_env`): what Getting started installs, plus every ``pip install``
the page itself gives in a shell block before its last Python block — so a page that uses
pandas, Airflow or the dashboard must say how to install it. They run in an empty working
folder, against a fresh PostgreSQL database of the test server that holds the tables the docs
read: ``customers`` (the demo CRM) and
``orders``. The secrets the docs name resolve to that database (``CRM_DB_URL``,
``SHOP_DB_URL``, ``WAREHOUSE_DB_URL``) or to a random key (``ANON_KEY``), and
``ETL_EXPRESS_DATABASE_URL`` points there too. A block that cannot run on its own (it needs
Airflow's scheduler, a 1C server, a REST API, Vault...) is preceded by
``<!-- no-run: why -->``; those stay few.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
import yaml

from etl_express.demo import generate_customers, load_table
from etl_express.store import schema as state
from tests import docs_env

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
MAX_NO_RUN = 12  # keep skipping the exception: a new block runs unless it truly cannot
BLOCK = re.compile(
    r"(?P<before>(?:<!--\s*no-run:(?P<why>.*?)-->\s*\n)?)(?P<indent>[ \t]*)```python\n(?P<code>.*?)^(?P=indent)```",
    re.DOTALL | re.MULTILINE,
)
RUNNER = """
import json, sys, traceback
with open(sys.argv[1]) as f:
    blocks = json.load(f)
namespace = {"__name__": "__main__"}
for line, code in blocks:
    try:
        exec(compile(code, f"{sys.argv[2]}:{line}", "exec"), namespace)
    except BaseException:
        print(f"the block at {sys.argv[2]}:{line} failed:", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
"""


@dataclass
class Block:
    page: Path
    line: int
    code: str
    no_run: str | None


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in BLOCK.finditer(text):
        line = text[: match.start("indent")].count("\n") + 1
        code = textwrap.dedent(
            "\n".join(
                row[len(match["indent"]) :] if row.startswith(match["indent"]) else row
                for row in match["code"].splitlines()
            )
        )
        why = match["why"].strip() if match["why"] is not None else None
        found.append(Block(page, line, code, why))
    return found


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


RUNNABLE = [p for p in PAGES if any(b.no_run is None for b in blocks(p))]


def test_no_run_markers_are_few_and_say_why() -> None:
    marked = [b for p in PAGES for b in blocks(p) if b.no_run is not None]
    for block in marked:
        assert len(block.no_run or "") >= 10, f"{page_id(block.page)}:{block.line}: say why"
    assert len(marked) <= MAX_NO_RUN, [f"{page_id(b.page)}:{b.line}" for b in marked]
    total = sum(len(blocks(p)) for p in PAGES)
    assert total >= 25 and len(marked) < total / 2


@pytest.fixture
def docs_database(pg_url: str) -> Iterator[str]:
    """A fresh database holding the docs' source tables; its URL."""
    name = "docs_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = sa.engine.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    try:
        load_table(url, generate_customers(500))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE orders AS SELECT g AS id, 1 + g % 50 AS customer_id,"
                " round((g * 7.31)::numeric % 1000, 2) AS amount,"
                " (ARRAY['new', 'paid', 'shipped'])[1 + g % 3] AS status,"
                " timestamptz '2024-01-01 00:00+00' + g * interval '1 hour' AS updated_at"
                " FROM generate_series(1, 300) g"
            )
            conn.execute("ALTER TABLE orders ADD PRIMARY KEY (id)")
            conn.execute("CREATE SCHEMA example")  # EXAMPLE_SCHEMA of the self-contained blocks
        yield url
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def base_install() -> list[str]:
    """What every page assumes installed: the install line Getting started gives first."""
    page = (ROOT / "docs" / "getting-started.md").read_text()
    return docs_env.user_install_lines(page)[0][1]


def page_install(page: Path) -> list[str]:
    """What a reader of ``page`` has installed when its last Python block runs."""
    last = max(b.line for b in blocks(page) if b.no_run is None)
    lines = docs_env.user_install_lines(page.read_text(), before=last)
    return sorted({*base_install(), *(r for _, requirements in lines for r in requirements)})


class Environments:
    """One environment per distinct install (built on first use, kept for the session)."""

    def __init__(self, folder: Path):
        self.folder, self.built = folder, {}

    def python(self, requirements: list[str]) -> Path:
        key = tuple(sorted(requirements))
        if key not in self.built:
            where = self.folder / f"env{len(self.built)}"
            self.built[key] = docs_env.build(list(key), where)
        return self.built[key]


@pytest.fixture(scope="session")
def environments(tmp_path_factory: pytest.TempPathFactory) -> Environments:
    return Environments(tmp_path_factory.mktemp("docs-envs"))


@pytest.mark.parametrize("page", RUNNABLE, ids=page_id)
def test_python_blocks_run(
    page: Path, docs_database: str, tmp_path: Path, environments: Environments
) -> None:
    runnable = [(b.line, b.code) for b in blocks(page) if b.no_run is None]
    script = tmp_path / "blocks.json"
    script.write_text(json.dumps(runnable))
    work = tmp_path / "work"
    work.mkdir()
    python = environments.python(page_install(page))
    env = {
        k: v
        for k, v in docs_env.environment_vars(python).items()
        if not k.startswith("ETL_EXPRESS_")
    }
    env.update(
        {
            "ETL_EXPRESS_DATABASE_URL": docs_database,
            "ETL_EXPRESS_HOME": str(tmp_path / "home"),
            "CRM_DB_URL": docs_database,
            "SHOP_DB_URL": docs_database,
            "WAREHOUSE_DB_URL": docs_database,
            "ANON_KEY": secrets.token_hex(32),
            "EXAMPLE_SCHEMA": "example",
        }
    )
    proc = subprocess.run(
        [str(python), "-W", "error", "-c", RUNNER, str(script), page_id(page)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"installed: {page_install(page)}\n{proc.stderr[-4000:]}"


def test_the_notebook_install_line_brings_jupyter_and_every_import(
    environments: Environments,
) -> None:
    """The notebook's own install line gives `jupyter notebook`, `jupyter nbconvert` and every
    module the notebook imports — nothing else is there."""
    notebook = json.loads((ROOT / "examples" / "explore.ipynb").read_text())
    said = "".join(notebook["cells"][0]["source"])
    guide = (ROOT / "docs" / "getting-started.md").read_text()
    [(_, requirements)] = [
        (line, r) for line, r in docs_env.user_install_lines(guide) if "notebook" in str(r)
    ]
    assert 'python3 -m pip install ".[embedded,notebook]"' in said and requirements == [
        "etl-express[embedded,notebook]"
    ]
    python = environments.python(requirements)
    env = docs_env.environment_vars(python)
    for command in (["jupyter", "notebook", "--version"], ["jupyter", "nbconvert", "--version"]):
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (command, proc.stderr[-2000:])
    imported = set()
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if isinstance(node, ast.Import):
                    imported |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    imported.add(node.module.split(".")[0])
    assert {"pandas", "matplotlib", "etl_express"} <= imported
    probe = f"import {', '.join(sorted(imported))}"
    proc = subprocess.run(
        [str(python), "-c", probe], env=env, capture_output=True, text=True, cwd=ROOT / "examples"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # and only that: the dev extra's tools are not there
    proc = subprocess.run([str(python), "-c", "import pytest"], env=env, capture_output=True)
    assert proc.returncode != 0


def documented_state_tables() -> list[str]:
    text = (ROOT / "docs" / "store.md").read_text()
    section = text.split("## State tables", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `etl_express\.(\w+)` \|", section, re.MULTILINE)


def test_documented_state_tables_are_the_schema() -> None:
    tables = sorted(t.name for t in state.metadata.tables.values() if t.schema == state.SCHEMA)
    assert sorted(documented_state_tables()) == tables
    readme = (ROOT / "README.md").read_text()
    line = next(row for row in readme.splitlines() if "**State in PostgreSQL**" in row)
    paragraph = readme[readme.index(line) :].split("\n- ", 1)[0]
    assert sorted(re.findall(r"`(\w+)`", paragraph.split(":", 1)[1])) == tables


def test_documented_write_path_is_the_sinks() -> None:
    """README and store.md describe the sink's binary COPY, not a CSV writer."""
    import pyarrow as pa

    from etl_express.sinks.pgcopy import copy_payload

    payload = copy_payload(pa.record_batch({"id": pa.array([1, 2])}), ["bigint"])
    assert payload.format == "binary"
    for page in (ROOT / "README.md", ROOT / "docs" / "store.md"):
        text = page.read_text()
        assert "binary COPY" in text, page
        assert "CSV writer and" not in text and "serialized by Arrow's C++ CSV" not in text, page


def test_mkdocs_nav_lists_every_page_once_in_reading_order() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(items: list) -> list[str]:
        found: list[str] = []
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            found += pages(value) if isinstance(value, list) else [value]
        return found

    listed = pages(config["nav"])
    on_disk = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(listed) == on_disk and len(set(listed)) == len(listed)
    assert listed[:3] == ["index.md", "getting-started.md", "concepts.md"]
    assert listed[-1] == "api.md"
