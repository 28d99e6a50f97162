"""A dictionary attack on phone tokens fails without the key and succeeds with it.

The whole space of one mobile prefix (10^7 numbers) is too large to hash here in Python, so
the test is sampled fairly: 20,000 numbers of one 10^5 block (+7 916 12x-xx-xx), given in
several formats, are tokenized; then every number of that block, in every usual spelling,
is hashed with each scheme an attacker would try. Unkeyed SHA-256/SHA-1/MD5/BLAKE2b, an
empty-key HMAC, salt-only hashes with the library's public constants and the library's own
construction with guessed keys match nothing; the library's construction with the real key
matches every token. The key is the only secret.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Callable, Iterable

import pyarrow as pa
from pydantic import SecretStr

from etl_express.anonymizers import Pseudonymize
from etl_express.anonymizers.keys import entity_subkey

from . import idnumbers as nb

BLOCK = "91612"  # +7 916 12x-xx-xx: 10^5 numbers
SAMPLE = 20_000
LIB_SALT = b"etl-express pseudonymize v1"


def _spellings(national: str) -> list[bytes]:
    return [
        f"+7{national}".encode(),
        f"7{national}".encode(),
        f"8{national}".encode(),
        national.encode(),
    ]


def _dictionary() -> list[bytes]:
    words: list[bytes] = []
    for i in range(100_000):
        words.extend(_spellings(f"{BLOCK}{i:05d}"))
    return words


def _keyed(subkey: bytes) -> Callable[[bytes], bytes]:
    state = hashlib.blake2b(key=subkey, digest_size=16)

    def digest(word: bytes) -> bytes:
        h = state.copy()
        h.update(word)
        return h.digest()

    return digest


ATTACKS: dict[str, Callable[[bytes], bytes]] = {
    "sha256": lambda w: hashlib.sha256(w).digest(),
    "sha1": lambda w: hashlib.sha1(w).digest(),
    "md5": lambda w: hashlib.md5(w).digest(),
    "blake2b unkeyed": lambda w: hashlib.blake2b(w, digest_size=16).digest(),
    "hmac-sha256 empty key": lambda w: hmac.digest(b"", w, "sha256"),
    "sha256(library salt + value)": lambda w: hashlib.sha256(LIB_SALT + w).digest(),
    "sha256(value + library salt)": lambda w: hashlib.sha256(w + LIB_SALT).digest(),
    "sha256('phone' + value)": lambda w: hashlib.sha256(b"phone" + w).digest(),
    "library construction, empty key": _keyed(entity_subkey(b"", "phone")),
    "library construction, key 'etl-express'": _keyed(entity_subkey(b"etl-express", "phone")),
}


def _matches(digest: Callable[[bytes], bytes], words: Iterable[bytes], targets: set[bytes]) -> int:
    return sum(1 for d in map(digest, words) if d[:16] in targets)


def test_dictionary_attack_needs_the_key() -> None:
    rng = random.Random(7)
    key = "".join(
        rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        for _ in range(48)
    )
    picked = rng.sample(range(100_000), SAMPLE)
    given = [rng.choice(nb.phone_formats(f"{BLOCK}{i:05d}")) for i in picked]
    tokens = (
        Pseudonymize(["phone"], key=SecretStr(key))
        .anonymize(pa.RecordBatch.from_pydict({"phone": given}))
        .column(0)
        .to_pylist()
    )
    targets = {bytes.fromhex(t.split(":", 1)[1]) for t in tokens}
    assert len(targets) == SAMPLE  # distinct numbers, distinct tokens

    words = _dictionary()
    for name, digest in ATTACKS.items():
        assert _matches(digest, words, targets) == 0, name

    with_key = _keyed(entity_subkey(key.encode(), "phone"))
    found = {d for d in map(with_key, words) if d in targets}
    assert found == targets  # every token is recovered, only with the key
