"""``etl-express keygen``: a fresh pseudonymization key and how to store it."""

from __future__ import annotations

import secrets

import typer

from . import app

KEY_BYTES = 48  # 384 random bits, 64 URL-safe characters


@app.command("keygen")
def keygen_command(
    name: str = typer.Option("ANON_KEY", "--name", help="The secret name the pipelines use."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Print the key alone (for piping into a secret store)."
    ),
) -> None:
    """Print a fresh random key for Pseudonymize / ScrubPII and how to store it.

    The key comes from the operating system's CSPRNG (``secrets.token_urlsafe``): 384 bits,
    far above the 128 bits a key must have. It is printed once and written nowhere; store it
    in a secret store and refer to it as ``etl.secret("ANON_KEY")``. Losing the key means new
    tokens that no longer join the old ones; leaking it lets anyone with a list of candidate
    values (all phone numbers) recompute the tokens, so rotate it then.
    """
    key = secrets.token_urlsafe(KEY_BYTES)
    if quiet:
        typer.echo(key)
        return
    typer.echo(
        f"""{key}

A new {KEY_BYTES * 8}-bit key. It is shown once and stored nowhere: put it in a secret store
now, then use key=etl.secret("{name}") in the pipeline. Never commit it or write it in code.

GitHub Actions (a repository or environment secret):
  gh secret set {name}            # paste the key when asked
  # workflow: env: {{ {name}: ${{{{ secrets.{name} }}}} }}

OS keyring (service etl-express, user {name}):
  python -m keyring set etl-express {name}          # paste the key when asked

HashiCorp Vault / OpenBao (KV v2, field {name} of secret/etl-express):
  vault kv patch -mount=secret etl-express {name}=-   # reads the key from stdin
  bao kv patch -mount=secret etl-express {name}=-

Kubernetes / Docker secret file: /run/secrets/{name} (mode 0400).

Keep the same key for every pipeline whose tokens must join; a new key means new tokens."""
    )


__all__ = ["keygen_command"]
