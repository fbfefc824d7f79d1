"""The container stack: docker-compose.yml, the Dockerfile and its entrypoint.

There is no Docker engine where these tests run, so they check what can be checked without one: the
compose file against the compose specification, the wiring between the services, that the settings
load with exactly the environment compose gives the web service (and read every variable it sets),
and what the image does at build time and at start.
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
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"

LONG_RUNNING_SERVICES = ("postgres", "redis", "minio", "web")
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


def test_stack_runs_postgres_redis_minio_its_bucket_init_and_the_web_app(services):
    assert set(services) == {"postgres", "redis", "minio", "minio-init", "web"}
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert services["minio"]["image"].split(":")[0] == "minio/minio"
    assert services["minio-init"]["image"].split(":")[0] == "minio/mc"
    build = services["web"]["build"]
    assert (build if isinstance(build, str) else build.get("context", ".")) == "."
    assert "8000:8000" in [str(port) for port in services["web"]["ports"]]


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
