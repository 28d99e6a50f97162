"""``etl.secret``: a lazy reference to a named secret."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import SecretStr

from ..errors import ETLConfigError
from .base import ENV_PREFIX, SecretProvider
from .chain import PROVIDERS_ENV, default_providers
from .masking import register_secret


class SecretRef:
    """A lazy reference to a named secret; resolve it with :meth:`get`.

    Nothing is looked up until :meth:`get` is called (at run time), and then the
    providers are asked in order; the first that has the name wins. The resolved value is
    remembered for masking, so it is replaced by ``***`` in every log line and error.
    """

    __slots__ = ("name", "providers")

    def __init__(self, name: str, providers: Sequence[SecretProvider] | None = None):
        if not name or not isinstance(name, str):
            raise ETLConfigError(
                "secret name must be a non-empty string", hint='etl.secret("ANON_KEY")'
            )
        self.name = name
        self.providers = list(providers) if providers is not None else None

    def get(self) -> SecretStr:
        providers = self.providers if self.providers is not None else default_providers()
        for provider in providers:
            value = provider.get(self.name)
            if value is not None:
                register_secret(value)
                return SecretStr(value)
        tried = ", ".join(p.describe(self.name) for p in providers) or "no providers configured"
        raise ETLConfigError(
            f"secret {self.name!r} not found (tried: {tried})",
            hint=f"set environment variable {ENV_PREFIX}{self.name} or {self.name}, "
            f"or add it to one of the secret stores listed (chain: {PROVIDERS_ENV})",
        )

    def __repr__(self) -> str:
        return f"secret({self.name!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SecretRef)
            and other.name == self.name
            and other.providers == self.providers
        )

    def __hash__(self) -> int:
        return hash(("SecretRef", self.name))


def secret(name: str, providers: Sequence[SecretProvider] | None = None) -> SecretRef:
    """A lazy reference to the secret ``name``, resolved at run time.

    Without ``providers`` the process-wide chain is used (see :func:`use_providers` and
    ``ETL_EXPRESS_SECRET_PROVIDERS``). Example: ``SQLSource(url=etl.secret("CRM_DB_URL"))``.
    """
    return SecretRef(name, providers)


SecretLike = str | SecretStr | SecretRef


def reveal(value: SecretLike | None) -> str | None:
    """The plain value of a secret-like argument (for the code that must use it).

    Values from a :class:`SecretRef` or a ``SecretStr`` are remembered for masking.
    """
    if value is None:
        return None
    if isinstance(value, SecretRef):
        return value.get().get_secret_value()
    if isinstance(value, SecretStr):
        plain = value.get_secret_value()
        register_secret(plain)
        return plain
    return value


__all__ = ["SecretLike", "SecretRef", "reveal", "secret"]
