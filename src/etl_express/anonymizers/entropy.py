"""How many bits of guessing a key costs: a small pattern-aware estimator.

A key's length says little: ``"12345678901234567890123456789012"`` and ``"abcdefgh" * 4`` are
32 bytes and are guessed at once. :func:`estimate_bits` splits the key into the cheapest
sequence of pieces an attacker would guess — a run of one repeated character, an ascending or
descending sequence (``abcd``, ``9876``), a walk along a keyboard row (``qwerty``, ``йцукен``,
``asdf``), a common word, a repetition of an earlier part of the key — and single characters
otherwise, each costing ``log2`` of the alphabet the key draws from (16 for hex, 64 for
base64...). The total is a lower bound in the spirit of zxcvbn, not a proof of randomness;
what ``secrets.token_urlsafe(48)`` (``etl-express keygen``) gives passes with a wide margin.
"""

from __future__ import annotations

import itertools
import math
import string

#: the least a pseudonymization key must cost to guess
MIN_KEY_BITS = 128

_ROWS = (
    "`1234567890-=",
    "qwertyuiop[]\\",
    "asdfghjkl;'",
    "zxcvbnm,./",
    "ёйцукенгшщзхъ",
    "фывапролджэ",
    "ячсмитьбю",
)
_NEXT = {pair for row in _ROWS for pair in itertools.pairwise(row)}
_WORDS = frozenset(
    [
        "password",
        "passw0rd",
        "secret",
        "secrets",
        "token",
        "apikey",
        "anonkey",
        "etlexpress",
        "express",
        "example",
        "admin",
        "root",
        "master",
        "qwerty",
        "letmein",
        "welcome",
        "changeme",
        "default",
        "test",
        "testing",
        "dragon",
        "monkey",
        "sunshine",
        "princess",
        "football",
        "iloverussia",
        "moscow",
        "russia",
        "privet",
        "parol",
        "parolь",
        "пароль",
        "секрет",
        "ключ",
        "salt",
        "pepper",
        "hello",
        "world",
        "company",
        "client",
        "customer",
        "value",
        "string",
        "random",
        "private",
        "public",
        "access",
        "login",
        "user",
        "1c1c",
        "enterprise",
        "postgres",
        "postgresql",
        "database",
    ]
)
_MAX_WORD = max(len(w) for w in _WORDS)
_WORD_BITS = math.log2(len(_WORDS)) + 1  # the word and its capitalization


def alphabet_bits(key: str) -> float:
    """``log2`` of the size of the alphabet the key's characters come from."""
    chars = set(key)
    if chars <= set(string.hexdigits) and (
        chars <= set(string.digits + "abcdef") or chars <= set(string.digits + "ABCDEF")
    ):
        size = 10 if chars <= set(string.digits) else 16
    else:
        size = 0
        if chars & set(string.digits):
            size += 10
        if chars & set(string.ascii_lowercase):
            size += 26
        if chars & set(string.ascii_uppercase):
            size += 26
        if chars & set(string.punctuation):
            size += 33
        if any(not c.isascii() for c in chars):
            size += 66  # a Cyrillic alphabet in both cases
    return math.log2(max(size, 2))


def _step(a: str, b: str) -> int:
    return ord(b) - ord(a)


def estimate_bits(key: str) -> float:
    """The estimated cost, in bits, of guessing ``key`` (see the module docstring)."""
    key = key[:256]
    n = len(key)
    if n == 0:
        return 0.0
    per_char = alphabet_bits(key)
    lower = key.lower()
    best = [0.0] + [math.inf] * n
    for i in range(n):
        if best[i] == math.inf:
            continue
        here = best[i]

        def offer(end: int, bits: float, here: float = here) -> None:
            if here + bits < best[end]:
                best[end] = here + bits

        offer(i + 1, per_char)
        # runs of one character, sequences with a constant step of +-1, keyboard walks
        j = i + 1
        while j < n and key[j] == key[i]:
            j += 1
        if j - i >= 3:
            for end in range(i + 3, j + 1):
                offer(end, per_char + math.log2(end - i))
        for step in (1, -1):
            j = i + 1
            while j < n and _step(key[j - 1], key[j]) == step:
                j += 1
            for end in range(i + 3, j + 1):
                offer(end, per_char + math.log2(end - i) + 1)
        j = i + 1
        while j < n and ((lower[j - 1], lower[j]) in _NEXT or (lower[j], lower[j - 1]) in _NEXT):
            j += 1
        for end in range(i + 3, j + 1):
            offer(end, per_char + math.log2(end - i) + 2)
        for length in range(4, min(_MAX_WORD, n - i) + 1):
            if lower[i : i + length] in _WORDS:
                offer(i + length, _WORD_BITS)
        # a repetition of an earlier part of the key (overlapping too): where, how long
        for back in range(1, i + 1):
            length = 0
            while i + length < n and key[i + length] == key[i - back + length]:
                length += 1
            if length >= 4:
                offer(i + length, math.log2(i) + math.log2(length))
    return best[n]


def weakness(key: str) -> str | None:
    """Why ``key`` is too weak to pseudonymize with, or ``None`` when it is strong enough."""
    bits = estimate_bits(key)
    if bits < MIN_KEY_BITS:
        return (
            f"it is guessable: about {bits:.0f} bits of entropy (repeats, sequences, keyboard "
            f"walks and words count for little), at least {MIN_KEY_BITS} are required"
        )
    return None


__all__ = ["MIN_KEY_BITS", "alphabet_bits", "estimate_bits", "weakness"]
