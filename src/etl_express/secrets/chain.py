"""Which providers ``etl.secret`` asks, in which order: set in code or by environment."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ETLConfigError
from .base import ENV_PREFIX, SecretProvider
from .env import EnvProvider
from .files import FileProvider
from .keyring_store import KeyringProvider
from .vault_env import vault_address

if TYPE_CHECKING:  # the Vault client (pydantic models, httpx) loads when Vault is used
    from .vault import VaultProvider, VaultSettings

PROVIDERS_ENV = ENV_PREFIX + "SECRET_PROVIDERS"
PROVIDER_NAMES = ("env", "file", "keyring", "vault")
_ALIASES = {"environment": "env", "files": "file"}

_lock = threading.Lock()
_chosen: list[SecretProvider] | None = None
_vaults: dict[str, VaultProvider] = {}


def _vault(settings: VaultSettings) -> VaultProvider:
    from .vault import VaultProvider

    # one provider per distinct settings, so its token and cache survive between lookups
    key = hashlib.sha256(
        repr(
            sorted(
                (k, v.get_secret_value() if hasattr(v, "get_secret_value") else v)
                for k, v in settings.model_dump().items()
            )
        ).encode()
    ).hexdigest()
    with _lock:
        provider = _vaults.get(key)
        if provider is None:
            provider = _vaults[key] = VaultProvider(settings)
        return provider


def provider_by_name(name: str) -> SecretProvider:
    """A provider configured from the environment: ``env``, ``file``, ``keyring`` or
    ``vault``."""
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if key == "env":
        return EnvProvider()
    if key == "file":
        return FileProvider()
    if key == "keyring":
        return KeyringProvider()
    if key == "vault":
        from .vault import VaultSettings

        settings = VaultSettings.from_env()
        if settings is None:
            raise ETLConfigError(
                "secret provider 'vault' is selected but no Vault address is set",
                hint="set VAULT_ADDR (or ETL_EXPRESS_VAULT_ADDR) and VAULT_TOKEN, or drop 'vault' "
                f"from {PROVIDERS_ENV}",
            )
        return _vault(settings)
    raise ETLConfigError(
        f"unknown secret provider {name!r}",
        hint=f"choose from {', '.join(PROVIDER_NAMES)} (e.g. {PROVIDERS_ENV}=env,file,keyring,vault)",
    )


def providers_from_env() -> list[SecretProvider]:
    """The chain named by ``ETL_EXPRESS_SECRET_PROVIDERS`` (comma-separated, in order).

    Unset, it is ``env,file,keyring``, followed by ``vault`` when a Vault address is set.
    """
    raw = os.environ.get(PROVIDERS_ENV, "").strip()
    if raw:
        names = [n for n in (part.strip() for part in raw.split(",")) if n]
    else:
        names = ["env", "file", "keyring"]
        if vault_address() is not None:
            names.append("vault")
    return [provider_by_name(n) for n in names]


def use_providers(providers: Sequence[SecretProvider | str] | None) -> None:
    """Set the chain every ``etl.secret`` without its own ``providers`` uses, in order.

    Items are providers or the names ``env``, ``file``, ``keyring``, ``vault``. ``None``
    goes back to the chain configured by the environment. Example::

        use_providers([FileProvider("/etc/etl/secrets"), VaultProvider(addr=..., token=...)])
    """
    global _chosen
    if providers is None:
        _chosen = None
        return
    chain = [provider_by_name(p) if isinstance(p, str) else p for p in providers]
    bad = [type(p).__name__ for p in chain if not isinstance(p, SecretProvider)]
    if bad:
        raise ETLConfigError(f"use_providers got {bad}, which are not SecretProvider instances")
    _chosen = chain


def default_providers() -> list[SecretProvider]:
    """The provider chain used when a secret has none of its own."""
    return list(_chosen) if _chosen is not None else providers_from_env()


__all__ = [
    "PROVIDERS_ENV",
    "PROVIDER_NAMES",
    "default_providers",
    "provider_by_name",
    "providers_from_env",
    "use_providers",
]
