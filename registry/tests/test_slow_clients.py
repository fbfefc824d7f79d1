"""Slow clients against the served stack: gunicorn's sync workers behind docker/nginx.conf.

A sync worker serves one connection from its first header byte to its last response byte, so a
client that announces a body and then goes quiet holds a worker until gunicorn's --timeout. These
tests start the real pieces on loopback: gunicorn as the image runs it (sync workers, on a migrated
SQLite file) and nginx with the shipped docker/nginx.conf, of which only the listen address and the
upstream are rewritten (the file paths, which it leaves to the image, are set around it). They show
that through nginx /health keeps answering while more slow clients hang than there are workers, and,
as the control that proves the test can fail, that the same clients sent straight to gunicorn starve
it. Every wait is bounded; the module takes about 10 s.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from registry import env

pytestmark = pytest.mark.nginx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = PROJECT_ROOT / "docker" / "nginx.conf"
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
GUNICORN = Path(sys.executable).with_name("gunicorn")

WORKERS = 2
SLOW_CLIENTS = 4  # twice the workers: unbuffered, two of them would be enough
HEALTH_PROBES = 5
ANSWER_WITHIN = 2.0  # seconds for /health through nginx while the slow clients hang
STARVED_AFTER = 3.0  # seconds the control waits for /health straight from gunicorn
START_WITHIN = 30.0  # seconds for a server to come up

# Headers announcing 1,000 bytes of body, then 6 of them, then nothing: an anonymous API login,
# which parses the JSON body before anything else can answer, so a worker that took this request
# waits in read() for the rest. (A page form POST without a CSRF cookie would not do: the CSRF check
# refuses it before reading the body.) Nothing here needs an account or a token.
SLOW_PATH = "/api/v1/auth/login/"
SLOW_REQUEST = (
    f"POST {SLOW_PATH} HTTP/1.1\r\n"
    "Host: 127.0.0.1\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 1000\r\n"
    "\r\n"
    '{"user'
).encode()


def nginx_binary() -> str | None:
    """Debian installs nginx in /usr/sbin, which a non-root PATH may lack (as in conftest.py)."""
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"({path.name}: no file)"
    return f"--- {path.name} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def stop(process: subprocess.Popen) -> None:
    """Stop one process this module started, by its pid, and reap it (SIGTERM: for nginx its fast
    shutdown, for gunicorn its graceful one; both take their workers with them)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def get(
    port: int,
    path: str,
    *,
    timeout: float,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
    body: str | None = None,
) -> tuple[int, bytes, float]:
    """One request (a POST when there is a body) on a fresh connection from ``source``:
    (status, body, seconds). Raises TimeoutError when no answer comes within ``timeout``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    started = time.monotonic()
    try:
        connection.request("POST" if body is not None else "GET", path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read(), time.monotonic() - started
    finally:
        connection.close()


def health_answers_within(port: int, timeout: float) -> float | None:
    """Seconds /health took to answer 200 (every check ok, the migrated database among them), or None
    when it did not answer in time."""
    try:
        status, body, elapsed = get(port, "/health", timeout=timeout)
    except TimeoutError:
        return None
    assert status == 200, body
    assert json.loads(body)["database"] == "ok"
    return elapsed


@contextmanager
def slow_clients(port: int, count: int = SLOW_CLIENTS) -> Iterator[list[socket.socket]]:
    """``count`` connections that sent SLOW_REQUEST and then hang; closed on the way out."""
    connections: list[socket.socket] = []
    try:
        for _ in range(count):
            connection = socket.create_connection(("127.0.0.1", port), timeout=5)
            connections.append(connection)
            connection.sendall(SLOW_REQUEST)
        # Time for the server to take them all (accept, read the headers, start on the body).
        time.sleep(0.3)
        yield connections
    finally:
        for connection in connections:
            connection.close()


def still_hanging(connections: list[socket.socket]) -> bool:
    """True while the server has neither answered nor closed any of these connections."""
    for connection in connections:
        connection.setblocking(False)
        try:
            connection.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            continue  # nothing to read: still waiting for the rest of its body
        else:
            return False  # an answer, or b"" for a closed connection
        finally:
            connection.settimeout(5)
    return True


def wait_until(condition, *, within: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {within:.0f} s\n" + "\n".join(tail(log) for log in logs))
        time.sleep(0.1)


def compose_web_environment() -> dict[str, str]:
    web = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["web"]
    return {key: str(value) for key, value in web["environment"].items()}


# --- the servers ----------------------------------------------------------------------------
@dataclass
class Server:
    port: int
    logs: list[Path]
    access_log: Path


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """One folder for the module's databases, logs and nginx files. nginx's workers run as nobody
    when it is started as root: they must reach its temp folders, hence 755 (mkdtemp makes 700)."""
    directory = Path(tempfile.mkdtemp(prefix="registry-slow-clients-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def migrated_database(workdir) -> Path:
    """A SQLite file with the schema applied, copied by each gunicorn below."""
    path = workdir / "migrated.sqlite3"
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=PROJECT_ROOT,
        env=server_environment(path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return path


def server_environment(database: Path, **overrides: str) -> dict[str, str]:
    """The production settings (DEBUG off) on loopback over plain HTTP, on embedded services (the
    given SQLite file, files under the work folder, the in-process cache), with no configuration
    variable of this test run leaking in. NUM_PROXIES is compose's, as the web service gets it."""
    environment = {key: value for key, value in os.environ.items() if key not in env.VARIABLES_READ}
    environment.update(
        DJANGO_SETTINGS_MODULE="registry.settings",
        DEBUG="0",
        SECRET_KEY="slow-clients-" + secrets.token_urlsafe(48),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_HSTS_SECONDS="0",
        DATABASE_URL=f"sqlite:///{database}",
        MEDIA_ROOT=str(database.parent / "media"),
        NUM_PROXIES=compose_web_environment()["NUM_PROXIES"],
        BCRYPT_ROUNDS="4",
        LOG_LEVEL="WARNING",
    )
    environment.update(overrides)
    return environment


@contextmanager
def gunicorn(workdir: Path, database: Path, *, workers: int, **environment: str) -> Iterator[Server]:
    """gunicorn on registry.wsgi with sync workers, as the Dockerfile runs it, on a loopback port."""
    port = free_port()
    own_database = workdir / f"gunicorn-{port}.sqlite3"
    shutil.copyfile(database, own_database)
    error_log, access_log = workdir / f"gunicorn-{port}.log", workdir / f"gunicorn-{port}-access.log"
    command = [
        str(GUNICORN),
        "registry.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--timeout",
        "30",
        "--no-control-socket",  # gunicorn 27's control socket under ~ would clash between runs
        "--error-logfile",
        str(error_log),
        "--access-logfile",
        str(access_log),
    ]
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=server_environment(own_database, **environment),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited with {process.returncode}\n{tail(error_log)}")
            booted = error_log.exists() and error_log.read_text(errors="replace").count("Booting worker") >= workers
            return booted and health_answers_within(port, 2.0) is not None

        wait_until(ready, within=START_WITHIN, what="gunicorn did not answer /health", logs=[error_log])
        yield Server(port=port, logs=[error_log], access_log=access_log)
    finally:
        stop(process)


def render_nginx_site(*, listen_port: int, upstream_port: int) -> str:
    """docker/nginx.conf as shipped, with only its listen port and its upstream moved to loopback.

    Each must be found exactly once: if the file changes shape, this fails instead of quietly
    testing something else.
    """
    text = NGINX_CONF.read_text()
    text, listens = re.subn(r"^(\s*)listen\s+8000\s*;", rf"\1listen 127.0.0.1:{listen_port};", text, flags=re.M)
    text, upstreams = re.subn(r"^(\s*)server\s+web:8000\s*;", rf"\1server 127.0.0.1:{upstream_port};", text, flags=re.M)
    assert (listens, upstreams) == (1, 1), (
        "docker/nginx.conf no longer has one `listen 8000;` and one `server web:8000;`"
    )
    return text


@contextmanager
def nginx(workdir: Path, upstream: Server) -> Iterator[Server]:
    """nginx with docker/nginx.conf included in an http block, as the official image's nginx.conf
    includes conf.d/*.conf; around it only what the image provides: pid, logs and temp folders."""
    binary = nginx_binary()
    assert binary, "nginx is not installed (apt-get install -y nginx)"
    port = free_port()
    prefix = workdir / f"nginx-{port}"
    temp = prefix / "temp"  # client bodies and proxied responses that outgrow memory
    temp.mkdir(parents=True)
    prefix.chmod(0o755)
    (prefix / "registry.conf").write_text(render_nginx_site(listen_port=port, upstream_port=upstream.port))
    (prefix / "nginx.conf").write_text(
        f"""
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {prefix}/registry.conf;
}}
"""
    )
    error_log = prefix / "error.log"
    command = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(error_log), "-g", "daemon off;"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"nginx exited with {process.returncode}\n{tail(error_log)}")
            try:
                return health_answers_within(port, 2.0) is not None
            except OSError:  # not listening yet
                return False

        wait_until(ready, within=START_WITHIN, what="nginx did not answer /health", logs=[error_log])
        yield Server(port=port, logs=[error_log, *upstream.logs], access_log=prefix / "access.log")
    finally:
        stop(process)  # SIGTERM: nginx's fast shutdown, its workers with it


@pytest.fixture(scope="module")
def app(workdir, migrated_database) -> Iterator[Server]:
    """gunicorn with two sync workers, as docker-compose.yml runs it by default (WEB_CONCURRENCY).

    The login throttle counts each slow request before its body is read; it is lifted here so that
    what holds a worker is the body, never a 429."""
    with gunicorn(workdir, migrated_database, workers=WORKERS, THROTTLE_RATE_AUTH="1000/minute") as server:
        yield server


@pytest.fixture(scope="module")
def proxy(workdir, app) -> Iterator[Server]:
    with nginx(workdir, app) as server:
        yield server


def requests_logged(log: Path, request_line: str) -> int:
    return log.read_text(errors="replace").count(request_line) if log.exists() else 0


# --- the tests ------------------------------------------------------------------------------
def test_health_answers_through_nginx_while_slow_clients_hang(proxy, app):
    with slow_clients(proxy.port) as hanging:
        answered = [health_answers_within(proxy.port, ANSWER_WITHIN) for _ in range(HEALTH_PROBES)]
        assert None not in answered, f"/health through nginx timed out: {answered}\n" + tail(proxy.logs[0])
        assert max(answered) < ANSWER_WITHIN
        assert still_hanging(hanging), "nginx answered or dropped a slow client: the test proves nothing"

    # nginx logs each slow request once the client is gone; gunicorn never saw one of them.
    wait_until(
        lambda: requests_logged(proxy.access_log, f"POST {SLOW_PATH}") == SLOW_CLIENTS,
        within=5,
        what="nginx did not log the slow requests",
        logs=[proxy.access_log],
    )
    assert requests_logged(app.access_log, f"POST {SLOW_PATH}") == 0


def test_control_the_same_slow_clients_straight_at_gunicorn_starve_health(app):
    """Without nginx the two workers sit in read() for the slow bodies: this is the failure the
    test above would show if nginx streamed bodies instead of buffering them."""
    with slow_clients(app.port) as hanging:
        started = time.monotonic()
        assert health_answers_within(app.port, STARVED_AFTER) is None, "gunicorn answered while starved"
        assert time.monotonic() - started >= STARVED_AFTER - 0.1
        assert still_hanging(hanging)

    # Closing the slow connections hands the workers back at once (their reads end).
    wait_until(
        lambda: health_answers_within(app.port, 1.0) is not None,
        within=5,
        what="gunicorn did not recover after the slow clients left",
        logs=app.logs,
    )


def test_nginx_refuses_a_body_over_the_upload_limit_before_reading_it(proxy, app):
    too_large = 5 * 1024**3 + 2 * 1024**2  # the 5 GiB artifact limit plus more than its envelope
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=ANSWER_WITHIN) as connection:
        connection.sendall(
            b"POST /api/v1/files/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: " + str(too_large).encode() + b"\r\n\r\n"
        )
        answer = connection.recv(4096)
    status_line, rest = answer.split(b"\r\n", 1)

    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert b"Content-Type: application/json" in rest
    assert b'{"detail": "Request body too large' in rest
    assert requests_logged(app.access_log, "/api/v1/files/upload") == 0


def test_throttles_behind_nginx_count_each_client_address_and_ignore_forged_forwarded_for(workdir, migrated_database):
    """With compose's NUM_PROXIES and the X-Forwarded-For nginx writes, the per-address login
    throttle sees the client nginx saw: one client cannot dodge it by sending made-up addresses,
    and it does not use up another client's budget. One worker, so one in-process counter."""
    with (
        gunicorn(workdir, migrated_database, workers=1, THROTTLE_RATE_AUTH="2/hour") as server,
        nginx(workdir, server) as front,
    ):

        def log_in(source: str, forged: str | None = None) -> int:
            headers = {"Content-Type": "application/json"}
            if forged:
                headers["X-Forwarded-For"] = forged
            body = json.dumps({"username": "nobody", "password": "not the password"})
            status, _, _ = get(front.port, "/api/v1/auth/login/", timeout=5, source=source, headers=headers, body=body)
            return status

        # Loopback answers on all of 127/8: two source addresses are two clients to nginx.
        first = [log_in("127.0.0.2", forged=f"198.51.100.{n}") for n in range(1, 4)]
        second = log_in("127.0.0.3")

    assert first == [401, 401, 429]  # the body arrived in full (401, not 400), then the limit held
    assert second == 401
