"""Environment, mounted-file and keyring providers, each against the real thing."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest

from etl_express.errors import ETLConfigError
from etl_express.secrets import EnvProvider, FileProvider, KeyringProvider

# -- environment (GitHub Actions) -------------------------------------------------------------


def test_env_prefixed_name_wins_over_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = EnvProvider()
    monkeypatch.setenv("CRM_DB_URL", "plain-value")
    assert provider.get("CRM_DB_URL") == "plain-value"
    monkeypatch.setenv("ETL_EXPRESS_CRM_DB_URL", "prefixed-value")
    assert provider.get("CRM_DB_URL") == "prefixed-value"
    assert provider.describe("CRM_DB_URL") == "env ETL_EXPRESS_CRM_DB_URL or env CRM_DB_URL"


def test_env_empty_value_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # GitHub Actions expands ${{ secrets.MISSING }} to an empty string
    monkeypatch.setenv("ETL_EXPRESS_ANON_KEY", "")
    monkeypatch.setenv("ANON_KEY", "")
    assert EnvProvider().get("ANON_KEY") is None


def test_env_names_that_are_not_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_DB_URL", "from-env")
    assert EnvProvider().get("crm/db-url") == "from-env"
    assert EnvProvider(prefix="").describe("crm/db-url") == "env CRM_DB_URL"
    assert EnvProvider().get("ETL_EXPRESS_CRM_DB_URL") is None  # prefix not doubled


# -- mounted files (Docker, Kubernetes) ---------------------------------------------------------


def test_file_provider_reads_one_file_a_secret(tmp_path: Path) -> None:
    (tmp_path / "ANON_KEY").write_text("file-value\n")
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "DB_URL").write_text("crm-url\r\n")
    (tmp_path / "warehouse_url").write_text("lower-case-file")
    provider = FileProvider(tmp_path)
    assert provider.get("ANON_KEY") == "file-value"
    assert provider.get("crm/DB_URL") == "crm-url"
    assert provider.get("WAREHOUSE_URL") == "lower-case-file"
    assert provider.get("MISSING") is None
    assert provider.describe("ANON_KEY") == f"{tmp_path}/ANON_KEY"


def test_file_provider_searches_folders_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (second / "TOKEN").write_text("from-b")
    monkeypatch.setenv("ETL_EXPRESS_SECRETS_DIR", f"{first}:{second}")
    provider = FileProvider()
    assert provider.dirs == [first, second]
    assert provider.get("TOKEN") == "from-b"
    (first / "TOKEN").write_text("from-a")
    assert provider.get("TOKEN") == "from-a"
    assert provider.describe("TOKEN") == f"{first}/TOKEN, {second}/TOKEN"


def test_file_provider_default_is_run_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ETL_EXPRESS_SECRETS_DIR")
    assert FileProvider().describe("ANON_KEY") == "/run/secrets/ANON_KEY"


def test_file_provider_refuses_path_escapes(tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("nope")
    inner = tmp_path / "secrets"
    inner.mkdir()
    with pytest.raises(ETLConfigError, match="not a valid file name"):
        FileProvider(inner).get("../outside")


# -- keyring (a real file-backed backend from keyrings.alt) ----------------------------------------


def test_keyring_provider_reads_service_etl_express(tmp_path: Path) -> None:
    backend = keyring.get_keyring()
    assert str(tmp_path) in backend.file_path  # the isolated backend from conftest
    keyring.set_password("etl-express", "ANON_KEY", "keyring-value")
    keyring.set_password("other-service", "OTHER", "elsewhere")
    provider = KeyringProvider()
    assert provider.get("ANON_KEY") == "keyring-value"
    assert provider.get("OTHER") is None
    assert provider.describe("ANON_KEY") == "keyring etl-express/ANON_KEY"
    assert Path(backend.file_path).is_file()  # really stored in the backend's file


def test_keyring_without_backend_is_just_empty() -> None:
    from keyring.backends.fail import Keyring as NoBackend

    keyring.set_keyring(NoBackend())
    assert KeyringProvider().get("ANON_KEY") is None


def test_broken_keyring_is_a_clear_error() -> None:
    from keyring.backend import KeyringBackend
    from keyring.errors import KeyringLocked

    class Locked(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def get_password(self, service: str, username: str) -> str | None:
            raise KeyringLocked("collection is locked")

        def set_password(self, service: str, username: str, password: str) -> None:
            raise KeyringLocked("collection is locked")

        def delete_password(self, service: str, username: str) -> None:
            raise KeyringLocked("collection is locked")

    keyring.set_keyring(Locked())
    with pytest.raises(
        ETLConfigError,
        match=r"keyring etl-express/ANON_KEY could not be read: KeyringLocked"
        ".*ETL_EXPRESS_SECRET_PROVIDERS=env,file",
    ):
        KeyringProvider().get("ANON_KEY")
