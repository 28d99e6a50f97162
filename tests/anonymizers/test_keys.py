"""Keys: low-entropy keys are refused, ``etl-express keygen`` makes good ones, and worker
processes never receive a key."""

from __future__ import annotations

import pickle
import secrets
import subprocess
import sys

import pyarrow as pa
import pytest
from pydantic import SecretStr

import etl_express as etl
from etl_express.anonymizers import Pseudonymize, ScrubPII
from etl_express.anonymizers.entropy import MIN_KEY_BITS, estimate_bits
from etl_express.anonymizers.keys import entity_subkey
from etl_express.errors import AnonymizationError

from .sources import ListSource

WEAK = [
    "12345678901234567890123456789012",  # a sequence, repeated
    "abcdefgh" * 4,  # a repeated block
    "a" * 40,
    "98765432109876543210987654321098",  # descending
    "qwertyuiopasdfghjklzxcvbnmqwertyuiop",  # keyboard walks  # pragma: allowlist secret
    "йцукенгшщзхъфывапролджэячсмитьбю",  # a Russian keyboard walk
    "passwordpasswordpassword12345678",  # words
    "SuperSecretPassword2024!SuperSecretPassword2024!",  # a phrase, twice
    "0123456789abcdef0123456789abcdef",  # hex counting  # pragma: allowlist secret
    "ab12" * 10,
    "Qwerty123!Qwerty123!Qwerty123!Qwerty123!",
]


@pytest.mark.parametrize("key", WEAK)
def test_low_entropy_keys_are_refused_with_a_fix(key: str) -> None:
    assert estimate_bits(key) < MIN_KEY_BITS
    with pytest.raises(AnonymizationError) as err:
        Pseudonymize(["email"], key=SecretStr(key))
    text = str(err.value)
    assert "too weak" in text or "distinct" in text
    assert "etl-express keygen" in text and key not in text


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_urlsafe(48),
        lambda: secrets.token_hex(32),
        lambda: secrets.token_bytes(48).hex().upper(),
    ],
)
def test_random_keys_pass(make) -> None:  # type: ignore[no-untyped-def]
    for _ in range(20):
        key = make()
        assert estimate_bits(key) >= MIN_KEY_BITS, key
        Pseudonymize(["email"], key=SecretStr(key))


def test_weak_key_in_a_secret_store_is_refused_when_resolved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ETL_EXPRESS_WEAK_ANON_KEY", "abcdefgh" * 4)
    p = Pseudonymize(["email"], key=etl.secret("WEAK_ANON_KEY"))
    with pytest.raises(AnonymizationError, match="too weak") as err:
        p.anonymize(pa.RecordBatch.from_pydict({"email": ["a@b.ru"]}))
    assert "WEAK_ANON_KEY" in str(err.value) and "abcdefgh" not in str(err.value)


def test_keygen_prints_a_strong_fresh_key_and_where_to_store_it() -> None:
    def run(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "etl_express.cli", "keygen", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout

    text = run()
    key = text.splitlines()[0]
    assert estimate_bits(key) >= MIN_KEY_BITS and len(key) >= 64
    for where in ("gh secret set ANON_KEY", "keyring set etl-express", "vault kv", "bao kv"):
        assert where in text
    quiet = run("--quiet").strip()
    assert quiet != key and estimate_bits(quiet) >= MIN_KEY_BITS
    Pseudonymize(["email"], key=SecretStr(quiet))


def test_workers_receive_a_reference_never_the_key(
    monkeypatch: pytest.MonkeyPatch, pg_url: str, pipeline_name: str
) -> None:
    value = secrets.token_urlsafe(48)
    monkeypatch.setenv("ETL_EXPRESS_WORKER_ANON_KEY", value)
    ref = etl.secret("WORKER_ANON_KEY")
    batch = pa.RecordBatch.from_pydict({"email": ["a@b.ru"], "notes": ["x@y.ru"]})
    anonymizers = [
        Pseudonymize(["email"], key=ref),
        ScrubPII(["notes"], replace="pseudonym", key=ref),
    ]
    for a in anonymizers:
        a.anonymize(batch)  # derived keys now live in memory
    pipeline = etl.Pipeline(pipeline_name, ListSource([]), anonymizers=anonymizers)
    payload = pickle.dumps(pipeline)  # what parallel.py sends to each worker
    forms = [value.encode(), value.encode("utf-16-le")]
    for entity in ("email", "phone"):
        sub = entity_subkey(value.encode(), entity)
        forms += [sub, sub.hex().encode()]
    for form in forms:
        assert form not in payload
    assert b"WORKER_ANON_KEY" in payload

    # a key given as a value cannot travel: refused with the fix
    valued = etl.Pipeline(
        pipeline_name, ListSource([]), anonymizers=[Pseudonymize(["email"], key=SecretStr(value))]
    )
    with pytest.raises(AnonymizationError, match=r"etl\.secret\('ANON_KEY'\)") as err:
        pickle.dumps(valued)
    assert value not in str(err.value)
