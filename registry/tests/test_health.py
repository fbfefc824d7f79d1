import pytest
from django.contrib.sessions.models import Session
from django.db import OperationalError

from registry import health

pytestmark = pytest.mark.django_db

CLOSED_PORT_URL = "http://127.0.0.1:9"  # the discard port: nothing listens there


def test_health_answers_ok_for_every_dependency(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok", "storage": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_a_probe_of_health_leaves_no_session_or_cookie_behind(client):
    # Load balancers probe every few seconds, without credentials: a session or CSRF cookie per probe
    # would fill the session store and set cookies nobody sends back.
    response = client.get("/health")

    assert response.status_code == 200
    assert not response.cookies
    assert not Session.objects.exists()


def test_health_is_503_when_the_database_fails(client, monkeypatch):
    def broken_cursor():
        raise OperationalError("connection refused")

    monkeypatch.setattr(health.connection, "cursor", broken_cursor)
    response = client.get("/health")

    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "error", "cache": "ok", "storage": "ok"}


def test_health_is_503_when_the_cache_server_is_unreachable(client, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }

    response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["cache"] == "error"
    assert response.json()["database"] == "ok"


def test_health_is_503_when_the_s3_server_is_unreachable(client, settings):
    from botocore.config import Config

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "endpoint_url": CLOSED_PORT_URL,
                "access_key": "key",
                "secret_key": "secret",
                "bucket_name": "ml-models",
                "region_name": "us-east-1",
                "client_config": Config(connect_timeout=1, retries={"max_attempts": 1}),
            },
        },
    }

    response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["storage"] == "error"


def test_health_is_503_when_the_media_root_cannot_hold_files(client, settings, tmp_path):
    if settings.USE_S3:
        pytest.skip("this run stores artifacts in S3, not under MEDIA_ROOT")
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    settings.MEDIA_ROOT = not_a_folder / "media"

    response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["storage"] == "error"


def test_health_refuses_other_methods(client):
    assert client.post("/health").status_code == 405
