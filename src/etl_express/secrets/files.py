"""Secrets from mounted files: one file a secret, Kubernetes and Docker style."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import ETLConfigError
from .base import ENV_PREFIX, SecretProvider

DEFAULT_SECRETS_DIR = "/run/secrets"
SECRETS_DIR_ENV = ENV_PREFIX + "SECRETS_DIR"


def secrets_dirs_from_env() -> list[Path]:
    """``ETL_EXPRESS_SECRETS_DIR`` (several folders separated by ``os.pathsep``), else
    ``/run/secrets``."""
    raw = os.environ.get(SECRETS_DIR_ENV, "")
    dirs = [Path(d) for d in raw.split(os.pathsep) if d.strip()]
    return dirs or [Path(DEFAULT_SECRETS_DIR)]


class FileProvider(SecretProvider):
    """Reads ``<dir>/<NAME>`` from mounted secret folders, the first folder first.

    Docker (``/run/secrets/<name>``) and Kubernetes (a Secret mounted as a volume, one
    file per key) hand secrets over this way. One trailing newline is dropped (``echo``
    and most editors add one); everything else is the value as stored. If ``<NAME>`` is
    absent its lower-case spelling is tried, since Docker secret names are often lower
    case. Names may contain ``/`` to reach sub-folders, never ``..``.
    """

    def __init__(self, dirs: str | Path | Sequence[str | Path] | None = None):
        if dirs is None:
            self.dirs = secrets_dirs_from_env()
        elif isinstance(dirs, (str, Path)):
            self.dirs = [Path(dirs)]
        else:
            self.dirs = [Path(d) for d in dirs]

    def __repr__(self) -> str:
        return f"FileProvider(dirs={[str(d) for d in self.dirs]!r})"

    def _candidates(self, name: str) -> list[Path]:
        parts = name.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise ETLConfigError(
                f"secret name {name!r} is not a valid file name",
                hint="use letters, digits, '_', '-', '.' and '/' between folder names",
            )
        spellings = [name] if name.lower() == name else [name, name.lower()]
        return [d.joinpath(*s.split("/")) for d in self.dirs for s in spellings]

    def get(self, name: str) -> str | None:
        for path in self._candidates(name):
            if path.is_file():
                try:
                    value = path.read_text(encoding="utf-8")
                except OSError as exc:
                    raise ETLConfigError(
                        f"secret file {path} exists but cannot be read: {type(exc).__name__}",
                        hint="check the file's permissions for the user running the pipeline",
                    ) from None
                if value.endswith("\r\n"):
                    value = value[:-2]
                elif value.endswith("\n"):
                    value = value[:-1]
                return value or None
        return None

    def describe(self, name: str) -> str:
        return ", ".join(str(d / name) for d in self.dirs)


__all__ = ["DEFAULT_SECRETS_DIR", "SECRETS_DIR_ENV", "FileProvider", "secrets_dirs_from_env"]
