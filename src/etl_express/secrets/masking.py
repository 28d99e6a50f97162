"""Masking of secret values in everything printed (see :mod:`etl_express._masking`, which
sits outside this package so that :mod:`etl_express.errors` can use it without importing
the secret providers)."""

from .._masking import (
    MASK,
    MIN_SECRET_LENGTH,
    forget_secrets,
    known_secret_count,
    mask_secrets,
    mask_url,
    mask_url_passwords,
    register_secret,
)

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "forget_secrets",
    "known_secret_count",
    "mask_secrets",
    "mask_url",
    "mask_url_passwords",
    "register_secret",
]
