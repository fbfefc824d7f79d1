"""The container stack: docker-compose.yml, the Dockerfile and its entrypoint.

There is no Docker engine where these tests run, so they check what can be checked without one: the
compose file against the compose specification, the wiring between the services, that the settings
load with exactly the environment compose gives the web service (and read every variable it sets),
what the image does at build time and at start, and what nginx's configuration promises (that nginx
really keeps slow clients off gunicorn with it is test_slow_clients.py's part, on loopback).
"""

import json
import os
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from registry import env

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
ENTRYPOINT = PROJECT_ROOT / "docker" / "entrypoint.sh"
NGINX_CONF = PROJECT_ROOT / "docker" / "nginx.conf"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"

LONG_RUNNING_SERVICES = ("postgres", "redis", "minio", "web", "worker", "live", "nginx")
WEB_DEPENDS_ON = {
    "postgres": "service_healthy",
    "redis": "service_healthy",
    "minio": "service_healthy",
    "minio-init": "service_completed_successfully",
}
# Variables the web service may set although the settings never read them, each with its reader.
READ_BY_GUNICORN = {
    "WEB_CONCURRENCY",  # gunicorn's default for --workers
}
# Values that must come from the environment or .env: compose interpolation with no default.
SECRETS_FROM_THE_ENVIRONMENT = {
    ("web", "SECRET_KEY"),
    ("web", "AWS_SECRET_ACCESS_KEY"),
    ("minio", "MINIO_ROOT_PASSWORD"),
    ("minio-init", "MINIO_ROOT_PASSWORD"),
    ("postgres", "POSTGRES_PASSWORD"),
}

# $$ (a literal $), ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $NAME
INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)"
)

PRINT_LOADED_SETTINGS = """
import json
import django
from django.conf import settings
from registry.env import VARIABLES_READ
django.setup()
print(json.dumps({
    "VARIABLES_READ": sorted(VARIABLES_READ),
    "DEBUG": settings.DEBUG,
    "DB_ENGINE": settings.DATABASES["default"]["ENGINE"],
    "CACHE": settings.CACHES["default"]["BACKEND"],
    "STORAGE": settings.STORAGES["default"]["BACKEND"],
    "STATICFILES": settings.STORAGES["staticfiles"]["BACKEND"],
    "SECURE_SSL_REDIRECT": settings.SECURE_SSL_REDIRECT,
    "SESSION_COOKIE_SECURE": settings.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": settings.CSRF_COOKIE_SECURE,
    "SECURE_HSTS_SECONDS": settings.SECURE_HSTS_SECONDS,
    "MAX_UPLOAD_BYTES": settings.MAX_UPLOAD_BYTES,
    "NUM_PROXIES": settings.REST_FRAMEWORK["NUM_PROXIES"],
}))
"""


# --- helpers --------------------------------------------------------------------------------
def interpolate(value: str, placeholders: dict[str, str]) -> str:
    """What compose makes of a value: defaults where given, else one placeholder per variable."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        if match.group("op") in (":-", "-"):
            return match.group("arg")
        # A long, URL-safe stand-in (token_urlsafe(45) is 60 characters) for a required value.
        return placeholders.setdefault(name, secrets.token_urlsafe(45))

    return INTERPOLATION.sub(replace, value)


def environment_of(service: dict) -> dict[str, str]:
    """A service's environment as a mapping, from either of compose's two forms."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append((keyword.upper(), " ".join(arguments.split())))
    return instructions


def exec_form(instruction: str) -> list[str]:
    arguments = [args for keyword, args in dockerfile_instructions() if keyword == instruction]
    assert arguments, f"the Dockerfile has no {instruction}"
    parsed = json.loads(arguments[-1])  # the last one wins; exec (JSON) form so signals reach gunicorn
    assert isinstance(parsed, list)
    return parsed


NGINX_TOKEN = re.compile(r"[{};]|[^\s{};]+")
NGINX_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
NGINX_TIME_UNITS = {"ms": 0.001, "": 1, "s": 1, "m": 60, "h": 3600}


def nginx_directives(text: str) -> list[tuple[tuple[str, ...], str, list[str]]]:
    """(enclosing blocks, name, arguments) of each simple directive, e.g.
    (("server", "location /"), "proxy_pass", ["http://registry_web"]). The shipped file has no quoted
    strings, so comments end a line and tokens split on whitespace, braces and semicolons."""
    blocks: list[str] = []
    words: list[str] = []
    directives = []
    for token in NGINX_TOKEN.findall(re.sub(r"#[^\n]*", "", text)):
        if token == ";":
            directives.append((tuple(blocks), words[0], words[1:]))
            words = []
        elif token == "{":
            blocks.append(" ".join(words))
            words = []
        elif token == "}":
            blocks.pop()
        else:
            words.append(token)
    assert not blocks and not words, "unbalanced braces or a directive without its semicolon"
    return directives


def nginx_value(directives, name: str, *, within: tuple[str, ...] | None = None) -> list[str]:
    """The arguments of the one directive ``name`` (in the block path ``within``, if given)."""
    found = [args for blocks, key, args in directives if key == name and (within is None or blocks == within)]
    assert len(found) == 1, f"docker/nginx.conf sets {name} {len(found)} times, expected once"
    return found[0]


def nginx_bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", size.lower()).groups()
    return int(number) * NGINX_SIZE_UNITS[unit]


def nginx_seconds(duration: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|)", duration).groups()
    return int(number) * NGINX_TIME_UNITS[unit]


def published_ports(service: dict) -> list[str]:
    return [str(port) for port in service.get("ports", [])]


@pytest.fixture(scope="module")
def nginx_conf() -> list[tuple[tuple[str, ...], str, list[str]]]:
    return nginx_directives(NGINX_CONF.read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def web_environment(services) -> dict[str, str]:
    return environment_of(services["web"])


@pytest.fixture(scope="module")
def settings_under_compose(web_environment) -> dict:
    """Import the settings in a fresh interpreter with the web service's environment and no other
    configuration variable (from this run's environment) leaking in."""
    placeholders: dict[str, str] = {}
    compose_environment = {key: interpolate(value, placeholders) for key, value in web_environment.items()}
    leaking = set(web_environment) | env.VARIABLES_READ
    environment = {key: value for key, value in os.environ.items() if key not in leaking}
    environment.update(compose_environment, DJANGO_SETTINGS_MODULE="registry.settings")
    result = subprocess.run(
        [sys.executable, "-c", PRINT_LOADED_SETTINGS],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"the settings do not load with the compose environment:\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- the compose file -----------------------------------------------------------------------
def test_compose_file_is_valid_against_the_compose_spec():
    check_jsonschema = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(check_jsonschema), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_follows_the_compose_spec_without_the_obsolete_version_key(compose):
    assert "version" not in compose


def test_stack_runs_postgres_redis_minio_its_bucket_init_the_web_app_its_worker_live_and_nginx(services):
    assert set(services) == {"postgres", "redis", "minio", "minio-init", "web", "worker", "live", "nginx"}
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert services["minio"]["image"].split(":")[0] == "minio/minio"
    assert services["minio-init"]["image"].split(":")[0] == "minio/mc"
    assert re.fullmatch(r"nginx:1\.\d+", services["nginx"]["image"])  # the official image, a pinned minor
    build = services["web"]["build"]
    assert (build if isinstance(build, str) else build.get("context", ".")) == "."


def test_the_worker_runs_celery_with_the_web_apps_environment_and_a_health_check(services, web_environment):
    worker = services["worker"]
    assert worker["command"][:4] == ["celery", "-A", "registry", "worker"]
    assert environment_of(worker) == web_environment  # the same broker, database and storage
    assert "inspect ping" in " ".join(worker["healthcheck"]["test"])
    assert "ports" not in worker


def test_live_serves_the_asgi_application_with_daphne_and_the_web_apps_environment(services, web_environment):
    live = services["live"]
    command = live["command"]
    assert command[0] == "daphne"
    assert command[-1] == "registry.asgi:application"
    assert "--proxy-headers" in command  # the client's address from nginx's X-Forwarded-For
    assert environment_of(live) == web_environment  # the same Redis (channel layer), database, secret
    assert "ports" not in live  # reached through nginx only
    port = command[command.index("--port") + 1]
    assert [str(p) for p in live["expose"]] == [port]
    assert f"localhost:{port}/health" in " ".join(live["healthcheck"]["test"])
    # web's start applies the migrations; live starts on a database that has them.
    assert live["depends_on"] == {"web": {"condition": "service_healthy"}}


def test_nginx_hands_websockets_under_ws_to_live_and_keeps_everything_else_on_gunicorn(services, nginx_conf):
    within = ("server", "location /ws/")
    port = services["live"]["command"][services["live"]["command"].index("--port") + 1]
    assert nginx_value(nginx_conf, "set", within=within) == ["$registry_live", f"live:{port}"]
    assert nginx_value(nginx_conf, "proxy_pass", within=within) == ["http://$registry_live"]
    # Looked up per connection, so nginx starts (and serves pages) without the live service.
    assert nginx_value(nginx_conf, "resolver", within=within)[0] == "127.0.0.11"
    assert nginx_value(nginx_conf, "proxy_http_version", within=within) == ["1.1"]
    headers = {
        args[0].lower(): args[1] for blocks, name, args in nginx_conf if name == "proxy_set_header" and blocks == within
    }
    assert headers["upgrade"] == "$http_upgrade"
    assert headers["connection"] == "$connection_upgrade"
    assert headers["host"] == "$http_host"  # the Origin check compares the page's host with ALLOWED_HOSTS
    upgrade_map = {
        name: args for blocks, name, args in nginx_conf if blocks == ("map $http_upgrade $connection_upgrade",)
    }
    assert upgrade_map == {"default": ["upgrade"], "''": ["close"]}
    # Longer than the pages' ping interval (static/js/live.js), so an open socket is not cut.
    (timeout,) = nginx_value(nginx_conf, "proxy_read_timeout", within=within)
    assert nginx_seconds(timeout) > 25
    assert nginx_value(nginx_conf, "proxy_pass", within=("server", "location /")) == ["http://registry_web"]


def test_only_nginx_serves_the_app_to_the_host(services):
    # gunicorn's sync workers must not face clients: the web service publishes nothing, nginx 8000.
    assert "ports" not in services["web"]
    assert [str(port) for port in services["web"]["expose"]] == ["8000"]
    assert published_ports(services["nginx"]) == ["8000:8000"]


def test_nginx_starts_after_a_healthy_web_service_with_the_shipped_site_config(compose, services):
    nginx = services["nginx"]
    assert nginx["depends_on"] == {"web": {"condition": "service_healthy", "restart": True}}
    # The official image includes conf.d/*.conf inside its http block; this file replaces its
    # default server (the welcome page).
    assert nginx["configs"] == [{"source": "nginx-site", "target": "/etc/nginx/conf.d/default.conf"}]
    assert (PROJECT_ROOT / compose["configs"]["nginx-site"]["file"]).resolve() == NGINX_CONF


def test_nginx_healthcheck_asks_the_app_health_endpoint_through_the_proxy(services, web_environment, nginx_conf):
    test = " ".join(services["nginx"]["healthcheck"]["test"])
    match = re.search(r"https?://([^:/'\"]+):(\d+)/health\b", test)
    assert match, test
    assert match.group(1) in [host.strip() for host in web_environment["ALLOWED_HOSTS"].split(",")]
    assert nginx_value(nginx_conf, "listen", within=("server",)) == [match.group(2)]
    assert test.startswith("CMD curl -f")  # the nginx image ships curl; -f fails on a non-2xx


def test_nginx_proxies_to_the_port_gunicorn_binds_and_listens_on_the_published_one(services, nginx_conf):
    bind = exec_form("CMD")[exec_form("CMD").index("--bind") + 1]
    assert nginx_value(nginx_conf, "server", within=("upstream registry_web",)) == [f"web:{bind.rsplit(':', 1)[1]}"]
    assert nginx_value(nginx_conf, "proxy_pass", within=("server", "location /")) == ["http://registry_web"]
    container_port = published_ports(services["nginx"])[0].rsplit(":", 1)[1]
    assert nginx_value(nginx_conf, "listen", within=("server",)) == [container_port]


def test_nginx_buffers_whole_requests_and_times_out_slow_clients(nginx_conf):
    # Buffered bodies are what keeps a slow client off a sync worker (nginx's default, kept explicit).
    assert nginx_value(nginx_conf, "proxy_request_buffering", within=("server", "location /")) == ["on"]
    assert nginx_value(nginx_conf, "proxy_buffering", within=("server", "location /")) == ["on"]
    # Short enough that idle connections do not pile up in nginx, long enough for a slow link.
    for name in ("client_header_timeout", "client_body_timeout"):
        (value,) = nginx_value(nginx_conf, name, within=())
        assert 5 <= nginx_seconds(value) <= 30, f"{name} {value}"


def test_nginx_waits_for_the_app_as_long_as_gunicorn_lets_a_worker_run(nginx_conf):
    # An upload is answered only after the app has streamed it to S3: up to gunicorn's --timeout.
    command = exec_form("CMD")
    gunicorn_timeout = int(command[command.index("--timeout") + 1])
    (value,) = nginx_value(nginx_conf, "proxy_read_timeout", within=("server", "location /"))
    assert nginx_seconds(value) >= gunicorn_timeout


def test_nginx_refuses_exactly_the_bodies_the_app_would_refuse_as_too_large(nginx_conf, settings_under_compose):
    from registry.middleware import MULTIPART_OVERHEAD_BYTES

    (value,) = nginx_value(nginx_conf, "client_max_body_size", within=())
    assert nginx_bytes(value) == settings_under_compose["MAX_UPLOAD_BYTES"] + MULTIPART_OVERHEAD_BYTES


def test_app_trusts_the_one_forwarded_address_nginx_appends(nginx_conf, web_environment, settings_under_compose):
    headers = {
        args[0].lower(): args[1]
        for blocks, name, args in nginx_conf
        if name == "proxy_set_header" and blocks == ("server", "location /")
    }
    # nginx appends the peer's address to X-Forwarded-For; the app takes the last NUM_PROXIES-th entry.
    assert headers["x-forwarded-for"] == "$proxy_add_x_forwarded_for"
    assert web_environment["NUM_PROXIES"] == "1"
    assert settings_under_compose["NUM_PROXIES"] == 1
    # The Host as the client sent it (port included: ALLOWED_HOSTS, CSRF origins and the URLs the app
    # builds see localhost:8000), and the scheme nginx served, replacing whatever the client sent.
    assert headers["host"] == "$http_host"
    assert headers["x-forwarded-proto"] == "$scheme"


def test_csrf_trusted_origins_are_the_address_nginx_publishes(services, web_environment):
    host_port = published_ports(services["nginx"])[0].split(":")[0]
    for origin in web_environment["CSRF_TRUSTED_ORIGINS"].split(","):
        assert origin.strip().endswith(f":{host_port}"), origin


@pytest.mark.parametrize("name", LONG_RUNNING_SERVICES)
def test_every_long_running_service_has_a_healthcheck(services, name):
    healthcheck = services[name].get("healthcheck") or {}
    test = healthcheck.get("test")
    assert test, f"{name} has no healthcheck"
    assert not healthcheck.get("disable")
    assert (test[0] if isinstance(test, list) else test) != "NONE"


def test_bucket_init_runs_once_after_minio_is_healthy(services):
    init = services["minio-init"]
    assert init["depends_on"] == {"minio": {"condition": "service_healthy"}}
    assert init["restart"] == "no"
    assert "healthcheck" not in init


def test_web_starts_after_healthy_services_and_a_completed_bucket_init(services):
    depends_on = services["web"]["depends_on"]
    assert {name: condition["condition"] for name, condition in depends_on.items()} == WEB_DEPENDS_ON


def test_web_healthcheck_asks_the_health_endpoint_on_an_allowed_host(services, web_environment):
    test = " ".join(services["web"]["healthcheck"]["test"])
    match = re.search(r"https?://([^:/'\"]+):8000/health\b", test)
    assert match, test
    allowed_hosts = [host.strip() for host in web_environment["ALLOWED_HOSTS"].split(",")]
    assert match.group(1) in allowed_hosts
    assert "curl" not in test and "wget" not in test  # python:3.11-slim has neither


def test_data_lives_in_named_volumes(compose, services):
    declared = set(compose.get("volumes") or {})
    for name in ("postgres", "redis", "minio"):
        assert services[name].get("volumes"), f"{name} keeps its data in no volume"
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
            assert source in declared, f"{name} mounts {source!r}, which is not a named volume"


def test_bucket_created_by_minio_init_is_the_one_the_web_app_uses(services, web_environment):
    command = services["minio-init"]["command"]
    script = command if isinstance(command, str) else " ".join(command)
    bucket = web_environment["AWS_STORAGE_BUCKET_NAME"]
    assert re.search(rf"mc mb\b.*\blocal/{re.escape(bucket)}\b", script)
    assert "http://minio:9000" in script
    assert web_environment["AWS_S3_ENDPOINT_URL"] == "http://minio:9000"


def test_compose_file_commits_no_secrets(services):
    for service, variable in SECRETS_FROM_THE_ENVIRONMENT:
        value = environment_of(services[service])[variable]
        assert re.fullmatch(r"\$\{[A-Z_]+\?[^}]*\}|\$\{[A-Z_]+:\?[^}]*\}", value), (
            f"{service} sets {variable} to {value!r}: a secret must be required from the environment"
        )


def test_web_service_sets_only_variables_the_settings_read(web_environment, settings_under_compose):
    read = set(settings_under_compose["VARIABLES_READ"])
    unread = set(web_environment) - read - READ_BY_GUNICORN
    assert not unread, f"the web service sets variables nothing reads: {sorted(unread)}"
    assert not READ_BY_GUNICORN & read, "a variable read by the settings is allowlisted as gunicorn's"


def test_settings_load_in_production_mode_with_the_compose_environment(settings_under_compose):
    loaded = settings_under_compose
    assert loaded["DEBUG"] is False
    assert loaded["DB_ENGINE"] == "django.db.backends.postgresql"
    assert loaded["CACHE"] == "django_redis.cache.RedisCache"
    assert loaded["STORAGE"] == "storages.backends.s3.S3Storage"
    assert loaded["STATICFILES"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    # Compose serves plain HTTP on localhost: the HTTPS-only protections are off there.
    assert loaded["SECURE_SSL_REDIRECT"] is False
    assert loaded["SESSION_COOKIE_SECURE"] is False
    assert loaded["CSRF_COOKIE_SECURE"] is False
    assert loaded["SECURE_HSTS_SECONDS"] == 0


# --- the image ------------------------------------------------------------------------------
def test_image_builds_from_python_slim_with_runtime_requirements_only():
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    installs = [args for keyword, args in instructions if keyword == "RUN" and "pip install" in args]
    assert installs and all("-r requirements.txt" in args for args in installs)
    assert not any("requirements-dev" in args or "requirements-ci" in args for args in installs)
    assert ("EXPOSE", "8000") in instructions


def test_image_runs_as_a_non_root_user():
    users = [args for keyword, args in dockerfile_instructions() if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_image_collects_static_files_at_build_time_without_baking_in_a_secret():
    instructions = dockerfile_instructions()
    runs = [index for index, (keyword, args) in enumerate(instructions) if keyword == "RUN" and "collectstatic" in args]
    assert runs, "no RUN collects the static files"
    collect = instructions[runs[0]][1]
    assert "--noinput" in collect
    assert "DEBUG=0" in collect  # the manifest storage only runs with DEBUG off
    assert "SECRET_KEY=" in collect  # inline, for that one command
    copies = [index for index, (keyword, args) in enumerate(instructions) if keyword == "COPY" and args == ". ."]
    assert copies and copies[0] < runs[0], "collectstatic runs before the project is copied in"
    for keyword, args in instructions:
        if keyword in ("ENV", "ARG"):
            assert "SECRET_KEY" not in args, f"{keyword} {args} would leave a secret in the image"


def test_image_starts_gunicorn_on_the_wsgi_application_through_the_entrypoint():
    command = exec_form("CMD")
    assert command[0] == "gunicorn"
    assert "registry.wsgi:application" in command
    assert "0.0.0.0:8000" in " ".join(command)
    assert "--workers" not in command  # gunicorn takes the worker count from WEB_CONCURRENCY
    assert exec_form("ENTRYPOINT") == ["/app/docker/entrypoint.sh"]
    assert ("WORKDIR", "/app") in dockerfile_instructions()
    assert ENTRYPOINT.stat().st_mode & stat.S_IXUSR


@pytest.fixture
def fake_python(tmp_path):
    """A `python` on PATH that logs its arguments and exits with the status in FAKE_PYTHON_STATUS."""
    log = tmp_path / "python-calls.log"
    script = tmp_path / "bin" / "python"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexit "${{FAKE_PYTHON_STATUS:-0}}"\n')
    script.chmod(0o755)
    environment = {**os.environ, "PATH": f"{script.parent}{os.pathsep}{os.environ['PATH']}"}
    return environment, log


def test_entrypoint_migrates_the_database_then_runs_the_command(fake_python):
    environment, log = fake_python
    result = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), "/bin/sh", "-c", "echo command started"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == ["manage.py migrate --noinput"]
    assert result.stdout.strip() == "command started"


def test_entrypoint_does_not_start_the_server_when_migrations_fail(fake_python):
    environment, log = fake_python
    result = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), "/bin/sh", "-c", "echo command started"],
        env={**environment, "FAKE_PYTHON_STATUS": "1"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "command started" not in result.stdout
    assert log.read_text().splitlines() == ["manage.py migrate --noinput"]


def test_build_context_leaves_out_local_state_and_secrets():
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip()}
    for entry in (".venv", ".git", ".env", "media", "db.sqlite3*", ".test-db.sqlite3*", "staticfiles"):
        assert entry in ignored, f".dockerignore lets {entry} into the image"
    for entry in ("__pycache__", ".pytest_cache", ".ruff_cache", "test-artifacts"):
        assert entry in ignored or f"**/{entry}" in ignored, f".dockerignore lets {entry} into the image"
