"""Secrets: lazy references resolved at run time through a chain of providers.

``etl.secret("CRM_DB_URL")`` returns a :class:`SecretRef`; nothing is looked up until a
run needs the value. Values are ``pydantic.SecretStr``: they never show in a repr, a log
line, an exception or a ``RunResult``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Union

from pydantic import SecretStr

from ..errors import ETLConfigError

ENV_PREFIX = "ETL_EXPRESS_"


class SecretProvider(ABC):
    """One place secrets can come from. Implement :meth:`get` and :meth:`describe`."""

    @abstractmethod
    def get(self, name: str) -> str | None:
        """The secret's value, or ``None`` when this provider does not have it."""

    @abstractmethod
    def describe(self, name: str) -> str:
        """Where this provider looked for ``name`` (for the missing-secret error)."""


class EnvProvider(SecretProvider):
    """Environment variables — how GitHub Actions hands ``${{ secrets.NAME }}`` to a job.

    ``NAME`` is looked up as ``ETL_EXPRESS_NAME`` first, then as ``NAME``.
    """

    def __init__(self, prefix: str = ENV_PREFIX):
        self.prefix = prefix

    def _names(self, name: str) -> list[str]:
        names = [self.prefix + name] if self.prefix and not name.startswith(self.prefix) else []
        return names + [name]

    def get(self, name: str) -> str | None:
        for candidate in self._names(name):
            value = os.environ.get(candidate)
            if value:
                return value
        return None

    def describe(self, name: str) -> str:
        return " or ".join(f"env {n}" for n in self._names(name))


def default_providers() -> list[SecretProvider]:
    """The provider chain used when none is given."""
    return [EnvProvider()]


class SecretRef:
    """A lazy reference to a named secret; resolve it with :meth:`get`."""

    __slots__ = ("name", "providers")

    def __init__(self, name: str, providers: Sequence[SecretProvider] | None = None):
        if not name or not isinstance(name, str):
            raise ETLConfigError("secret name must be a non-empty string", hint='etl.secret("ANON_KEY")')
        self.name = name
        self.providers = list(providers) if providers is not None else None

    def get(self) -> SecretStr:
        providers = self.providers if self.providers is not None else default_providers()
        for provider in providers:
            value = provider.get(self.name)
            if value is not None:
                return SecretStr(value)
        tried = ", ".join(p.describe(self.name) for p in providers)
        raise ETLConfigError(
            f"secret {self.name!r} not found (tried: {tried})",
            hint=f"set environment variable {ENV_PREFIX}{self.name} or {self.name}, "
            "or add it to one of the secret stores listed",
        )

    def __repr__(self) -> str:
        return f"secret({self.name!r})"

    __str__ = __repr__


def secret(name: str, providers: Sequence[SecretProvider] | None = None) -> SecretRef:
    """A lazy reference to the secret ``name``, resolved at run time."""
    return SecretRef(name, providers)


SecretLike = Union[str, SecretStr, SecretRef]


def reveal(value: SecretLike | None) -> str | None:
    """The plain value of a secret-like argument (for the code that must use it)."""
    if value is None:
        return None
    if isinstance(value, SecretRef):
        return value.get().get_secret_value()
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value


__all__ = ["EnvProvider", "SecretLike", "SecretProvider", "SecretRef", "default_providers", "reveal", "secret"]
