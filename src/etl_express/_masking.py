"""Keep secrets out of everything printed: URL passwords and known secret values.

Every value resolved through ``etl.secret`` (or revealed from a ``SecretStr``) is added to
a process-local set; :func:`mask_secrets` replaces each of them, and every
``scheme://user:<password>@`` password, with ``***``. The logging patcher and
:class:`~etl_express.errors.ETLError` run every message through it.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import unquote

MASK = "***"
#: shorter values are not masked on their own (masking "1" everywhere helps nobody)
MIN_SECRET_LENGTH = 4

_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)([^\s@]+)@")

_lock = threading.Lock()
_known: set[str] = set()
_ordered: tuple[str, ...] = ()


def register_secret(value: str | None) -> None:
    """Remember ``value`` (and the password inside it, if it is a URL) for masking."""
    if not value or not isinstance(value, str):
        return
    found = [value]
    for match in _URL_PASSWORD.finditer(value):
        found += [match.group(2), unquote(match.group(2))]
    new = {v for v in found if len(v) >= MIN_SECRET_LENGTH and v not in _known}
    if not new:
        return
    global _ordered
    with _lock:
        _known.update(new)
        # longest first, so a URL is masked whole before its password is
        _ordered = tuple(sorted(_known, key=len, reverse=True))


def forget_secrets() -> None:
    """Clear the set of known secret values (for tests)."""
    global _ordered
    with _lock:
        _known.clear()
        _ordered = ()


def known_secret_count() -> int:
    return len(_ordered)


def mask_url_passwords(text: str) -> str:
    """``postgresql://user:<password>@host/db`` -> ``postgresql://user:***@host/db``, anywhere in text."""
    return _URL_PASSWORD.sub(r"\1" + MASK + "@", text)


def mask_secrets(text: str) -> str:
    """``text`` with every known secret value and every URL password replaced by ``***``."""
    if not isinstance(text, str) or not text:
        return text
    for value in _ordered:
        if value in text:
            text = text.replace(value, MASK)
    return mask_url_passwords(text) if "://" in text else text


__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "forget_secrets",
    "known_secret_count",
    "mask_secrets",
    "mask_url_passwords",
    "register_secret",
]
