"""The cookiecutter connector template: rendered without prompts, installed with pip, its own
tests run, and its connector found through its entry point and run in a pipeline."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import tomllib
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

import etl_express as etl
from etl_express import plugins
from etl_express.sinks import PostgresSink
from tests.conftest import pg_exec

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "cookiecutter-connector"
BASES = {"rest": "RESTSource", "sql": "SQLSource", "file": "FileSource"}
MIN_WORDS = 50


def render(output: Path, name: str, base: str) -> Path:
    return Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(output),
            extra_context={"connector_name": name, "base": base},
        )
    )


def words(text: str) -> int:
    return len(re.findall(r"[\w'`.-]+", re.sub(r"<!--.*?-->", " ", text, flags=re.DOTALL)))


def docs_logic(page: str) -> str:
    match = re.search(r"^## Logic\s*$(.*?)(?=^## |\Z)", page, flags=re.MULTILINE | re.DOTALL)
    assert match, "no '## Logic' section"
    return match.group(1)


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The SQL, REST and file variants rendered and installed with pip into one target folder
    (a private site-packages put on ``sys.path`` only where a test asks for it)."""
    out = tmp_path_factory.mktemp("rendered")
    projects = {base: render(out, f"acme_{base}", base) for base in ("sql", "rest", "file")}
    target = out / "site-packages"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            *map(str, projects.values()),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return {"target": target, **projects}


@pytest.mark.parametrize("base", list(BASES))
def test_template_renders_a_complete_package_for_each_base(tmp_path: Path, base: str) -> None:
    project = render(tmp_path, "acme_crm", base)
    assert project.name == "etl-express-acme-crm"
    package = project / "src" / "etl_express_acme_crm"
    for path in (
        "pyproject.toml",
        "README.md",
        "docs/acme_crm.md",
        "tests/test_acme_crm.py",
        "tests/test_docs.py",
    ):
        assert (project / path).is_file(), path
    for path in [*package.glob("*.py"), *(project / "tests").glob("*.py")]:
        ast.parse(path.read_text(), str(path))  # every rendered file is valid Python

    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert meta["name"] == "etl-express-acme-crm"
    assert meta["entry-points"]["etl_express.sources"] == {
        "acme_crm": "etl_express_acme_crm:AcmeCrmSource"
    }

    module = ast.parse((package / "source.py").read_text())
    classes = {node.name: node for node in module.body if isinstance(node, ast.ClassDef)}
    assert [b.id for b in classes["AcmeCrmSource"].bases] == [BASES[base]]
    assert [b.id for b in classes["AcmeCrmConfig"].bases] == ["BaseModel"]
    docstring = ast.get_docstring(classes["AcmeCrmSource"]) or ""
    logic = re.search(r"Logic:(.*?)(?:\n\s*\n|\Z)", docstring, flags=re.DOTALL)
    assert logic and words(logic.group(1)) >= MIN_WORDS

    page = (project / "docs" / "acme_crm.md").read_text()
    assert "at least 50 words" in page  # the page asks the author for a real description...
    assert words(docs_logic(page)) >= MIN_WORDS  # ...and ships with a default one
    assert "SourceTestSuite" in (project / "tests" / "test_acme_crm.py").read_text()
    assert "{{" not in page + (package / "source.py").read_text()


def test_template_refuses_a_name_that_is_not_snake_case(tmp_path: Path) -> None:
    with pytest.raises(FailedHookException):
        render(tmp_path, "Acme-CRM", "sql")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("base", ["sql", "rest", "file"])
def test_generated_package_passes_its_own_tests(
    installed: dict[str, Path], pg_url: str, base: str
) -> None:
    # the generated package's own test run, as its author runs it: not an xdist worker of ours
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env.update(PYTHONPATH=str(installed["target"]), ETL_EXPRESS_DATABASE_URL=pg_url)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=installed[base],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) >= 10 and "failed" not in proc.stdout.splitlines()[-1]


def test_generated_connector_is_discovered_and_runs_in_a_pipeline(
    installed: dict[str, Path],
    pg_url: str,
    schema: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(installed["target"]))
    assert "acme_sql" in plugins.available("sources")
    info = {i.name: i for i in plugins.inspect("sources")}["acme_sql"]
    assert info.ok and info.package == "etl-express-acme-sql" and info.version == "0.1.0"

    url = f"sqlite:///{tmp_path}/acme.db"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY, city TEXT, updated_at TEXT)")
        )
        conn.execute(
            sa.text("INSERT INTO customers VALUES (:id, :city, :u)"),
            [
                {"id": i, "city": f"city {i % 7}", "u": f"2024-02-{1 + i % 28:02d}"}
                for i in range(1, 101)
            ],
        )
    engine.dispose()

    source = plugins.create("sources", "acme_sql", url=url, batch_size=30)
    pipeline = etl.Pipeline(
        f"acme_{schema}", source, sink=PostgresSink(f"{schema}.acme_customers"), progress=False
    )
    result = pipeline.run()
    assert result.ok and result.rows_written == 100 and result.batches == 4
    assert pg_exec(
        pg_url, f"SELECT count(DISTINCT id), min(_etl_source) FROM {schema}.acme_customers"
    ) == [(100, "acme_sql")]
    assert pipeline.run().rows_read == 0  # incremental: nothing new
    sys.modules.pop("etl_express_acme_sql", None)
    sys.modules.pop("etl_express_acme_sql.source", None)
