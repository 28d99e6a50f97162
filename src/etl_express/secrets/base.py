"""The provider interface every secret store implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

ENV_PREFIX = "ETL_EXPRESS_"


class SecretProvider(ABC):
    """One place secrets can come from. Implement :meth:`get` and :meth:`describe`.

    ``get`` returns ``None`` when the store simply does not hold the name, so the chain
    moves on to the next provider; it raises :class:`~etl_express.errors.ETLConfigError`
    only when the store itself is misconfigured or unreachable (a wrong Vault token,
    TLS failure), because silently skipping a broken store hides the real problem.
    Example::

        class DictProvider(SecretProvider):
            def __init__(self, values):
                self.values = values

            def get(self, name):
                return self.values.get(name)

            def describe(self, name):
                return f"dict {name}"

        etl.secret("ANON_KEY", providers=[DictProvider({"ANON_KEY": "..."})])
    """

    @abstractmethod
    def get(self, name: str) -> str | None:
        """The secret's value, or ``None`` when this provider does not have it."""

    @abstractmethod
    def describe(self, name: str) -> str:
        """Where this provider looked for ``name`` (for the missing-secret error)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


__all__ = ["ENV_PREFIX", "SecretProvider"]
