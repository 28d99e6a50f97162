from __future__ import annotations

import secrets

import pytest
from pydantic import SecretStr

import etl_express as etl


@pytest.fixture
def key_value() -> str:
    return secrets.token_urlsafe(48)


@pytest.fixture
def anon_key(monkeypatch: pytest.MonkeyPatch, key_value: str) -> etl.SecretRef:
    """A fresh random key in the environment, referenced as etl.secret(...)."""
    name = "ANON_KEY_" + secrets.token_hex(4).upper()
    monkeypatch.setenv("ETL_EXPRESS_" + name, key_value)
    return etl.secret(name)


@pytest.fixture
def secret_key(key_value: str) -> SecretStr:
    return SecretStr(key_value)
