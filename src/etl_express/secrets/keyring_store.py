"""Secrets from the operating system's keyring through the ``keyring`` package."""

from __future__ import annotations

from ..errors import ETLConfigError
from .base import SecretProvider

KEYRING_SERVICE = "etl-express"


class KeyringProvider(SecretProvider):
    """Reads ``keyring.get_password("etl-express", NAME)``.

    The backend is whatever ``keyring`` selects (macOS Keychain, Windows Credential
    Locker, Secret Service on Linux desktops, or one set with ``keyring.set_keyring`` /
    ``PYTHON_KEYRING_BACKEND``). Store a secret with
    ``keyring set etl-express ANON_KEY``. A machine without any usable backend (a
    headless server) simply has no secrets here: the chain moves on.
    """

    def __init__(self, service: str = KEYRING_SERVICE):
        self.service = service

    def __repr__(self) -> str:
        return f"KeyringProvider(service={self.service!r})"

    def get(self, name: str) -> str | None:
        import keyring
        from keyring.errors import NoKeyringError

        try:
            return keyring.get_password(self.service, name) or None
        except NoKeyringError:
            return None
        except Exception as exc:  # a locked or broken backend (D-Bus, Keychain prompt...)
            raise ETLConfigError(
                f"keyring {self.service}/{name} could not be read: {type(exc).__name__}",
                hint="unlock the keyring, choose another backend with PYTHON_KEYRING_BACKEND, or "
                "leave the keyring out: ETL_EXPRESS_SECRET_PROVIDERS=env,file",
            ) from None

    def describe(self, name: str) -> str:
        return f"keyring {self.service}/{name}"


__all__ = ["KEYRING_SERVICE", "KeyringProvider"]
