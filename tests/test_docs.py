"""The documentation: the site builds with ``mkdocs build --strict``, the getting-started
page gives the two commands, and every data module describes its logic in 50 words or more."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import etl_express
from etl_express import anonymizers, sinks, sources, transformers

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MIN_WORDS = 50
BASES = (etl_express.Source, etl_express.Transformer, etl_express.Anonymizer, etl_express.Sink)
SECTION = re.compile(
    r"^\s*(Args|Arguments|Attributes|Example|Examples|Parameters|Returns|Raises|Yields|"
    r"Notes?|See Also|Warnings?)\s*:",
    re.MULTILINE,
)


def words(text: str) -> int:
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.DOTALL)
    text = re.sub(r"```.*?```", " ", text, flags=re.DOTALL)
    return len(re.findall(r"[\w'`.-]+", text))


def docstring_logic(doc: str) -> str:
    """The ``Logic:`` part of a docstring; without one, its prose before the first section."""
    doc = inspect.cleandoc(doc)
    start = doc.find("Logic:")
    text = doc[start + len("Logic:") :] if start >= 0 else doc
    end = SECTION.search(text)
    text = text[: end.start()] if end else text
    return re.sub(r"::\n(\n?[ \t]+.*)+", " ", text)  # drop literal (code) blocks


def data_modules() -> list[type]:
    found = []
    for namespace in (sources, transformers, anonymizers, sinks):
        for name in namespace.__all__:
            obj = getattr(namespace, name)
            if isinstance(obj, type) and issubclass(obj, BASES) and obj not in BASES:
                found.append(obj)
    return found


def test_site_builds_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    for page in DOCS.rglob("*.md"):
        relative = page.relative_to(DOCS).with_suffix("")
        built = site / ("index.html" if relative.name == "index" else relative / "index.html")
        assert built.is_file(), f"{page} was not built"
    api = (site / "api" / "index.html").read_text()
    for name in (
        "etl_express.Pipeline",
        "etl_express.Source",
        "etl_express.plugins.load",
        "etl_express.airflow.pipeline_dag",
        "etl_express.sources.SQLSource",
    ):
        assert f'id="{name}"' in api, f"{name} missing from the API reference"


def test_getting_started_gives_the_readme_commands() -> None:
    page = (DOCS / "getting-started.md").read_text()
    readme = (ROOT / "README.md").read_text()
    for command in (
        "python3 -m venv .venv && . .venv/bin/activate",
        'python3 -m pip install ".[embedded,ui]" && etl-express demo',
        'python3 -m pip install -e ".[dev]" && python3 -m pytest',
    ):
        assert command in page and command in readme, command


def test_core_pages_exist() -> None:
    for name in (
        "index",
        "getting-started",
        "concepts",
        "airflow",
        "plugins",
        "writing-a-connector",
        "api",
    ):
        assert words((DOCS / f"{name}.md").read_text()) > 5, name
    concepts = (DOCS / "concepts.md").read_text()
    for heading in (
        "## The four base classes",
        "## The common data format",
        "## Checkpoints and exactly-once",
        "## Partitions",
    ):
        assert heading in concepts


def test_built_in_data_modules_describe_their_logic_in_50_words() -> None:
    modules = data_modules()
    assert sources.SQLSource in modules and sinks.PostgresSink in modules
    short = {cls.__qualname__: words(docstring_logic(cls.__doc__ or "")) for cls in modules}
    assert not {name: n for name, n in short.items() if n < MIN_WORDS}, (
        f"class docstrings need a 'Logic:' description of at least {MIN_WORDS} words: {short}"
    )


def logic_sections(page: Path) -> list[str]:
    text = page.read_text()
    return [
        body
        for _, body in re.findall(
            r"^(#{2,4}) [^\n]*Logic[^\n]*$(.*?)(?=^#{1,4} |\Z)",
            text,
            flags=re.MULTILINE | re.DOTALL,
        )
    ]


def test_logic_sections_of_docs_pages_have_50_words(tmp_path: Path) -> None:
    from cookiecutter.main import cookiecutter

    generated = Path(
        cookiecutter(
            str(ROOT / "cookiecutter-connector"),
            no_input=True,
            output_dir=str(tmp_path),
            extra_context={"connector_name": "docs_probe", "base": "sql"},
        )
    )
    pages = [*sorted(DOCS.rglob("*.md")), generated / "docs" / "docs_probe.md"]
    for page in pages:
        sections = logic_sections(page)
        if page.parent.name == "connectors" or page.parent == generated / "docs":
            assert sections, f"{page} needs a '## Logic' section"
        for body in sections:
            assert words(body) >= MIN_WORDS, (
                f"a Logic section of {page} has fewer than {MIN_WORDS} words"
            )
    assert logic_sections(generated / "docs" / "docs_probe.md")


@pytest.mark.parametrize(
    "doc, expected",
    [
        ("Reads.\n\n    Logic: " + "word " * 60 + "\n\n    Args:\n        x: " + "more " * 10, 60),
        ("Reads " + "word " * 20 + "\n\nExample::\n\n    code here\n", 21),
    ],
)
def test_logic_word_count_reads_the_logic_part_only(doc: str, expected: int) -> None:
    assert words(docstring_logic(doc)) == expected


def test_a_broken_anchor_fails_the_strict_build(tmp_path: Path) -> None:
    """The site's own validation settings turn a link to a missing heading into a failure
    (mkdocs only logs it at INFO unless ``validation: anchors`` says otherwise)."""
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the part](other.md#no-such-heading).\n")
    (docs / "other.md").write_text("# Other\n\n## A heading\n\n[up](#a-heading)\n")
    site = {
        "site_name": "anchors",
        "docs_dir": str(docs),
        "strict": config["strict"],
        "validation": config["validation"],
        "nav": ["index.md", "other.md"],
    }
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(site))
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-f", str(tmp_path / "mkdocs.yml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode != 0, proc.stderr
    assert "no-such-heading" in proc.stderr and "#a-heading" not in proc.stderr
