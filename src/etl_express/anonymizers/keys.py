"""The pseudonymization key: taken from a secret store only, never shown, split per entity.

A keyed hash is only as strong as its key: with a short, literal or default key, every
Russian mobile number (10^9 of them) can be hashed in minutes and matched back. So the key
must be an ``etl.secret(...)`` reference or a ``pydantic.SecretStr`` of at least 32 bytes
and at least 128 bits of estimated entropy (:mod:`.entropy`);
the master key is never used directly but through one HKDF-SHA256 subkey per entity type,
so an email and a phone with the same text never get the same token.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr

from ..errors import AnonymizationError
from ..secrets import SecretRef
from .entropy import MIN_KEY_BITS, weakness

MIN_KEY_BYTES = 32
_MIN_DISTINCT_BYTES = 8
_HKDF_SALT = b"etl-express pseudonymize v1"


KEY_HINT = (
    'generate a random key with `etl-express keygen` (or python -c "import secrets; '
    'print(secrets.token_urlsafe(48))") and store it in a secret store: an environment '
    "variable / GitHub secret, the OS keyring or Vault/OpenBao; pass key=etl.secret('ANON_KEY')"
)


def check_key_source(key: object, owner: str) -> SecretRef | SecretStr:
    """Accept only secret references; refuse literals and obviously weak keys early."""
    if isinstance(key, SecretRef):
        return key
    if isinstance(key, SecretStr):
        check_key_bytes(key.get_secret_value().encode("utf-8"), owner)
        return key
    if isinstance(key, (str, bytes, bytearray)):
        raise AnonymizationError(
            f"{owner} refuses a literal key given in code",
            hint=KEY_HINT,
        )
    raise AnonymizationError(
        f"{owner} key must be etl.secret(...) or a pydantic SecretStr, got {type(key).__name__}",
        hint="pass key=etl.secret('ANON_KEY')",
    )


def check_key_bytes(raw: bytes, owner: str, name: str | None = None) -> None:
    """Refuse keys shorter than 32 bytes or cheaper than 128 bits to guess (repeats,
    sequences, keyboard walks, words: :mod:`.entropy`)."""
    where = {"secret": name} if name else None
    if len(raw) < MIN_KEY_BYTES:
        raise AnonymizationError(
            f"{owner} key is {len(raw)} bytes, at least {MIN_KEY_BYTES} are required",
            where=where,
            hint=KEY_HINT,
        )
    if len(set(raw)) < _MIN_DISTINCT_BYTES:
        raise AnonymizationError(
            f"{owner} key has fewer than {_MIN_DISTINCT_BYTES} distinct characters: "
            "it is not random",
            where=where,
            hint=KEY_HINT,
        )
    why = weakness(raw.decode("utf-8", errors="replace"))
    if why is not None:
        raise AnonymizationError(f"{owner} key is too weak: {why}", where=where, hint=KEY_HINT)


def resolve_key(key: SecretRef | SecretStr, owner: str) -> bytes:
    """The master key bytes (only for deriving subkeys; never stored on an object)."""
    if isinstance(key, SecretRef):
        raw = key.get().get_secret_value().encode("utf-8")
        check_key_bytes(raw, owner, key.name)
        return raw
    raw = key.get_secret_value().encode("utf-8")
    check_key_bytes(raw, owner)
    return raw


def hkdf_sha256(master: bytes, info: bytes, length: int = 32, salt: bytes = _HKDF_SALT) -> bytes:
    """HKDF (RFC 5869) with HMAC-SHA256: extract, then expand to ``length`` bytes."""
    prk = hmac.digest(salt, master, "sha256")
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), "sha256")
        out += block
        counter += 1
    return out[:length]


def entity_subkey(master: bytes, entity: str) -> bytes:
    """The 32-byte key of one entity type (``"email"``, ``"phone"``, ...)."""
    return hkdf_sha256(master, b"entity:" + entity.encode("utf-8"))


def keyed_blake2b(subkey: bytes, digest_size: int) -> hashlib.blake2b:
    """A BLAKE2b state keyed with ``subkey``; ``.copy()`` it per value (the key block is
    compressed once, not once per value)."""
    return hashlib.blake2b(key=subkey, digest_size=digest_size)


__all__ = [
    "KEY_HINT",
    "MIN_KEY_BITS",
    "MIN_KEY_BYTES",
    "check_key_bytes",
    "check_key_source",
    "entity_subkey",
    "hkdf_sha256",
    "keyed_blake2b",
    "resolve_key",
]
