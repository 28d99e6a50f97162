"""Environments holding only what an install line installs, for the docs tests.

``pip install "etl-express[ui]"`` brings etl-express, its dependencies, the ``ui`` extra and
their dependencies — nothing else. :func:`environment` builds that environment without the
network: a fresh virtual environment (no system site-packages) whose site-packages links, from
the environment running the tests, exactly the distributions of the install line's dependency
closure (resolved from their installed metadata, markers and extras evaluated as pip does), with
their console scripts. A module the install line does not bring cannot be imported there, and a
command it does not install is not on the environment's PATH.

etl-express itself is this checkout's ``src`` (a ``.pth`` file), with its installed metadata for
the entry points.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "etl-express"
#: the extras a contributor installs, not a user: a line with one of them is not a user's
CONTRIBUTOR_EXTRAS = {"dev", "bench"}
_FENCE = re.compile(r"^```(?:bash|sh|shell|console)\n(.*?)^```", re.DOTALL | re.MULTILINE)
_PIP = re.compile(r"\bpip3?\s+install\s+([^\n&|;#`]+)")


def install_requirements(command: str) -> list[str]:
    """The requirements of one ``pip install ...`` command line: ``.[x,y]`` (the checkout) is
    ``etl-express[x,y]``; options are left out."""
    found = []
    for word in shlex.split(command):
        if word.startswith("-"):
            continue
        if word == "." or word.startswith(".["):
            word = PROJECT + word[1:]
        found.append(word)
    return found


def user_install_lines(text: str, before: int | None = None) -> list[tuple[int, list[str]]]:
    """Every ``pip install`` in the fenced shell blocks of a page (line, requirements), up to
    line ``before``; a contributor's line (the ``dev`` or ``bench`` extra) is not a user's."""
    lines = []
    for block in _FENCE.finditer(text):
        for match in _PIP.finditer(block.group(1)):
            line = text[: block.start(1) + match.start()].count("\n") + 1
            if before is not None and line > before:
                continue
            requirements = install_requirements(match.group(1))
            extras = {e for r in requirements for e in Requirement(r).extras}
            if requirements and not extras & CONTRIBUTOR_EXTRAS:
                lines.append((line, requirements))
    return lines


@cache
def _distribution(name: str) -> md.Distribution:
    try:
        return md.distribution(name)
    except md.PackageNotFoundError:
        raise AssertionError(
            f"{name} is needed by a documented install line but is not installed where the "
            "tests run: install the project's dev extra"
        ) from None


def closure(requirements: Iterable[str]) -> dict[str, md.Distribution]:
    """The installed distributions ``requirements`` bring, by canonical name."""
    found: dict[str, md.Distribution] = {}
    done: set[tuple[str, str]] = set()  # (distribution, extra) whose requirements are in
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        dist = found.setdefault(name, _distribution(name))
        for extra in ("", *sorted(canonicalize_name(e) for e in req.extras)):
            if (name, extra) in done:
                continue
            done.add((name, extra))
            for text in dist.requires or []:
                sub = Requirement(text)
                marker = sub.marker
                if marker is None:
                    wanted = extra == ""
                else:
                    wanted = marker.evaluate({**default_environment(), "extra": extra})
                    if extra and wanted:  # only what this extra adds, not the base again
                        wanted = not marker.evaluate({**default_environment(), "extra": ""})
                if wanted:
                    todo.append(sub)
    return found


def _top_level(dist: md.Distribution) -> set[str]:
    names = set()
    for file in dist.files or []:
        parts = Path(file).parts
        if parts and parts[0] != ".." and not parts[0].endswith(".pth"):
            names.add(parts[0])
    return names


def _site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def _console_scripts(dist: md.Distribution, venv: Path) -> None:
    python = venv / "bin" / "python"
    for ep in dist.entry_points.select(group="console_scripts"):
        module, _, attr = ep.value.partition(":")
        target = attr.strip() or "main"
        head = target.split(".")[0]
        script = venv / "bin" / ep.name
        script.write_text(
            f"#!{python}\nimport sys\nfrom {module.strip()} import {head}\nsys.exit({target}())\n"
        )
        script.chmod(0o755)


def build(requirements: list[str], where: Path) -> Path:
    """A virtual environment at ``where`` holding exactly what ``requirements`` install; its
    ``bin/python``."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    site = _site_packages(where)
    for name, dist in closure(requirements).items():
        if name == PROJECT:
            (site / "etl_express_checkout.pth").write_text(str(ROOT / "src") + "\n")
            names = {n for n in _top_level(dist) if n.endswith(".dist-info")}
        else:
            names = _top_level(dist)
        for top in names:
            source = Path(dist.locate_file(top))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)
        _console_scripts(dist, where)
    return where / "bin" / "python"


def _other_python(folder: str) -> bool:
    """Whether a PATH entry belongs to the Python environment running the tests (or another
    one): its commands must not be found from the built environment."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    path = Path(folder)
    return (
        any(folder.startswith(p) for p in prefixes)
        or (path.parent / "pyvenv.cfg").exists()
        or ".pyenv" in path.parts
    )


def environment_vars(python: Path) -> dict[str, str]:
    """The process environment of a command in that environment: its ``bin`` first on PATH,
    no other Python environment's ``bin`` there, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and not _other_python(p)]
    env["PATH"] = os.pathsep.join([str(python.parent), *rest])
    env["VIRTUAL_ENV"] = str(python.parent.parent)
    return env


__all__ = [
    "build",
    "closure",
    "environment_vars",
    "install_requirements",
    "user_install_lines",
]
