"""Secrets from environment variables (GitHub Actions, CI systems, containers)."""

from __future__ import annotations

import os
import re

from .base import ENV_PREFIX, SecretProvider

_NOT_ENV = re.compile(r"[^A-Za-z0-9_]")


class EnvProvider(SecretProvider):
    """Environment variables — how GitHub Actions hands ``${{ secrets.NAME }}`` to a job.

    ``NAME`` is looked up as ``ETL_EXPRESS_NAME`` first, then as ``NAME``. Characters an
    environment variable cannot hold (``/``, ``-``, ``.``) become ``_``, so
    ``etl.secret("crm/db-url")`` reads ``ETL_EXPRESS_CRM_DB_URL`` or ``CRM_DB_URL`` (names
    that are valid variable names are used as written). An empty variable counts as unset: GitHub Actions expands a
    secret that does not exist to an empty string.
    """

    def __init__(self, prefix: str = ENV_PREFIX):
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"EnvProvider(prefix={self.prefix!r})"

    def _names(self, name: str) -> list[str]:
        base = name if not _NOT_ENV.search(name) else _NOT_ENV.sub("_", name).upper()
        if self.prefix and not base.startswith(self.prefix):
            return [self.prefix + base, base]
        return [base]

    def get(self, name: str) -> str | None:
        for candidate in self._names(name):
            value = os.environ.get(candidate)
            if value:
                return value
        return None

    def describe(self, name: str) -> str:
        return " or ".join(f"env {n}" for n in self._names(name))


__all__ = ["EnvProvider"]
