"""Serve the registry with gunicorn for a benchmark, as the Docker image does, and watch its memory."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(**overrides: str) -> dict[str, str]:
    """The production settings (DEBUG off) on loopback, with the backing services the caller's
    environment names (DATABASE_URL, REDIS_URL, AWS_*). Throttling is lifted: a benchmark's one
    address and few users would otherwise hit the per-user limit within seconds."""
    env = dict(os.environ)
    env.setdefault("SECRET_KEY", "bench-" + secrets.token_urlsafe(48))
    env.update(
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_HSTS_SECONDS="0",
        THROTTLE_RATE_USER="100000000/minute",
        THROTTLE_RATE_AUTH="100000/minute",
        BCRYPT_ROUNDS=env.get("BCRYPT_ROUNDS", "12"),
        DJANGO_SETTINGS_MODULE="registry.settings",
    )
    env.update(overrides)
    return env


def process_parents() -> dict[int, int]:
    """Every process's parent pid, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def child_pids(pid: int) -> list[int]:
    return [child for child, parent in process_parents().items() if parent == pid]


def s3_client():
    """boto3's S3 client for the server the environment names (AWS_*), as the app's settings make it."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_S3_ENDPOINT_URL"],
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
        region_name=os.environ.get("AWS_S3_REGION_NAME", "us-east-1"),
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def process_tree_rss(root_pid: int) -> int:
    """Resident memory in bytes of ``root_pid`` and all its descendants, from /proc."""
    parents = process_parents()
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid and child not in tree]
        tree.update(children)
        frontier.extend(children)
    total = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


class Gunicorn:
    """``gunicorn registry.wsgi`` with the Dockerfile's options (sync workers, 300 s timeout) on a
    loopback port.

    Use as a context manager; ``peak_rss`` is the highest resident memory of the whole process tree
    sampled every 100 ms since ``reset_peak()``.
    """

    def __init__(self, *, workers: int, env: dict[str, str], log_dir: Path, threads: int = 1):
        self.workers = workers
        self.threads = threads
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"gunicorn-{self.port}.log"
        self.process: subprocess.Popen | None = None
        self.peak_rss = 0
        self._sampling = threading.Event()

    def __enter__(self) -> Gunicorn:
        command = [
            str(GUNICORN),
            "registry.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--worker-tmp-dir",
            "/dev/shm",
            "--no-control-socket",
            "--timeout",
            "300",
            "--error-logfile",
            str(self.log_path),
        ]
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=self._log, stderr=self._log)
        self._wait_until_healthy()
        self._sampling.set()
        threading.Thread(target=self._sample_rss, daemon=True).start()
        return self

    def _wait_until_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200 and self._all_workers_booted():
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /health within {timeout:.0f} s; see {self.log_path}")

    def _all_workers_booted(self) -> bool:
        return self.log_path.read_text(errors="replace").count("Booting worker") >= self.workers

    def _sample_rss(self) -> None:
        while self._sampling.is_set() and self.process.poll() is None:
            self.peak_rss = max(self.peak_rss, self.rss())
            time.sleep(0.1)

    def rss(self) -> int:
        return process_tree_rss(self.process.pid)

    def reset_peak(self) -> None:
        self.peak_rss = self.rss()

    def __exit__(self, *exc_info) -> None:
        self._sampling.clear()
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
