"""Transformers: reshape batches (rename, cast, filter, derive, normalize)."""

from .base import Transformer

__all__ = ["Transformer"]
