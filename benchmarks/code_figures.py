"""Structural figures of the package, for before/after notes on a clean-up (issue 26).

For each tree it counts: the modules over 400 and over 500 lines (the C files aside), the
annotations that are ``Any`` outright (and the ``Any`` names inside annotations at all), the
``type: ignore`` comments, and the repeated-code pairs that the ``duplicates`` tool (when it is
on the PATH) finds in ``src/``, with how many of them it marks shape-only and boilerplate.

A tree is a git revision (read with ``git archive``, so the working tree is not touched) or,
by default, the ``src/`` of the working tree::

    python benchmarks/code_figures.py                       # the working tree, printed
    python benchmarks/code_figures.py --before 9e6e9fd --after HEAD \\
        --out benchmarks/results/code_figures.md            # the issue-26 note
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = (400, 500)
_PAIRS = re.compile(r"^(\d+) pairs? of places")
_SHAPE = re.compile(r"\((\d+) by shape alone(?:, (\d+) of those marked boilerplate)?\)")


@dataclass
class Figures:
    label: str
    sizes: dict[str, int]
    any_bare: int
    any_inside: int
    ignores: int
    duplicates: list[str] = field(default_factory=list)  # the tool's output lines

    def long(self, limit: int) -> list[tuple[int, str]]:
        return sorted(((n, p) for p, n in self.sizes.items() if n > limit), reverse=True)

    @property
    def export_list_pairs(self) -> int:
        init = "__init__.py"
        return sum(a.endswith(init) and b.endswith(init) for a, b in pair_files(self.duplicates))

    @property
    def c_pairs(self) -> int:
        return sum(a.endswith(".c") or b.endswith(".c") for a, b in pair_files(self.duplicates))

    @property
    def pairs(self) -> tuple[int, int, int] | None:
        """(pairs, of those by shape alone, of those marked boilerplate), or None."""
        if not self.duplicates:
            return None
        head = self.duplicates[0]
        if head.startswith("no duplicates"):
            return 0, 0, 0
        found = _PAIRS.match(head)
        if found is None:
            return None
        shape = _SHAPE.search(head)
        by_shape = int(shape.group(1)) if shape else 0
        boiler = int(shape.group(2)) if shape and shape.group(2) else 0
        return int(found.group(1)), by_shape, boiler


_ROW = re.compile(r"^D\d+ (\S+?):\d+-\d+ ~ (\S+?):\d+-\d+")


def pair_files(lines: list[str]) -> list[tuple[str, str]]:
    """The two files of each pair row of the duplicates report."""
    return [(m.group(1), m.group(2)) for m in map(_ROW.match, lines) if m]


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


def any_counts(sources: list[str]) -> tuple[int, int]:
    """(annotations that are ``Any``, ``Any`` names inside annotations)."""
    bare = inside = 0
    for text in sources:
        for note in annotations(ast.parse(text)):
            if isinstance(note, ast.Constant) and isinstance(note.value, str):
                try:
                    note = ast.parse(note.value, mode="eval").body
                except SyntaxError:
                    continue
            bare += isinstance(note, ast.Name) and note.id == "Any"
            inside += sum(isinstance(n, ast.Name) and n.id == "Any" for n in ast.walk(note))
    return bare, inside


def duplicates(src: Path) -> list[str]:
    tool = shutil.which("duplicates")
    if tool is None:
        return []
    out = subprocess.run(
        [tool, "--repo", str(src), "--most", "200", "--seconds", "120"],
        cwd=src,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return out.splitlines()


def measure(src: Path, label: str) -> Figures:
    files = sorted(src.rglob("*.py"))
    texts = {p.relative_to(src).as_posix(): p.read_text(encoding="utf-8") for p in files}
    bare, inside = any_counts(list(texts.values()))
    ignores = sum(len(re.findall(r"#\s*type:\s*ignore", t)) for t in texts.values())
    sizes = {p: len(t.splitlines()) for p, t in texts.items()}
    return Figures(label, sizes, bare, inside, ignores, duplicates(src))


def measure_revision(rev: str, workdir: Path) -> Figures:
    """The figures of ``src/`` at git revision ``rev`` (extracted with ``git archive``)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = workdir / f"{commit}.tar"
    subprocess.run(
        ["git", "archive", "--format=tar", "-o", str(archive), commit, "src"],
        cwd=ROOT,
        check=True,
    )
    target = workdir / commit
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return measure(target / "src", f"{rev} ({commit})" if rev != commit else commit)


def report(figures: list[Figures]) -> str:
    """Markdown: a table of the counts, the long modules, the duplicate pairs of the last."""
    lines = ["| figure | " + " | ".join(f.label for f in figures) + " |"]
    lines.append("| --- |" + " --- |" * len(figures))

    def row(name: str, values: list[object]) -> None:
        lines.append(f"| {name} | " + " | ".join(str(v) for v in values) + " |")

    for limit in SIZES:
        row(f"modules over {limit} lines", [len(f.long(limit)) for f in figures])
    row("annotations that are `Any`", [f.any_bare for f in figures])
    row("`Any` inside annotations", [f.any_inside for f in figures])
    row("`type: ignore` comments", [f.ignores for f in figures])
    counts = [f.pairs for f in figures]
    row("duplicate pairs in src/", [c[0] if c else "n/a" for c in counts])
    row("… of those by shape alone", [c[1] if c else "n/a" for c in counts])
    row("… of those marked boilerplate", [c[2] if c else "n/a" for c in counts])
    row("… between two `__init__.py` (export lists)", [f.export_list_pairs for f in figures])
    row("… with a C file", [f.c_pairs for f in figures])
    for f in figures:
        lines += ["", f"Modules over {SIZES[0]} lines, {f.label}:", ""]
        lines += [f"- {p}: {n}" for n, p in f.long(SIZES[0])] or ["- none"]
    last = figures[-1]
    if last.duplicates:
        lines += ["", f"The duplicates report on src/, {last.label}:", "", "```"]
        lines += last.duplicates
        lines.append("```")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Module sizes, Any and type: ignore counts and duplicate pairs of src/, "
        "for a git revision or the working tree; with --before, side by side.",
    )
    parser.add_argument(
        "src", nargs="?", type=Path, default=ROOT / "src", help="the working tree's src/"
    )
    parser.add_argument("--before", metavar="REV", help="a git revision to compare with")
    parser.add_argument(
        "--after", metavar="REV", help="a git revision in place of the working tree's src/"
    )
    parser.add_argument("--out", type=Path, help="write the Markdown note here, else print it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        figures = []
        if args.before:
            figures.append(measure_revision(args.before, Path(tmp)))
        if args.after:
            figures.append(measure_revision(args.after, Path(tmp)))
        else:
            figures.append(measure(args.src.resolve(), "working tree"))
    text = report(figures)
    if args.out is None:
        sys.stdout.write(text)
        return
    command = "python benchmarks/code_figures.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    title = "# Code figures (issue 26: storage by owner)\n\n"
    args.out.write_text(title + f"Reproduce: `{command}`\n\n" + text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
