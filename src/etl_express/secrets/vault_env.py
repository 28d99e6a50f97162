"""Which environment variables point at Vault/OpenBao: read without loading the Vault client.

Every run builds the default provider chain, which includes Vault only when an address is
set; asking that must not import pydantic models and the HTTP client that most runs never use
(:mod:`.vault` is imported when a Vault provider is actually built).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .base import ENV_PREFIX

VAULT_ENV_PREFIX = ENV_PREFIX + "VAULT_"
#: the variables that name the server, most specific first
ADDRESS_VARIABLES = (VAULT_ENV_PREFIX + "ADDR", "VAULT_ADDR", "BAO_ADDR")


def first_set(environ: Mapping[str, str], *names: str) -> str | None:
    """The value of the first of ``names`` set (and not empty) in ``environ``."""
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return None


def vault_address(environ: Mapping[str, str] | None = None) -> str | None:
    """The Vault address the environment sets, or ``None``."""
    return first_set(os.environ if environ is None else environ, *ADDRESS_VARIABLES)
