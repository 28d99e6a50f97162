"""Transformers: reshape batches (rename, cast, filter, derive, normalize)."""

from .base import Transformer
from .columns import Cast, Rename, Select
from .rows import Derive, Filter, NormalizeEmpty

__all__ = ["Cast", "Derive", "Filter", "NormalizeEmpty", "Rename", "Select", "Transformer"]
