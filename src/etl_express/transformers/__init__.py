"""Transformers: reshape batches (rename, cast, filter, derive, normalize)."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "Cast": ".columns",
    "Derive": ".rows",
    "Filter": ".rows",
    "NormalizeEmpty": ".rows",
    "Rename": ".columns",
    "Select": ".columns",
    "Transformer": ".base",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from .base import Transformer
    from .columns import Cast, Rename, Select
    from .rows import Derive, Filter, NormalizeEmpty

__all__ = ["Cast", "Derive", "Filter", "NormalizeEmpty", "Rename", "Select", "Transformer"]
