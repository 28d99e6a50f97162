"""``etl-express keygen``: a fresh pseudonymization key and how to store it."""

from __future__ import annotations

import secrets

import typer

from . import app

KEY_BYTES = 48  # 384 random bits, 64 URL-safe characters


def keyring_backend() -> tuple[bool, str]:
    """Whether the OS keyring can store a secret here, and the backend's name (or why not).

    A headless Linux server usually has no backend: ``keyring`` then selects its ``fail``
    backend, whose every call raises ``NoKeyringError``."""
    try:
        import keyring
        from keyring.backends import chainer, fail
    except ImportError:  # pragma: no cover - keyring is a dependency
        return False, "the keyring package is not installed"
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or (
        isinstance(backend, chainer.ChainerBackend) and not backend.backends
    ):
        return False, "keyring has no backend: NoKeyringError"
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    if name.startswith("keyrings.alt."):
        name += ", a plain-text file: not secret"
    return True, name


def _keyring_section(name: str) -> str:
    usable, backend = keyring_backend()
    if usable:
        return f"""OS keyring (service etl-express, user {name}; backend {backend}):
  python -m keyring set etl-express {name}          # paste the key when asked"""
    return f"""OS keyring: not available here ({backend}; usual on a headless server).
  Use the environment variable, a secret file or Vault instead, or install a backend
  (a desktop Secret Service, or the plain-text file backend keyrings.alt, which is not secret)."""


@app.command("keygen")
def keygen_command(
    name: str = typer.Option("ANON_KEY", "--name", help="The secret name the pipelines use."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Print the key alone (for piping into a secret store)."
    ),
    export: bool = typer.Option(
        False,
        "--export",
        help="Print only an export ETL_EXPRESS_<NAME>=... line (eval it in a shell).",
    ),
) -> None:
    """Print a fresh random key for Pseudonymize and ScrubPII, and how to store it.

    The key comes from the operating system's CSPRNG (secrets.token_urlsafe): 384 bits, far
    above the 128 bits a key must have. It is printed once and written nowhere; store it in a
    secret store and refer to it as etl.secret("ANON_KEY"). On a laptop or in a notebook the
    environment variable ETL_EXPRESS_ANON_KEY is enough (the export line). Losing the key means
    new tokens that no longer join the old ones; leaking it lets anyone with a list of candidate
    values (all phone numbers) recompute the tokens, so rotate it then.
    """
    key = secrets.token_urlsafe(KEY_BYTES)
    variable = f"ETL_EXPRESS_{name}"
    if quiet:
        typer.echo(key)  # the key itself is the output: it must not be masked
        return
    if export:
        typer.echo(f"export {variable}={key}")
        return
    typer.echo(
        f"""{key}

A new {KEY_BYTES * 8}-bit key. It is shown once and stored nowhere: put it in a secret store
now, then use key=etl.secret("{name}") in the pipeline. Never commit it or write it in code.

Laptop or notebook (this shell and what it starts; put it in a file only you can read):
  export {variable}={key}
  # or: eval "$(etl-express keygen --export)"; in Jupyter: %env {variable}=<the key>

GitHub Actions (a repository or environment secret):
  gh secret set {name}            # paste the key when asked
  # workflow: env: {{ {name}: ${{{{ secrets.{name} }}}} }}

{_keyring_section(name)}

HashiCorp Vault / OpenBao (KV v2, field {name} of secret/etl-express):
  vault kv patch -mount=secret etl-express {name}=-   # reads the key from stdin
  bao kv patch -mount=secret etl-express {name}=-

Kubernetes / Docker secret file: /run/secrets/{name} (mode 0400).

Keep the same key for every pipeline whose tokens must join; a new key means new tokens."""
    )


__all__ = ["keygen_command", "keyring_backend"]
