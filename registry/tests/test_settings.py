"""Settings come from the environment; bad values stop the process with a message naming them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.hashers import check_password, get_hasher, make_password
from django.core.exceptions import ImproperlyConfigured

from registry import env

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_VARIABLES = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "MEDIA_ROOT",
    "AWS_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_STORAGE_BUCKET_NAME",
    "BCRYPT_ROUNDS",
    "MAX_UPLOAD_BYTES",
    "REGISTRATION_OPEN",
    "LOG_LEVEL",
    "THROTTLE_RATE_AUTH",
    "PRESIGNED_URL_SECONDS",
    "OIDC_SERVER_URL",
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "OIDC_PROVIDER_NAME",
    "OIDC_GROUPS_CLAIM",
    "OIDC_APPROVER_GROUPS",
    "OIDC_ADMIN_GROUPS",
    "SSO_ONLY",
)
LONG_SECRET = "s" * 64

PRINT_SETTINGS = """
import json
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "ENGINE": db["ENGINE"],
    "DB_NAME": str(db["NAME"]),
    "CONN_HEALTH_CHECKS": db.get("CONN_HEALTH_CHECKS", False),
    "CACHE": settings.CACHES["default"]["BACKEND"],
    "STORAGE": settings.STORAGES["default"]["BACKEND"],
    "BUCKET": settings.STORAGES["default"].get("OPTIONS", {}).get("bucket_name"),
    "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    "BCRYPT_ROUNDS": settings.BCRYPT_ROUNDS,
    "MAX_UPLOAD_BYTES": settings.MAX_UPLOAD_BYTES,
    "REGISTRATION_OPEN": settings.REGISTRATION_OPEN,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
    "SESSION_ENGINE": settings.SESSION_ENGINE,
    "SSO_APPS": settings.SOCIALACCOUNT_PROVIDERS["openid_connect"]["APPS"],
    "SSO_ROLES": [settings.OIDC_GROUPS_CLAIM, settings.OIDC_APPROVER_GROUPS, settings.OIDC_ADMIN_GROUPS],
    "SSO_ONLY": settings.SSO_ONLY,
}))
"""


def load_settings(**variables: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with only the given configuration variables."""
    environment = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    environment.update(variables, DJANGO_SETTINGS_MODULE="registry.settings")
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def loaded(**variables: str) -> dict:
    result = load_settings(**variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_embedded_defaults_need_no_environment():
    values = loaded()

    assert values["DEBUG"] is True
    assert values["ENGINE"] == "django.db.backends.sqlite3"
    assert values["DB_NAME"] == str(PROJECT_ROOT / "db.sqlite3")
    assert values["CACHE"] == "django.core.cache.backends.locmem.LocMemCache"
    assert values["STORAGE"] == "django.core.files.storage.FileSystemStorage"
    assert values["MEDIA_ROOT"] == str(PROJECT_ROOT / "media")
    assert values["BCRYPT_ROUNDS"] == 12
    assert values["MAX_UPLOAD_BYTES"] == 5 * 1024**3
    assert values["REGISTRATION_OPEN"] is True
    assert values["SESSION_ENGINE"] == "django.contrib.sessions.backends.cached_db"


def test_real_services_are_used_when_their_variables_are_set(tmp_path):
    values = loaded(
        DATABASE_URL="postgres://registry:pw@db.internal:5432/registry",
        REDIS_URL="redis://cache.internal:6379/0",
        AWS_S3_ENDPOINT_URL="http://minio:9000",
        AWS_ACCESS_KEY_ID="key",
        AWS_SECRET_ACCESS_KEY="secret",
        AWS_STORAGE_BUCKET_NAME="team-models",
        MEDIA_ROOT=str(tmp_path),
        BCRYPT_ROUNDS="10",
        MAX_UPLOAD_BYTES="1048576",
        REGISTRATION_OPEN="false",
    )

    assert values["ENGINE"] == "django.db.backends.postgresql"
    assert values["DB_NAME"] == "registry"
    assert values["CONN_HEALTH_CHECKS"] is True
    assert values["CACHE"] == "django_redis.cache.RedisCache"
    assert values["STORAGE"] == "storages.backends.s3.S3Storage"
    assert values["BUCKET"] == "team-models"
    assert values["MEDIA_ROOT"] == str(tmp_path)
    assert (values["BCRYPT_ROUNDS"], values["MAX_UPLOAD_BYTES"], values["REGISTRATION_OPEN"]) == (10, 1048576, False)


def test_single_sign_on_is_off_without_its_variables_and_configured_by_them():
    assert loaded()["SSO_APPS"] == []

    values = loaded(
        OIDC_SERVER_URL="https://login.example.com/realms/ml",
        OIDC_CLIENT_ID="registry",
        OIDC_CLIENT_SECRET="s3cret",
        OIDC_PROVIDER_NAME="Example SSO",
        OIDC_GROUPS_CLAIM="roles",
        OIDC_APPROVER_GROUPS="ml-approvers, ml-leads",
        OIDC_ADMIN_GROUPS="ml-admins",
        SSO_ONLY="1",
    )

    [app] = values["SSO_APPS"]
    assert (app["provider_id"], app["name"], app["client_id"], app["secret"]) == (
        "sso",
        "Example SSO",
        "registry",
        "s3cret",
    )
    assert app["settings"] == {"server_url": "https://login.example.com/realms/ml"}
    assert values["SSO_ROLES"] == ["roles", ["ml-approvers", "ml-leads"], ["ml-admins"]]
    assert values["SSO_ONLY"] is True


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"OIDC_SERVER_URL": "https://login.example.com"}, "OIDC_CLIENT_ID must be set: OIDC_SERVER_URL is set"),
        ({"SSO_ONLY": "1"}, "SSO_ONLY=1 needs OIDC_SERVER_URL"),
        ({"OIDC_SERVER_URL": "login.example.com"}, "OIDC_SERVER_URL must be a URL starting with one of http://"),
    ],
)
def test_incomplete_single_sign_on_settings_stop_start_up(variables, message):
    result = load_settings(**variables)

    assert result.returncode != 0
    assert message in result.stderr


def test_production_requires_a_secret_key():
    result = load_settings(DEBUG="0", ALLOWED_HOSTS="registry.example.com")

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_starts_with_a_secret_key_and_no_default_hosts():
    values = loaded(DEBUG="false", SECRET_KEY=LONG_SECRET)

    assert values["DEBUG"] is False
    assert values["ALLOWED_HOSTS"] == []


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("REGISTRATION_OPEN", "sometimes", "REGISTRATION_OPEN='sometimes' is not a boolean"),
        ("BCRYPT_ROUNDS", "twelve", "BCRYPT_ROUNDS='twelve' is not a whole number"),
        ("BCRYPT_ROUNDS", "2", "BCRYPT_ROUNDS=2 is below the minimum of 4"),
        ("MAX_UPLOAD_BYTES", "0", "MAX_UPLOAD_BYTES=0 is below the minimum of 1"),
        ("DATABASE_URL", "mysql://db/registry", "DATABASE_URL must be a URL starting with one of postgres://"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must be a URL starting with one of redis://"),
        ("THROTTLE_RATE_AUTH", "lots", "THROTTLE_RATE_AUTH='lots' is not a rate like 20/minute"),
        ("PRESIGNED_URL_SECONDS", "0", "PRESIGNED_URL_SECONDS=0 is below the minimum of 1"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL='LOUD' is not one of DEBUG, INFO"),
        ("AWS_S3_ENDPOINT_URL", "minio:9000", "AWS_S3_ENDPOINT_URL must be a URL starting with one of http://"),
    ],
)
def test_bad_values_stop_start_up_with_a_message_naming_the_variable(variable, value, message):
    result = load_settings(**{variable: value})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_env_readers_record_every_variable_they_read(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "yes")

    assert env.env_bool("SOME_FLAG", False) is True
    assert env.env_int("SOME_UNSET_NUMBER", 3) == 3
    assert {"SOME_FLAG", "SOME_UNSET_NUMBER"} <= env.VARIABLES_READ


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch):
    monkeypatch.setenv("HOSTS", " a.example.com, ,b.example.com ")

    assert env.env_list("HOSTS") == ["a.example.com", "b.example.com"]


def test_env_int_accepts_underscores_and_rejects_values_above_the_maximum(monkeypatch):
    monkeypatch.setenv("BIG", "5_000")
    assert env.env_int("BIG", 0) == 5000

    with pytest.raises(ImproperlyConfigured, match="above the maximum of 10"):
        env.env_int("BIG", 0, maximum=10)


def test_passwords_hash_with_bcrypt_at_the_configured_rounds(settings):
    settings.BCRYPT_ROUNDS = 5

    encoded = make_password("correct horse battery staple")

    assert encoded.startswith("bcrypt_sha256$$2b$05$")
    assert check_password("correct horse battery staple", encoded)


def test_production_default_is_twelve_bcrypt_rounds_and_a_change_rehashes_at_next_login(settings):
    assert loaded()["BCRYPT_ROUNDS"] == 12
    settings.BCRYPT_ROUNDS = 4
    encoded = make_password("pw-for-rounds-test")
    settings.BCRYPT_ROUNDS = 5

    assert get_hasher("bcrypt_sha256").must_update(encoded)
