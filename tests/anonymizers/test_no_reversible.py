"""The anonymizers package offers no reversible operator: no encryption, no format-preserving
encryption, no mapping table from tokens back to values."""

from __future__ import annotations

import ast
import inspect
import pickle
import re
from pathlib import Path

import pyarrow as pa
import pytest

import etl_express as etl
from etl_express import anonymizers
from etl_express.anonymizers import Generalize, Mask, Pseudonymize, Redact, ScrubPII, Suppress

PACKAGE = Path(anonymizers.__file__).parent
FORBIDDEN_MODULES = {
    "cryptography",
    "Crypto",
    "Cryptodome",
    "nacl",
    "pyffx",
    "ff3",
    "pyfpe",
    "fernet",
    "pyaes",
    "shelve",
    "dbm",
    "sqlite3",
}
FORBIDDEN_NAME = re.compile(
    r"(?i)(encrypt|decrypt|cipher|fernet|aes_|_aes|\baes\b|fpe|ff1|ff3|feistel|unmask|unredact|depseudonym|"
    r"reidentif|re_identif|reverse_token|detokeni[sz]|token_map|mapping_table|lookup_table|vault)"
)


def _identifiers(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name)
    return names


def _imports(tree: ast.AST) -> set[str]:
    mods: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module.split(".")[0])
    return mods


def test_package_source_has_no_reversible_operator() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) >= 8
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert not (_imports(tree) & FORBIDDEN_MODULES), path.name
        bad = sorted(n for n in _identifiers(tree) if FORBIDDEN_NAME.search(n))
        assert not bad, f"{path.name}: {bad}"


def test_no_public_inverse() -> None:
    for name in anonymizers.__all__:
        obj = getattr(anonymizers, name)
        members = (
            [m for m, _ in inspect.getmembers(obj)]
            if inspect.isclass(obj) or inspect.ismodule(obj)
            else []
        )
        for member in [name, *members]:
            assert not FORBIDDEN_NAME.search(member), f"{name}.{member}"
            assert not re.search(
                r"(?i)^(restore|reverse|inverse|decode|unpseudonymize|lookup)", member
            ), member


def test_no_anonymizer_keeps_what_it_saw(monkeypatch: pytest.MonkeyPatch) -> None:
    """After anonymizing, nothing of the raw values is held in memory (no mapping table)."""
    raw = [
        "kanareyka.unique.41@example.org",
        "+79035550199",
        "Уникальный Комментарий 8 916 555 01 99",
    ]
    batch = pa.RecordBatch.from_pydict({"email": raw[:1], "phone": raw[1:2], "notes": raw[2:]})
    # a secret reference: a key given as a SecretStr value refuses to be pickled
    fake_key = "Q" + "w8Zr2LmX9vK4tPq7Ns1Yb5Jd3Hc6Fg0A"  # pragma: allowlist secret
    monkeypatch.setenv("ETL_EXPRESS_NO_REVERSIBLE_KEY", fake_key)
    key = etl.secret("NO_REVERSIBLE_KEY")
    for anonymizer in (
        Pseudonymize(["email", "phone"], key=key),
        ScrubPII(["notes"]),
        ScrubPII(["notes"], replace="pseudonym", key=key),
        Redact(["email"]),
        Mask(["email"], keep_last=3),
        Suppress(["phone"]),
        Generalize(["notes"], to="region"),
    ):
        out = anonymizer.anonymize(batch)
        assert out.num_rows == 1
        state = pickle.dumps(anonymizer)
        for value in raw:
            assert value.encode() not in state, (anonymizer, value)
            assert value.lower().encode() not in state
