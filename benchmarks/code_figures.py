"""Structural figures of the package, for before/after notes on a clean-up (issue 26).

Prints the modules over 500 lines (the C files aside), how many function parameters,
returns and variables are annotated ``Any`` outright (and how many ``Any`` appear inside
annotations at all), the ``type: ignore`` comments, and — when the ``duplicates`` tool is on
the PATH — its count of repeated-code pairs in ``src/``::

    python benchmarks/code_figures.py [path/to/src]
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

LONG = 500


def annotations(tree: ast.AST) -> list[ast.expr]:
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is not None and arg.annotation is not None:
                    found.append(arg.annotation)
            if node.returns is not None:
                found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
    return found


def any_counts(files: list[Path]) -> tuple[int, int]:
    """(annotations that are ``Any``, ``Any`` names inside annotations)."""
    bare = inside = 0
    for path in files:
        for note in annotations(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(note, ast.Constant) and isinstance(note.value, str):
                try:
                    note = ast.parse(note.value, mode="eval").body
                except SyntaxError:
                    continue
            bare += isinstance(note, ast.Name) and note.id == "Any"
            inside += sum(isinstance(n, ast.Name) and n.id == "Any" for n in ast.walk(note))
    return bare, inside


def main() -> None:
    src = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[1] / "src")
    files = sorted(src.rglob("*.py"))
    sizes = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in files}
    long = sorted(((n, p) for p, n in sizes.items() if n > LONG), reverse=True)
    print(f"modules over {LONG} lines: {len(long)}")
    for n, p in long:
        print(f"  {n:5} {p.relative_to(src)}")
    bare, inside = any_counts(files)
    print(f"annotations that are Any: {bare} (Any inside annotations: {inside})")
    ignores = sum(len(re.findall(r"#\s*type:\s*ignore", p.read_text())) for p in files)
    print(f"type: ignore comments: {ignores}")
    tool = shutil.which("duplicates")
    if tool:
        out = subprocess.run(
            [tool, "--most", "200", "--seconds", "120"], cwd=src, capture_output=True, text=True
        ).stdout
        print("duplicates:", out.splitlines()[0] if out else "no output")


if __name__ == "__main__":
    main()
