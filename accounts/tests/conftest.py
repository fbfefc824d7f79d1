import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

REPO_ROOT = Path(__file__).resolve().parents[2]
PROVIDER_SETTINGS = "accounts.tests.oidc_provider.settings"
PROVIDER_STARTUP_TIMEOUT = 20


@dataclass
class OIDCProvider:
    """A running allauth IdP on loopback; `set_user` and `register_redirect_uri` change its database."""

    issuer: str
    client_id: str
    client_secret: str
    env: dict[str, str] = field(repr=False)

    def control(self, command: str, **arguments) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "accounts.tests.oidc_provider.control", command, json.dumps(arguments)],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode:
            raise RuntimeError(f"OIDC provider {command} failed:\n{result.stderr}")

    def register_redirect_uri(self, uri: str) -> None:
        """Makes `uri` the client's only allowed redirect URI."""
        self.control("register_redirect_uri", client_id=self.client_id, uri=uri)

    def set_user(self, username: str, password: str, email: str, groups: list[str]) -> None:
        """Creates or updates a provider user with exactly these groups and a primary, verified email."""
        self.control("set_user", username=username, password=password, email=email, groups=list(groups))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(process: subprocess.Popen, url: str, stderr_path: Path) -> None:
    deadline = time.monotonic() + PROVIDER_STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"OIDC provider exited with {process.returncode}:\n{stderr_path.read_text()}")
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    pytest.fail(f"OIDC provider not up after {PROVIDER_STARTUP_TIMEOUT} s:\n{stderr_path.read_text()}")


@pytest.fixture(scope="session")
def oidc_provider():
    """An OpenID Connect provider (allauth's IdP, its own Django project) for single-sign-on tests."""
    tmp = Path(tempfile.mkdtemp(prefix="oidc-provider-"))
    process = None
    try:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_file = tmp / "key.pem"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        port = _free_port()
        issuer = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": PROVIDER_SETTINGS,
            "OIDC_PROVIDER_DB": str(tmp / "db.sqlite3"),
            "OIDC_PROVIDER_KEY_FILE": str(key_file),
            "OIDC_PROVIDER_ISSUER": issuer,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        }
        provider = OIDCProvider(issuer=issuer, client_id="registry", client_secret="registry-secret", env=env)
        provider.control("init", client_id=provider.client_id, client_secret=provider.client_secret)

        stderr_path = tmp / "server.log"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        _wait_until_up(process, f"{issuer}/.well-known/openid-configuration", stderr_path)
        yield provider
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(tmp, ignore_errors=True)
