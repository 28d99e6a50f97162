"""Lazy exports for the public packages: a name is imported from its module when it is first
used, so ``import etl_express`` stays light (Airflow parses DAG files every few seconds) and
pandas, SQLAlchemy's dialects, ADBC, httpx and the compiled extension load only when a pipeline
needs them.

Each package lists ``name -> module`` and installs the two module hooks of PEP 562::

    __getattr__, __dir__ = lazy_exports(__name__, {"Pipeline": ".pipeline"})

Type checkers and IDEs see the same names through an ``if TYPE_CHECKING:`` import block.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

_pause = threading.Lock()
_importing = 0  # lazy imports under way, in every thread
_collect_after = False  # the cyclic collector was on when the first of them began


def _after_fork_in_child() -> None:
    """A child forked while another thread was importing has only the forking thread: its
    count of imports under way starts again at none, the collector as the first import found
    it, and the lock new (the parent's may have been held at the fork)."""
    global _pause, _importing
    _pause = threading.Lock()
    if _importing:
        _importing = 0
        if _collect_after:
            gc.enable()


os.register_at_fork(after_in_child=_after_fork_in_child)


def import_paused(target: str, package: str | None = None) -> Any:
    """``importlib.import_module`` with Python's cyclic garbage collector paused until the
    import (and any nested in it) returns, then as it was before.

    An import creates thousands of objects (functions, classes, constants) that live as long
    as the process, and no garbage cycle; the collector, triggered every few hundred
    allocations, traverses them again and again: paused, importing the sinks, sources and
    anonymizers takes about 8% less CPU."""
    global _importing, _collect_after
    with _pause:
        if _importing == 0:
            _collect_after = gc.isenabled()
            gc.disable()
        _importing += 1
    try:
        return importlib.import_module(target, package)
    finally:
        with _pause:
            _importing = max(_importing - 1, 0)  # 0 after a fork reset it (see above)
            if _importing == 0 and _collect_after:
                gc.enable()


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps a public name to the
    module (relative to ``package``) that defines it; a name mapped to itself is a submodule."""

    def __getattr__(name: str) -> Any:
        target = exports.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = import_paused(target, package)
        # ``read`` -> ``.read`` is the function read.read, not its module; a subpackage such as
        # ``sources`` -> ``.sources`` has no attribute of its own name
        submodule = target.lstrip(".") == name and not hasattr(module, name)
        value = module if submodule else getattr(module, name)
        setattr(sys.modules[package], name, value)  # later lookups skip this hook
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
