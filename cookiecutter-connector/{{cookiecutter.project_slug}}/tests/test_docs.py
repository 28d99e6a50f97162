"""The connector is documented: its Logic descriptions say at least 50 words, and its entry
point finds it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from etl_express import plugins
from {{ cookiecutter.package_name }} import {{ cookiecutter.class_name }}

ROOT = Path(__file__).resolve().parents[1]
MIN_WORDS = 50


def words(text: str) -> int:
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)  # the instructions do not count
    return len(re.findall(r"[\w'`.-]+", text))


def test_docs_page_logic_section_has_at_least_50_words() -> None:
    page = (ROOT / "docs" / "{{ cookiecutter.connector_name }}.md").read_text(encoding="utf-8")
    match = re.search(r"^## Logic\s*$(.*?)(?=^## |\Z)", page, flags=re.M | re.S)
    assert match, "docs/{{ cookiecutter.connector_name }}.md needs a '## Logic' section"
    assert words(match.group(1)) >= MIN_WORDS, "describe the connector's logic in at least 50 words"


def test_class_docstring_logic_has_at_least_50_words() -> None:
    doc = {{ cookiecutter.class_name }}.__doc__ or ""
    match = re.search(r"Logic:(.*?)(?:\n\s*\n|\Z)", doc, flags=re.S)
    assert match, "the class docstring needs a 'Logic:' paragraph"
    assert words(match.group(1)) >= MIN_WORDS, "describe the connector's logic in at least 50 words"


def test_entry_point_is_declared_and_loads() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert declared["etl_express.sources"]["{{ cookiecutter.connector_name }}"] == (
        "{{ cookiecutter.package_name }}:{{ cookiecutter.class_name }}")
    assert plugins.load("sources", "{{ cookiecutter.connector_name }}") is {{ cookiecutter.class_name }}
