"""VaultProvider against a real OpenBao dev server (KV v2, token, AppRole, namespaces, TLS)."""

from __future__ import annotations

import secrets as stdlib_secrets
import socket
import uuid

import pytest

import etl_express as etl
from etl_express.errors import ETLConfigError
from etl_express.secrets import VaultProvider, VaultSettings, providers_from_env

from .conftest import Bao


def _path() -> str:
    return "etl-" + uuid.uuid4().hex[:8]


def _value() -> str:
    return stdlib_secrets.token_urlsafe(24)


def test_token_auth_reads_fields_of_a_kv2_secret(bao: Bao) -> None:
    path, key, url = _path(), _value(), _value()
    bao.put(path, {"ANON_KEY": key, "CRM_DB_URL": url})
    provider = VaultProvider(addr=bao.addr, token=bao.root_token, path=path)
    assert provider.get("ANON_KEY") == key
    assert provider.get("CRM_DB_URL") == url
    assert provider.get("MISSING") is None
    assert provider.describe("ANON_KEY") == f"vault secret/{path}#ANON_KEY"
    assert VaultProvider(addr=bao.addr, token=bao.root_token, path=_path()).get("ANON_KEY") is None
    assert bao.root_token not in repr(provider)


def test_folder_names_and_json_values(bao: Bao) -> None:
    path = _path()
    bao.api(
        "POST",
        f"/v1/secret/data/{path}/crm",
        json={"data": {"DB_URL": "crm-url-value", "PORT": 5432}},
    )
    provider = VaultProvider(addr=bao.addr, token=bao.root_token, path=path)
    assert provider.get("crm/DB_URL") == "crm-url-value"
    assert provider.get("crm/PORT") == "5432"
    assert provider.locate("crm/DB_URL") == (f"{path}/crm", "DB_URL")


def test_fetched_secrets_are_cached_until_cleared(bao: Bao) -> None:
    path = _path()
    bao.put(path, {"TOKEN": "first-value"})
    provider = VaultProvider(addr=bao.addr, token=bao.root_token, path=path)
    assert provider.get("TOKEN") == "first-value"
    bao.put(path, {"TOKEN": "second-value"})
    assert provider.get("TOKEN") == "first-value"
    provider.clear_cache()
    assert provider.get("TOKEN") == "second-value"


def test_namespace_header_selects_the_namespace(bao: Bao) -> None:
    namespace = "ns" + uuid.uuid4().hex[:8]
    bao.api("POST", f"/v1/sys/namespaces/{namespace}")
    bao.api(
        "POST",
        "/v1/sys/mounts/kv",
        namespace=namespace,
        json={"type": "kv", "options": {"version": "2"}},
    )
    bao.put("etl", {"DB_URL": "namespaced-value"}, mount="kv", namespace=namespace)
    inside = VaultProvider(
        addr=bao.addr, token=bao.root_token, namespace=namespace, mount="kv", path="etl"
    )
    assert inside.get("DB_URL") == "namespaced-value"
    assert f"(namespace {namespace})" in inside.describe("DB_URL")
    outside = VaultProvider(addr=bao.addr, token=bao.root_token, mount="kv", path="etl")
    try:
        assert outside.get("DB_URL") is None
    except ETLConfigError as exc:  # no kv mount at the root namespace
        assert "namespaced-value" not in str(exc)


def _approle(bao: Bao, path: str) -> tuple[str, str, str]:
    mount = "approle-" + uuid.uuid4().hex[:6]
    policy = "read-" + path
    bao.api("POST", f"/v1/sys/auth/{mount}", json={"type": "approle"})
    bao.api(
        "PUT",
        f"/v1/sys/policies/acl/{policy}",
        json={"policy": f'path "secret/data/{path}" {{ capabilities = ["read"] }}'},
    )
    bao.api(
        "POST", f"/v1/auth/{mount}/role/etl", json={"token_policies": [policy], "token_ttl": "1h"}
    )
    role_id = bao.api("GET", f"/v1/auth/{mount}/role/etl/role-id").json()["data"]["role_id"]
    secret_id = bao.api("POST", f"/v1/auth/{mount}/role/etl/secret-id").json()["data"]["secret_id"]
    return mount, role_id, secret_id


def test_approle_login_reads_what_its_policy_allows(bao: Bao) -> None:
    path = _path()
    bao.put(path, {"ANON_KEY": "approle-read-value"})
    mount, role_id, secret_id = _approle(bao, path)
    provider = VaultProvider(
        addr=bao.addr, role_id=role_id, secret_id=secret_id, approle_mount=mount, path=path
    )
    assert provider.get("ANON_KEY") == "approle-read-value"

    other = _path()
    bao.put(other, {"ANON_KEY": "not-allowed"})
    denied = VaultProvider(
        addr=bao.addr, role_id=role_id, secret_id=secret_id, approle_mount=mount, path=other
    )
    with pytest.raises(ETLConfigError, match="permission denied") as info:
        denied.get("ANON_KEY")
    assert "not-allowed" not in str(info.value) and secret_id not in str(info.value)


def test_wrong_credentials_are_clear_errors_without_the_credentials(bao: Bao) -> None:
    path = _path()
    bao.put(path, {"ANON_KEY": "x" * 8})
    bad_token = "t" + stdlib_secrets.token_hex(12)
    with pytest.raises(ETLConfigError, match="permission denied") as info:
        VaultProvider(addr=bao.addr, token=bad_token, path=path).get("ANON_KEY")
    assert bad_token not in str(info.value)
    mount, role_id, _ = _approle(bao, path)
    bad_secret_id = str(uuid.uuid4())
    with pytest.raises(ETLConfigError, match="AppRole login") as info:
        VaultProvider(
            addr=bao.addr, role_id=role_id, secret_id=bad_secret_id, approle_mount=mount, path=path
        ).get("ANON_KEY")
    assert bad_secret_id not in str(info.value) and role_id not in str(info.value)


def test_tls_is_verified_by_default(bao_tls: Bao) -> None:
    path = _path()
    bao_tls.put(path, {"ANON_KEY": "tls-value"})
    with pytest.raises(ETLConfigError, match="TLS verification"):
        VaultProvider(addr=bao_tls.addr, token=bao_tls.root_token, path=path).get("ANON_KEY")
    trusted = VaultProvider(
        addr=bao_tls.addr, token=bao_tls.root_token, path=path, verify=bao_tls.ca_file
    )
    assert trusted.get("ANON_KEY") == "tls-value"


def test_tls_ca_from_the_environment(bao_tls: Bao, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _path()
    bao_tls.put(path, {"ANON_KEY": "tls-env-value"})
    monkeypatch.setenv("VAULT_ADDR", bao_tls.addr)
    monkeypatch.setenv("VAULT_TOKEN", bao_tls.root_token)
    monkeypatch.setenv("VAULT_CACERT", str(bao_tls.ca_file))
    monkeypatch.setenv("ETL_EXPRESS_VAULT_PATH", path)
    assert VaultProvider().get("ANON_KEY") == "tls-env-value"


def test_chain_from_the_environment_ends_with_vault(
    bao: Bao, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _path()
    bao.put(path, {"WAREHOUSE_URL": "from-vault-value"})
    monkeypatch.setenv("VAULT_ADDR", bao.addr)
    monkeypatch.setenv("VAULT_TOKEN", "wrong-token-value")
    monkeypatch.setenv("ETL_EXPRESS_VAULT_TOKEN", bao.root_token)  # ours wins over VAULT_*
    monkeypatch.setenv("ETL_EXPRESS_VAULT_PATH", path)
    kinds = [type(p).__name__ for p in providers_from_env()]
    assert kinds == ["EnvProvider", "FileProvider", "KeyringProvider", "VaultProvider"]
    assert etl.secret("WAREHOUSE_URL").get().get_secret_value() == "from-vault-value"
    monkeypatch.setenv("WAREHOUSE_URL", "from-env-value")  # env comes first
    assert etl.secret("WAREHOUSE_URL").get().get_secret_value() == "from-env-value"


def test_unreachable_server_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = VaultProvider(addr=f"http://127.0.0.1:{port}", token="x" * 10, timeout=2)
    with pytest.raises(ETLConfigError, match=r"unreachable.*Fix: check VAULT_ADDR"):
        provider.get("ANON_KEY")


def test_settings_are_validated_without_echoing_values(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "tok-" + stdlib_secrets.token_hex(8)
    with pytest.raises(ETLConfigError, match=r"addr: .*https://") as info:
        VaultSettings.create(addr="vault.corp:8200", token=token)
    assert token not in str(info.value)
    with pytest.raises(ETLConfigError, match="needs a token, or role_id and secret_id"):
        VaultSettings.create(addr="https://vault.corp:8200", role_id="only-role")
    monkeypatch.setenv("VAULT_ADDR", "https://vault.corp:8200/")
    monkeypatch.setenv("VAULT_TOKEN", token)
    monkeypatch.setenv("VAULT_SKIP_VERIFY", "true")
    monkeypatch.setenv("ETL_EXPRESS_VAULT_TIMEOUT", "not-a-number")
    with pytest.raises(ETLConfigError, match="timeout"):
        VaultSettings.from_env()
    monkeypatch.delenv("ETL_EXPRESS_VAULT_TIMEOUT")
    settings = VaultSettings.from_env()
    assert settings is not None
    assert (settings.addr, settings.verify, settings.mount, settings.path) == (
        "https://vault.corp:8200",
        False,
        "secret",
        "etl-express",
    )
    assert token not in repr(settings)
    assert VaultSettings.create(addr="https://v", token="t" * 8).verify is True  # on by default
