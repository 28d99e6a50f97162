"""The compiled extension under AddressSanitizer and UndefinedBehaviorSanitizer.

The extension is built again with the machine's gcc and
``-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer`` into
a temporary copy of the package, and the compiled-path tests — ``tests/test_speedups.py``,
``tests/native/`` (entry points and the fuzz pass, with more examples) and the binary COPY
reader against PostgreSQL (``tests/sources/sql/test_pgbinary.py``) — run in a subprocess
with the sanitizer runtimes preloaded (CPython itself is not built with them). Any report, an
out-of-bounds access or a signed overflow alike, ends that process with an error, and this
test fails with the report. ``ASAN_OPTIONS=detect_leaks=0``: CPython keeps memory until exit
by design. Bounded: about a minute of CPU on two cores (docs/native.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import etl_express

ROOT = Path(__file__).resolve().parents[2]
SANITIZE = [
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=undefined",
    "-fno-omit-frame-pointer",
]
COMPILED_PATH_TESTS = [
    "tests/test_speedups.py",
    "tests/native/test_entry_points.py",
    "tests/native/test_fuzz.py",
    "tests/sources/sql/test_pgbinary.py",
]
#: examples a fuzz test takes in the sanitized run (ETL_EXPRESS_SANITIZER_FUZZ_EXAMPLES)
FUZZ_EXAMPLES = os.environ.get("ETL_EXPRESS_SANITIZER_FUZZ_EXAMPLES", "300")
REPORTS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


def _runtime(gcc: str, name: str) -> str | None:
    found = subprocess.run(
        [gcc, f"-print-file-name={name}"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return found if os.path.isabs(found) and os.path.exists(found) else None


@pytest.fixture(scope="module")
def sanitized_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a Python that imports the sanitized build of etl_express."""
    gcc = shutil.which("gcc")
    runtimes = [_runtime(gcc, lib) for lib in ("libasan.so", "libubsan.so")] if gcc else []
    package = Path(etl_express.__file__).parent
    sources = [package / "_native.c", package / "_copyread.c"]
    missing = None
    if gcc is None or None in runtimes:
        missing = "gcc with libasan and libubsan (apt-get install gcc)"
    elif not all(source.exists() for source in sources):
        missing = "the C sources next to the package (an editable install: pip install -e .)"
    if missing is not None:
        message = f"building the sanitized extension needs {missing}"
        if os.environ.get("ETL_EXPRESS_REQUIRE_NATIVE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    assert gcc is not None
    root = tmp_path_factory.mktemp("sanitized")
    shutil.copytree(
        package, root / "etl_express", ignore=shutil.ignore_patterns("*.so", "__pycache__")
    )
    target = root / "etl_express" / f"_native{sysconfig.get_config_var('EXT_SUFFIX')}"
    build = subprocess.run(
        [
            gcc,
            "-shared",
            "-fPIC",
            "-O1",
            "-g",
            *SANITIZE,
            f"-I{sysconfig.get_paths()['include']}",
            *map(str, sources),
            "-o",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    env = dict(os.environ)
    env.pop("ETL_EXPRESS_NO_NATIVE", None)
    for name in [n for n in env if n.startswith("PYTEST_XDIST")]:
        del env[name]  # not one of our workers: it uses the database this worker was given
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")])),
        LD_PRELOAD=":".join(r for r in runtimes if r),
        ASAN_OPTIONS="detect_leaks=0:halt_on_error=1",
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
        ETL_EXPRESS_REQUIRE_NATIVE="1",
        ETL_EXPRESS_FUZZ_EXAMPLES=FUZZ_EXAMPLES,
        PYTHONDONTWRITEBYTECODE="1",
    )
    env["SANITIZED_BUILD"] = str(target)
    return env


def _run(env: dict[str, str], *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_sanitized_build_is_loaded_and_a_report_fails_the_process(
    sanitized_env: dict[str, str],
) -> None:
    loaded = _run(
        sanitized_env,
        "-c",
        "import etl_express._native as n; print(n.__file__)",
        timeout=60,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == sanitized_env["SANITIZED_BUILD"]
    # a read of poisoned memory is reported and ends the process: the harness would see it
    canary = _run(
        sanitized_env,
        "-c",
        "import ctypes; b = ctypes.create_string_buffer(16); lib = ctypes.CDLL(None); "
        "lib.__asan_poison_memory_region(ctypes.c_void_p(ctypes.addressof(b)), ctypes.c_size_t(16)); "
        "ctypes.string_at(ctypes.addressof(b), 16)",
        timeout=60,
    )
    assert canary.returncode != 0 and "ERROR: AddressSanitizer" in canary.stderr


@pytest.mark.timeout(600)
def test_compiled_paths_and_fuzz_pass_clean_under_asan_and_ubsan(
    sanitized_env: dict[str, str],
) -> None:
    run = _run(
        sanitized_env,
        "-m",
        "pytest",
        "-q",
        "--capture=sys",  # a report goes to fd 2 as it happens, not into a capture lost with the process
        "-n",
        "0",  # in this one process, under the preloaded sanitizer runtimes
        "-p",
        "no:cacheprovider",
        *COMPILED_PATH_TESTS,
        timeout=540,
    )
    output = run.stdout + run.stderr
    reports = [line for line in output.splitlines() if any(r in line for r in REPORTS)]
    assert not reports, output[-8000:]
    assert run.returncode == 0, output[-8000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
