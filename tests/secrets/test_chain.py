"""The provider chain: order, configuration in code and by environment, the missing-secret
error, and values that never show."""

from __future__ import annotations

import uuid
from pathlib import Path

import keyring
import pytest
from pydantic import SecretStr

import etl_express as etl
from etl_express.errors import ETLConfigError
from etl_express.secrets import (
    EnvProvider,
    FileProvider,
    KeyringProvider,
    SecretProvider,
    mask_secrets,
    providers_from_env,
    reveal,
    use_providers,
)


def _everywhere(secrets_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "env-value")
    (secrets_dir / name).write_text("file-value\n")
    keyring.set_password("etl-express", name, "keyring-value")


def test_default_chain_is_env_file_keyring(
    isolated_secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert [type(p) for p in providers_from_env()] == [EnvProvider, FileProvider, KeyringProvider]
    _everywhere(isolated_secrets, monkeypatch, "ANON_KEY")
    ref = etl.secret("ANON_KEY")
    assert ref.get().get_secret_value() == "env-value"
    monkeypatch.delenv("ANON_KEY")
    assert ref.get().get_secret_value() == "file-value"
    (isolated_secrets / "ANON_KEY").unlink()
    assert ref.get().get_secret_value() == "keyring-value"


def test_chain_order_from_environment(
    isolated_secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _everywhere(isolated_secrets, monkeypatch, "ANON_KEY")
    monkeypatch.setenv("ETL_EXPRESS_SECRET_PROVIDERS", "keyring, files ,env")
    assert [type(p) for p in providers_from_env()] == [KeyringProvider, FileProvider, EnvProvider]
    assert etl.secret("ANON_KEY").get().get_secret_value() == "keyring-value"
    monkeypatch.setenv("ETL_EXPRESS_SECRET_PROVIDERS", "file")
    assert etl.secret("ANON_KEY").get().get_secret_value() == "file-value"


def test_chain_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_EXPRESS_SECRET_PROVIDERS", "env,aws")
    with pytest.raises(
        ETLConfigError, match=r"unknown secret provider 'aws'.*env, file, keyring, vault"
    ):
        etl.secret("X").get()
    monkeypatch.setenv("ETL_EXPRESS_SECRET_PROVIDERS", "env,vault")
    with pytest.raises(ETLConfigError, match="'vault' is selected but no Vault address"):
        etl.secret("X").get()


def test_chain_in_code(
    isolated_secrets: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _everywhere(isolated_secrets, monkeypatch, "ANON_KEY")
    use_providers(["keyring", "env"])
    assert etl.secret("ANON_KEY").get().get_secret_value() == "keyring-value"
    other = tmp_path / "other"
    other.mkdir()
    (other / "ANON_KEY").write_text("other-file-value")
    use_providers([FileProvider(other)])
    assert etl.secret("ANON_KEY").get().get_secret_value() == "other-file-value"
    # a secret's own providers beat the process-wide chain
    assert etl.secret("ANON_KEY", providers=[EnvProvider()]).get().get_secret_value() == "env-value"
    use_providers(None)
    assert etl.secret("ANON_KEY").get().get_secret_value() == "env-value"
    with pytest.raises(ETLConfigError, match="not SecretProvider"):
        use_providers([object()])  # type: ignore[list-item]


def test_missing_secret_names_every_place_tried(isolated_secrets: Path) -> None:
    with pytest.raises(ETLConfigError) as info:
        etl.secret("ANON_KEY").get()
    message = str(info.value)
    assert message.startswith(
        "secret 'ANON_KEY' not found (tried: env ETL_EXPRESS_ANON_KEY or env ANON_KEY, "
        f"{isolated_secrets}/ANON_KEY, keyring etl-express/ANON_KEY)"
    )
    assert "Fix: set environment variable ETL_EXPRESS_ANON_KEY or ANON_KEY" in message


class _Fixed(SecretProvider):
    def __init__(self, values: dict[str, str]):
        self.values = values
        self.calls = 0

    def get(self, name: str) -> str | None:
        self.calls += 1
        return self.values.get(name)

    def describe(self, name: str) -> str:
        return f"fixed {name}"


def test_secret_is_lazy_and_never_shows() -> None:
    value = "s3cr3t-" + "x" * 20
    provider = _Fixed({"ANON_KEY": value})
    ref = etl.secret("ANON_KEY", providers=[provider])
    assert provider.calls == 0  # nothing resolved at definition time
    resolved = ref.get()
    assert isinstance(resolved, SecretStr) and provider.calls == 1
    for shown in (repr(ref), str(ref), repr(resolved), str(resolved), f"{resolved}"):
        assert value not in shown
    assert repr(ref) == "secret('ANON_KEY')"
    assert reveal(ref) == value
    # once resolved, the value is masked wherever text passes the masking filter
    assert mask_secrets(f"key is {value}!") == "key is ***!"
    with pytest.raises(etl.ETLError) as info:
        raise etl.SinkError(f"bad key {value}", where={"key": value})
    assert value not in str(info.value) and "***" in str(info.value)


def test_url_passwords_are_masked_even_when_not_resolved() -> None:
    # credentials are made at run time: none is written in the repository
    password, other = uuid.uuid4().hex[:10], uuid.uuid4().hex[:10]
    text = f"connect to postgresql://etl:{password}@db.corp:5432/crm failed"
    assert mask_secrets(text) == "connect to postgresql://etl:***@db.corp:5432/crm failed"
    ref = etl.secret("DB", providers=[_Fixed({"DB": f"postgresql://etl:{other}@db/x"})])
    reveal(ref)
    assert mask_secrets(f"password {other} alone") == "password *** alone"
