"""Security hygiene: no credential in the repository (secrets scan), open-source runtime
dependencies only (licence check), CI workflows without literal credentials, and error
messages that say what/where/how without leaking values."""

from __future__ import annotations

import importlib.metadata as md
import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import etl_express as etl
from etl_express.errors import (
    AnonymizationError,
    ETLConfigError,
    ETLError,
    QualityError,
    SinkError,
    SourceError,
)
from etl_express.retry import RetryPolicy

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
_SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    "site",
    "build",
    "dist",
}


# -- secrets scan ------------------------------------------------------------------------------


def repository_files(root: Path) -> list[Path]:
    """The files git tracks (plus new, not ignored ones); every file when not a git work tree."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
        files = [root / name for name in out.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = [
            p for p in root.rglob("*") if not _SKIP_DIRS.intersection(p.relative_to(root).parts)
        ]
    return sorted(p for p in files if p.is_file() and not p.is_symlink())


def scan_for_secrets(root: Path, files: list[Path]) -> list[str]:
    """detect-secrets' default plugins and filters over ``files``: ``path:line: type`` each.

    A line that must hold a credential-like test value says so with
    ``# pragma: allowlist secret``; better, build the value at run time.
    """
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    with default_settings():
        collection = SecretsCollection(root="")
        collection.scan_files(*(str(f) for f in files), num_processors=1)
    return sorted(
        f"{Path(s.filename).relative_to(root)}:{s.line_number}: {s.type}" for _, s in collection
    )


def test_repository_has_no_hardcoded_credentials() -> None:
    files = repository_files(ROOT)
    assert ROOT / "pyproject.toml" in files and len(files) > 20
    assert scan_for_secrets(ROOT, files) == []


def test_secrets_scan_fails_on_a_planted_credential(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    files = []
    # a few real files beside the planted ones (the whole tree is scanned by the test above;
    # scanning it twice doubled the cost of this one)
    real = [
        ROOT / "pyproject.toml",
        ROOT / "README.md",
        *sorted((ROOT / "src" / "etl_express" / "secrets").glob("*.py")),
    ]
    for f in real:
        target = copy / f.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
        files.append(target)
    assert scan_for_secrets(copy, files) == []  # the clean copy passes
    # assembled here at run time, so this test file itself holds no credential
    token = uuid.uuid4().hex
    planted = {
        # letters in the password: an all-digit one is skipped by detect-secrets as no secret
        "src/etl_express/local_settings.py": f'WAREHOUSE = "postgresql://etl:Zk{token[:12]}@db.corp:5432/dw"\n',
        "deploy/app.env": "AWS_ACCESS_KEY_ID=" + "AKIA" + token[:16].upper() + "\n",
        "scripts/load.py": 'db_password = "' + "Vq3" + token[14:26] + '"\n',
        "deploy/id_rsa": "-----BEGIN "
        "RSA PRIVATE KEY-----\n" + token * 2 + "\n-----END RSA PRIVATE KEY-----\n",
    }
    for name, text in planted.items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_text(text)
        files.append(copy / name)
    found = scan_for_secrets(copy, files)
    assert {line.split(":")[0] for line in found} == set(planted)


# -- licences ----------------------------------------------------------------------------------

_OPEN = re.compile(
    r"\b(MIT|BSD|0BSD|Apache|MPL|Mozilla Public License|L?GPL|(Lesser )?General Public License|ISC|ISCL|"
    r"PSF|Python Software Foundation|Unlicense|Zlib|CC0|HPND|ZPL|Zope Public License|BSL-1\.0|"
    r"Boost Software License|Artistic|EPL|Eclipse Public License)\b",
    re.IGNORECASE,
)
_CLOSED = re.compile(
    r"proprietary|commercial|all rights reserved|unknown|non-?free|SSPL|BUSL|Elastic", re.IGNORECASE
)


def is_open_source(license_text: str) -> bool:
    """Every part of a licence text or SPDX expression names an OSI-approved licence."""
    parts = [
        p.strip(" ()")
        for p in re.split(r"\bAND\b|\bOR\b|;|,|\bWITH\b", license_text or "")
        if p.strip(" ()")
    ]
    return bool(parts) and all(
        _OPEN.search(p) and not _CLOSED.search(p)
        for p in parts
        if not p.lower().startswith(("llvm-exception", "classpath-exception"))
    )


def core_requirements() -> list[str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10: the installed metadata has the same list
        return [r for r in md.requires("etl-express") or [] if "extra ==" not in r]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def runtime_closure() -> list[str]:
    """Distribution names of the core dependencies and everything they pull in, here."""
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    stack = [Requirement(r) for r in core_requirements()]
    while stack:
        req = stack.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        dist = md.distribution(req.name)
        names.add(dist.metadata["Name"])
        for text in dist.requires or []:
            child = Requirement(text)
            if child.marker is None or any(
                child.marker.evaluate({"extra": e}) for e in {"", *req.extras}
            ):
                stack.append(child)
    return sorted(names)


def test_every_runtime_dependency_is_open_source() -> None:
    names = runtime_closure()
    assert {"pyarrow", "SQLAlchemy", "psycopg-binary", "keyring", "loguru"} <= set(names)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "piplicenses",
            "--from=mixed",
            "--format=json",
            "--with-system",
            "--packages",
            *names,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    licences = {canonicalize_name(d["Name"]): d["License"] for d in json.loads(out)}
    assert set(licences) == {canonicalize_name(n) for n in names}
    closed = {name: text for name, text in licences.items() if not is_open_source(text)}
    assert closed == {}


@pytest.mark.parametrize(
    "text, ok",
    [
        ("MIT License", True),
        ("Apache-2.0 OR BSD-3-Clause", True),
        ("MPL-2.0 AND MIT", True),
        ("LGPL-3.0-only", True),
        ("ISC License (ISCL)", True),
        ("PSF-2.0", True),
        ("Proprietary", False),
        ("UNKNOWN", False),
        ("Commercial License", False),
        ("", False),
        ("MIT AND Proprietary", False),
        ("BUSL-1.1", False),
    ],
)
def test_licence_classification(text: str, ok: bool) -> None:
    assert is_open_source(text) is ok


# -- GitHub Actions workflows ---------------------------------------------------------------------


def _workflow(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    if True in doc:  # YAML 1.1 reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


def _pairs(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _pairs(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _pairs(v, key)
    else:
        yield key, node


_CREDENTIAL_KEY = re.compile(
    r"(PASSWORD|PASSWD|TOKEN|SECRET|CREDENTIALS?|_KEY|API_?KEY|_URL|_DSN)$", re.IGNORECASE
)
_EXPRESSION = re.compile(r"^\$\{\{\s*(secrets|vars|matrix|runner|github)\.[A-Za-z0-9_.]+\s*\}\}")
_URL_WITH_PASSWORD = re.compile(r"://[^\s:/@]+:[^\s@]+@")


def literal_credentials(doc: dict[str, Any]) -> list[str]:
    """Keys that look like credentials but hold a literal value rather than an expression."""
    bad = []
    for key, value in _pairs(doc):
        if not isinstance(value, str) or _EXPRESSION.match(value):
            continue
        if _URL_WITH_PASSWORD.search(value) or (
            _CREDENTIAL_KEY.search(key)
            and not key.upper().endswith("_URL")
            and value.lower() not in ("0", "1", "true", "false", "yes", "no")
        ):
            bad.append(key)
    return bad


def test_ci_workflow_runs_the_suite_with_postgres_and_mariadb() -> None:
    ci = _workflow("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    job = ci["jobs"]["test"]
    assert job["services"]["postgres"]["image"].startswith("postgres:")
    assert job["services"]["mariadb"]["image"].startswith("mariadb:")
    assert "bash .ci/run" in [step.get("run") for step in job["steps"]]
    assert job["env"]["ETL_EXPRESS_TEST_DATABASE_URL"].startswith(
        "postgresql://postgres@127.0.0.1:5432/"
    )
    assert job["env"]["ETL_EXPRESS_TEST_MYSQL_URL"].startswith(
        "mysql+pymysql://root@127.0.0.1:3306/"
    )


def test_daily_pipeline_workflow_schedule_and_secrets() -> None:
    daily = _workflow("daily-pipeline.yml")
    (cron,) = [entry["cron"] for entry in daily["on"]["schedule"]]
    minute, hour, day, month, weekday = cron.split()
    assert (day, month, weekday) == ("*", "*", "*")  # every day
    assert 0 <= int(minute) < 60 and 0 <= int(hour) < 24
    steps = daily["jobs"]["load"]["steps"]
    step = next(s for s in steps if "examples/github_actions_daily.py" in s.get("run", ""))
    example = (ROOT / "examples" / "github_actions_daily.py").read_text()
    names = set(re.findall(r'etl\.secret\("([A-Z0-9_]+)"\)', example))
    assert names == {"CRM_DB_URL", "WAREHOUSE_DB_URL"}
    for name in names:  # every secret the pipeline reads comes from GitHub Secrets
        assert re.fullmatch(rf"\$\{{\{{\s*secrets\.{name}\s*\}}\}}", step["env"][name])


@pytest.mark.parametrize("name", ["ci.yml", "daily-pipeline.yml"])
def test_workflows_hold_no_literal_credentials(name: str) -> None:
    assert literal_credentials(_workflow(name)) == []
    assert not _URL_WITH_PASSWORD.search((WORKFLOWS / name).read_text())


def test_literal_credential_check_catches_literals() -> None:
    password = uuid.uuid4().hex[:12]
    expression = "${{ secrets.API_TOKEN }}"
    env = {
        "DB_PASSWORD": password,
        "API_TOKEN": expression,
        "DATABASE_URL": f"postgresql://etl:{password}@db/x",
        "FLAG_PASSWORD": str(True).lower(),
    }
    doc = {"jobs": {"x": {"env": env}}}
    assert literal_credentials(doc) == ["DB_PASSWORD", "DATABASE_URL"]


# -- error messages: what failed, where, what to do ----------------------------------------------------


def test_error_message_format() -> None:
    error = SourceError(
        "reading customers failed: OperationalError",
        where={
            "pipeline": "crm",
            "partition": "all",
            "batch": 3,
            "after position": {"id": 10},
            "table": None,
        },
        hint="the next run resumes from the last committed batch",
    )
    assert str(error) == (
        "reading customers failed: OperationalError "
        "[pipeline=crm, partition=all, batch=3, after position={'id': 10}]. "
        "Fix: the next run resumes from the last committed batch"
    )
    assert (error.what, error.where["batch"], error.hint) == (
        "reading customers failed: OperationalError",
        3,
        "the next run resumes from the last committed batch",
    )
    assert str(ETLError("plain")) == "plain"


def test_one_hierarchy() -> None:
    for kind in (ETLConfigError, SourceError, SinkError, QualityError, AnonymizationError):
        assert issubclass(kind, ETLError) and kind is getattr(etl, kind.__name__)
        with pytest.raises(ETLError):
            raise kind("x")


def test_error_messages_mask_credentials() -> None:
    password = uuid.uuid4().hex[:12]
    error = SinkError(
        f"cannot connect to postgresql://etl:{password}@db:5432/dw",
        where={"url": f"mysql://root:{password}@h/x"},
    )
    assert password not in str(error) and str(error).count("***") == 2


def test_pipeline_errors_name_the_place_and_the_fix(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    from etl_express.sinks import PostgresSink

    class Broken(etl.Source):
        name, primary_key = "broken", ["id"]

        def read(self, position: Any = None, partition: Any = None) -> Iterator[etl.Batch]:
            yield etl.Batch([{"id": 1}], position=1)
            raise ConnectionError("reset by peer")

    sink = PostgresSink(table=f"{schema}.broken")
    with pytest.raises(SourceError) as info:
        etl.Pipeline(
            pipeline_name, Broken(), sink=sink, progress=False, retry=RetryPolicy(attempts=0)
        ).run()
    message = str(info.value)
    assert message.startswith("reading broken failed: ConnectionError")  # what
    assert (
        f" [pipeline={pipeline_name}, partition=all, batch=1, after position=1]. " in message
    )  # where
    assert message.endswith("Fix: the next run resumes from the last committed batch")  # what to do
    with pytest.raises(
        AnonymizationError,
        match=rf"\['email'\] would reach the sink without an anonymizer that covers them "
        rf"\('email': 'email' \(tagged pii=\) as read: no anonymizer covers it\) "
        rf"\[pipeline={pipeline_name}, source=broken\]\. Fix: add an anonymizer",
    ):
        etl.Pipeline(pipeline_name, Broken(), sink=sink, pii=["email"]).run()
