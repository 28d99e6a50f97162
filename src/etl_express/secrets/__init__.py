"""Secrets: lazy references resolved at run time through a chain of providers.

``etl.secret("CRM_DB_URL")`` returns a :class:`SecretRef`; nothing is looked up until a
run needs the value. The default chain is environment variables, mounted secret files
(``/run/secrets``), the OS keyring (service ``etl-express``) and, when ``VAULT_ADDR`` is
set, Vault/OpenBao KV v2; ``ETL_EXPRESS_SECRET_PROVIDERS`` or :func:`use_providers`
change it. Values are ``pydantic.SecretStr``: they never show in a repr, a log line, an
exception or a ``RunResult``, and every resolved value is masked in logs and errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from .base import ENV_PREFIX, SecretProvider
from .chain import (
    PROVIDERS_ENV,
    default_providers,
    provider_by_name,
    providers_from_env,
    use_providers,
)
from .env import EnvProvider
from .files import DEFAULT_SECRETS_DIR, SECRETS_DIR_ENV, FileProvider
from .keyring_store import KEYRING_SERVICE, KeyringProvider
from .masking import mask_secrets, mask_url_passwords, register_secret
from .ref import SecretLike, SecretRef, reveal, secret

# the Vault client (pydantic models, httpx, ssl) loads when it is first used
__getattr__, __dir__ = lazy_exports(
    __name__, {"VaultProvider": ".vault", "VaultSettings": ".vault", "vault": ".vault"}
)
if TYPE_CHECKING:
    from .vault import VaultProvider, VaultSettings

__all__ = [
    "DEFAULT_SECRETS_DIR",
    "ENV_PREFIX",
    "KEYRING_SERVICE",
    "PROVIDERS_ENV",
    "SECRETS_DIR_ENV",
    "EnvProvider",
    "FileProvider",
    "KeyringProvider",
    "SecretLike",
    "SecretProvider",
    "SecretRef",
    "VaultProvider",
    "VaultSettings",
    "default_providers",
    "mask_secrets",
    "mask_url_passwords",
    "provider_by_name",
    "providers_from_env",
    "register_secret",
    "reveal",
    "secret",
    "use_providers",
]
