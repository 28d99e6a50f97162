"""Anonymizers: destroy personal data irreversibly before anything is written."""

from .base import Anonymizer

__all__ = ["Anonymizer"]
