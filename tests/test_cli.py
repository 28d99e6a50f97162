import os
import subprocess
import sys


def run_cli(*args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "etl_express.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def test_help_lists_commands():
    out = run_cli("--help")
    assert out.returncode == 0, out.stderr
    assert "demo" in out.stdout and "exactly-once" in out.stdout


def test_demo_help_explains_itself():
    out = run_cli("demo", "--help")
    assert out.returncode == 0
    assert "--reset" in out.stdout and "--rows" in out.stdout


def test_version_says_whether_the_compiled_speedups_are_in_use():
    from importlib.metadata import version

    out = run_cli("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"etl-express {version('etl-express')} (compiled speedups: ")
    off = run_cli("--version", env={"ETL_EXPRESS_NO_NATIVE": "1"})
    assert "compiled speedups: off (ETL_EXPRESS_NO_NATIVE is set)" in off.stdout
    if os.environ.get("ETL_EXPRESS_REQUIRE_NATIVE") == "1":
        assert "compiled speedups: on" in out.stdout
