"""Lazy exports for the public packages: a name is imported from its module when it is first
used, so ``import etl_express`` stays light (Airflow parses DAG files every few seconds) and
pandas, SQLAlchemy's dialects, ADBC, httpx and the compiled extension load only when a pipeline
needs them.

Each package lists ``name -> module`` and installs the two module hooks of PEP 562::

    __getattr__, __dir__ = lazy_exports(__name__, {"Pipeline": ".pipeline"})

Type checkers and IDEs see the same names through an ``if TYPE_CHECKING:`` import block.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps a public name to the
    module (relative to ``package``) that defines it; a name mapped to itself is a submodule."""

    def __getattr__(name: str) -> Any:
        target = exports.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(target, package)
        # ``read`` -> ``.read`` is the function read.read, not its module; a subpackage such as
        # ``sources`` -> ``.sources`` has no attribute of its own name
        submodule = target.lstrip(".") == name and not hasattr(module, name)
        value = module if submodule else getattr(module, name)
        setattr(sys.modules[package], name, value)  # later lookups skip this hook
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
