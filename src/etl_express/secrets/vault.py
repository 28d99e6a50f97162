"""Secrets from HashiCorp Vault or OpenBao, KV version 2 engine, over HTTP (httpx)."""

from __future__ import annotations

import json
import os
import ssl
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import ETLConfigError
from .base import SecretProvider
from .masking import mask_url, register_secret
from .vault_env import ADDRESS_VARIABLES, VAULT_ENV_PREFIX
from .vault_env import first_set as _first

if TYPE_CHECKING:
    import httpx  # imported when Vault is first asked: most runs never use it

#: how long a fetched KV secret is reused before it is read again
CACHE_SECONDS = 60.0


class VaultSettings(BaseModel):
    """Where and how to reach Vault/OpenBao. Give either ``token`` or ``role_id`` and
    ``secret_id`` (AppRole).

    ``verify`` is ``True`` (the system's trusted CAs), a path to a CA bundle, or ``False``
    (only for a throw-away dev server). Secret ``NAME`` is read from the KV v2 secret at
    ``<mount>/<path>``, field ``NAME``; a name like ``crm/DB_URL`` reads field ``DB_URL``
    of ``<mount>/<path>/crm``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    addr: str
    token: SecretStr | None = None
    role_id: SecretStr | None = None
    secret_id: SecretStr | None = None
    namespace: str | None = None
    mount: str = "secret"
    path: str = "etl-express"
    approle_mount: str = "approle"
    verify: bool | str = True
    timeout: float = Field(default=10.0, gt=0)

    @field_validator("addr")
    @classmethod
    def _addr(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http:// for a local dev server)")
        return value

    @field_validator("mount", "path", "approle_mount")
    @classmethod
    def _strip_slashes(cls, value: str) -> str:
        return value.strip().strip("/")

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        return value.strip().strip("/") or None if value else None

    @model_validator(mode="after")
    def _auth(self) -> VaultSettings:
        if self.token is None and (self.role_id is None or self.secret_id is None):
            raise ValueError("needs a token, or role_id and secret_id for AppRole login")
        if not self.mount:
            raise ValueError("mount must not be empty")
        return self

    @classmethod
    def create(cls, source: str = "arguments", **fields: Any) -> VaultSettings:
        """Validate ``fields``; a problem is an :class:`ETLConfigError` naming the field
        (never its value)."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
                for e in exc.errors(include_input=False, include_url=False)
            )
            raise ETLConfigError(
                f"invalid Vault settings from {source}: {problems}",
                hint="set VAULT_ADDR and VAULT_TOKEN (or ETL_EXPRESS_VAULT_ROLE_ID and "
                "ETL_EXPRESS_VAULT_SECRET_ID); see docs/secrets.md",
            ) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> VaultSettings | None:
        """Settings from the environment, or ``None`` when no Vault address is set.

        ``ETL_EXPRESS_VAULT_*`` wins over Vault's own ``VAULT_*`` variables, which win over
        OpenBao's ``BAO_*``: ``ADDR``, ``TOKEN``, ``NAMESPACE``; ``ETL_EXPRESS_VAULT_ROLE_ID``,
        ``_SECRET_ID``, ``_MOUNT``, ``_PATH``, ``_APPROLE_MOUNT``, ``_TIMEOUT`` and
        ``_VERIFY`` (``true``, ``false`` or a CA bundle path; also ``VAULT_CACERT`` and
        ``VAULT_SKIP_VERIFY``).
        """
        env = os.environ if environ is None else environ
        p = VAULT_ENV_PREFIX
        addr = _first(env, *ADDRESS_VARIABLES)
        if not addr:
            return None
        fields: dict[str, Any] = {"addr": addr}
        for field, names in {
            "token": (p + "TOKEN", "VAULT_TOKEN", "BAO_TOKEN"),
            "namespace": (p + "NAMESPACE", "VAULT_NAMESPACE", "BAO_NAMESPACE"),
            "role_id": (p + "ROLE_ID",),
            "secret_id": (p + "SECRET_ID",),
            "mount": (p + "MOUNT",),
            "path": (p + "PATH",),
            "approle_mount": (p + "APPROLE_MOUNT",),
            "timeout": (p + "TIMEOUT",),
        }.items():
            value = _first(env, *names)
            if value is not None:
                fields[field] = value
        verify = _first(env, p + "VERIFY")
        if verify is not None:
            lowered = verify.strip().lower()
            fields["verify"] = (
                True
                if lowered in ("1", "true", "yes", "on")
                else False
                if lowered in ("0", "false", "no", "off")
                else verify
            )
        elif _first(env, "VAULT_CACERT", "BAO_CACERT"):
            fields["verify"] = _first(env, "VAULT_CACERT", "BAO_CACERT")
        elif (_first(env, "VAULT_SKIP_VERIFY", "BAO_SKIP_VERIFY") or "").lower() in ("1", "true"):
            fields["verify"] = False
        return cls.create(source="the environment", **fields)


class VaultProvider(SecretProvider):
    """Reads secrets from a Vault or OpenBao KV v2 engine over its HTTP API.

    ``GET /v1/<mount>/data/<path>`` with the ``X-Vault-Token`` header (and
    ``X-Vault-Namespace`` when a namespace is set); with AppRole the token comes from
    ``POST /v1/auth/<approle_mount>/login`` and is renewed by logging in again when it
    expires or is refused. TLS certificates are verified unless ``verify=False``.
    Fetched secrets are kept in memory for :data:`CACHE_SECONDS`, so a run resolving
    several names from one path makes one request.

    A name the path does not hold gives ``None`` (the chain goes on); an unreachable
    server, a TLS failure or a refused token is an :class:`ETLConfigError`. Example::

        VaultProvider(addr="https://vault.corp:8200", role_id=..., secret_id=...,
                      namespace="ml", mount="kv", path="etl/crm")
    """

    def __init__(self, settings: VaultSettings | None = None, **fields: Any):
        if settings is not None and fields:
            raise ETLConfigError("give VaultProvider either settings= or keyword fields, not both")
        if settings is None:
            settings = VaultSettings.create(**fields) if fields else VaultSettings.from_env()
        if settings is None:
            raise ETLConfigError(
                "Vault provider has no address",
                hint="set VAULT_ADDR (or ETL_EXPRESS_VAULT_ADDR), or pass VaultProvider(addr=...)",
            )
        self.settings = settings
        for value in (settings.token, settings.secret_id, settings.role_id):
            if value is not None:
                register_secret(value.get_secret_value())
        self._lock = threading.Lock()
        self._token: str | None = settings.token.get_secret_value() if settings.token else None
        self._token_expires = float("inf")
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def __repr__(self) -> str:
        s = self.settings
        return f"VaultProvider(addr={mask_url(s.addr)!r}, mount={s.mount!r}, path={s.path!r}, namespace={s.namespace!r})"

    # -- names ---------------------------------------------------------------------------

    def locate(self, name: str) -> tuple[str, str]:
        """``(secret path inside the mount, field)`` holding secret ``name``."""
        folder, _, field = name.rpartition("/")
        path = "/".join(p for p in (self.settings.path, folder.strip("/")) if p)
        if not path or not field:
            raise ETLConfigError(
                f"secret name {name!r} does not map to a Vault path",
                hint="set ETL_EXPRESS_VAULT_PATH (default 'etl-express') or use 'path/FIELD' names",
            )
        return path, field

    def describe(self, name: str) -> str:
        path, field = self.locate(name)
        where = f"vault {self.settings.mount}/{path}#{field}"
        return where + (
            f" (namespace {self.settings.namespace})" if self.settings.namespace else ""
        )

    # -- HTTP ------------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        import httpx

        headers = {"X-Vault-Namespace": self.settings.namespace} if self.settings.namespace else {}
        setting = self.settings.verify
        verify: bool | ssl.SSLContext = setting if isinstance(setting, bool) else True
        if isinstance(setting, str):
            try:
                verify = ssl.create_default_context(cafile=setting)
            except OSError as exc:
                raise ETLConfigError(
                    f"the Vault CA bundle {self.settings.verify} cannot be loaded: {type(exc).__name__}",
                    hint="point ETL_EXPRESS_VAULT_VERIFY or VAULT_CACERT at a readable PEM file",
                ) from None
        return httpx.Client(
            base_url=self.settings.addr,
            verify=verify,
            timeout=self.settings.timeout,
            headers=headers,
        )

    def _request(
        self, client: httpx.Client, method: str, url: str, **kwargs: Any
    ) -> httpx.Response:
        import httpx

        try:
            return client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            text = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
                raise ETLConfigError(
                    f"TLS verification of Vault at {self.settings.addr} failed",
                    hint="point ETL_EXPRESS_VAULT_VERIFY (or VAULT_CACERT) at the CA bundle that "
                    "signed the server's certificate; verification stays on by default",
                ) from None
            raise ETLConfigError(
                f"Vault at {self.settings.addr} is unreachable: {type(exc).__name__}",
                hint="check VAULT_ADDR / ETL_EXPRESS_VAULT_ADDR and the network path to the server",
            ) from None

    def _login(self, client: httpx.Client) -> str:
        s = self.settings
        assert s.role_id is not None and s.secret_id is not None
        response = self._request(
            client,
            "POST",
            f"/v1/auth/{s.approle_mount}/login",
            json={
                "role_id": s.role_id.get_secret_value(),
                "secret_id": s.secret_id.get_secret_value(),
            },
        )
        if response.status_code != 200:
            raise ETLConfigError(
                f"Vault AppRole login at {s.addr}/v1/auth/{s.approle_mount} failed: HTTP {response.status_code}",
                hint="check ETL_EXPRESS_VAULT_ROLE_ID / ETL_EXPRESS_VAULT_SECRET_ID and the AppRole mount",
            )
        auth = response.json().get("auth") or {}
        token = auth.get("client_token")
        if not token:
            raise ETLConfigError(f"Vault AppRole login at {s.addr} returned no token")
        register_secret(token)
        lease = float(auth.get("lease_duration") or 0)
        self._token = token
        self._token_expires = time.monotonic() + lease * 0.9 if lease > 0 else float("inf")
        return token

    def _token_for(self, client: httpx.Client, *, renew: bool = False) -> str:
        if self.settings.token is not None:
            return self.settings.token.get_secret_value()
        if renew or self._token is None or time.monotonic() >= self._token_expires:
            return self._login(client)
        return self._token

    def read(self, path: str) -> dict[str, Any] | None:
        """The fields of the KV v2 secret at ``path`` (``None`` if it does not exist)."""
        with self._lock:
            cached = self._cache.get(path)
            if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
                return cached[1]
            s = self.settings
            url = f"/v1/{s.mount}/data/{path}"
            with self._client() as client:
                response = self._request(
                    client, "GET", url, headers={"X-Vault-Token": self._token_for(client)}
                )
                if response.status_code == 403 and s.token is None:
                    response = self._request(
                        client,
                        "GET",
                        url,
                        headers={"X-Vault-Token": self._token_for(client, renew=True)},
                    )
            if response.status_code == 404:
                data = None
            elif response.status_code == 200:
                data = (response.json().get("data") or {}).get("data")
                if data is not None and not isinstance(data, dict):
                    raise ETLConfigError(
                        f"Vault {s.mount}/{path} is not a KV version 2 secret",
                        hint="enable the mount as kv-v2 or set ETL_EXPRESS_VAULT_MOUNT",
                    )
            elif response.status_code == 403:
                raise ETLConfigError(
                    f"Vault denied reading {s.mount}/{path}: permission denied (HTTP 403)",
                    where={"namespace": s.namespace},
                    hint="check the token's or AppRole's policy grants read on "
                    f"{s.mount}/data/{path}, and the namespace",
                )
            else:
                raise ETLConfigError(
                    f"Vault read of {s.mount}/{path} failed: HTTP {response.status_code}",
                    where={"namespace": s.namespace},
                    hint="check that the mount is a KV version 2 engine and the server is unsealed",
                )
            self._cache[path] = (time.monotonic(), data)
            return data

    def get(self, name: str) -> str | None:
        path, field = self.locate(name)
        data = self.read(path)
        if not data or field not in data or data[field] is None:
            return None
        value = data[field]
        return value if isinstance(value, str) else json.dumps(value)

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()


__all__ = ["CACHE_SECONDS", "VAULT_ENV_PREFIX", "VaultProvider", "VaultSettings"]
