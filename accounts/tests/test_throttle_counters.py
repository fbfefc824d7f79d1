"""Per-address limits on the doors that tell whether an account exists, counted where every process sees them.

Registration answers "a user with this email address already exists", so the page and the API are
limited per client address (the "auth" rate). The counters live in the cache alias "throttle": Redis when
REDIS_URL is set, otherwise a database table, never a cache of one process.
"""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.db import connection, connections

from registry.api.throttles import AuthRateThrottle

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REGISTER_PAGE = "/accounts/register/"
REGISTER_API = "/api/v1/auth/register"
STRONG_PASSWORD = "correct horse battery staple 42"

User = get_user_model()


@pytest.fixture
def three_a_minute(monkeypatch):
    monkeypatch.setattr(AuthRateThrottle, "rate", "3/minute", raising=False)


# --- the register page ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_register_page_is_limited_per_client_address(client, user, three_a_minute):
    probe = {"username": "prober", "email": user.email, "password": STRONG_PASSWORD}
    for _ in range(3):
        answer = client.post(REGISTER_PAGE, probe, REMOTE_ADDR="198.51.100.7")
        assert answer.status_code == 200
        assert "email" in answer.context["form"].errors  # the email is taken: what a prober wants to learn

    response = client.post(
        REGISTER_PAGE, {**probe, "email": "fresh@example.com", "username": "fresh"}, REMOTE_ADDR="198.51.100.7"
    )

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    page = response.content.decode()
    assert "Too many attempts from your address" in page
    assert "already exists" not in page  # refused before the registration is even looked at
    assert not User.objects.filter(username="fresh").exists()
    # Another address has its own budget.
    other = client.post(
        REGISTER_PAGE, {**probe, "email": "fresh@example.com", "username": "fresh"}, REMOTE_ADDR="203.0.113.9"
    )
    assert other.status_code == 302
    assert User.objects.filter(username="fresh").exists()


@pytest.mark.django_db
def test_showing_the_register_page_costs_nothing(client, three_a_minute):
    for _ in range(5):
        assert client.get(REGISTER_PAGE).status_code == 200

    assert (
        client.post(
            REGISTER_PAGE, {"username": "ada", "email": "ada@example.com", "password": STRONG_PASSWORD}
        ).status_code
        == 302
    )


@pytest.mark.django_db
def test_the_register_page_and_the_api_share_one_budget_per_address(client, api_client, three_a_minute):
    for n in range(3):
        data = {"username": f"bot{n}", "email": f"bot{n}@example.com", "password": STRONG_PASSWORD}
        assert api_client.post(REGISTER_API, data, format="json").status_code == 201

    response = client.post(
        REGISTER_PAGE, {"username": "bot9", "email": "bot9@example.com", "password": STRONG_PASSWORD}
    )

    assert response.status_code == 429
    assert not User.objects.filter(username="bot9").exists()


@pytest.mark.django_db
def test_the_password_change_page_is_limited_per_client_address(client, user, three_a_minute):
    """It checks the old password: a stolen session must not be a way to guess it."""
    from accounts.tests.factories import TEST_PASSWORD

    client.force_login(user)
    new = {"new_password1": "a-brand-new-passphrase-77", "new_password2": "a-brand-new-passphrase-77"}
    for n in range(3):
        assert client.post("/accounts/password/", {"old_password": f"guess-{n}", **new}).status_code == 200

    response = client.post("/accounts/password/", {"old_password": TEST_PASSWORD, **new})

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "Too many attempts from your address" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(TEST_PASSWORD)


# --- where the counters live ------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_redis_the_auth_counters_live_in_a_database_table_every_process_reads(api_client, user):
    if django_settings.REDIS_URL:
        pytest.skip("with REDIS_URL set the counters live in Redis (see the next test)")
    from accounts.models import ThrottleCacheEntry

    api_client.post("/api/v1/auth/login", {"username": "owner", "password": "a guess"}, format="json")

    (entry,) = ThrottleCacheEntry.objects.all()
    key = entry.cache_key.split(":", 2)[2]  # Django's cache key is ":<version>:<key>"
    assert key.startswith("throttle_auth_127.0.0.1:")
    # Another process builds its own cache connection: it reads the very same count.
    another_process_view = caches.create_connection("throttle")
    assert another_process_view is not caches["throttle"]
    assert another_process_view.get(key) == 1
    api_client.post("/api/v1/auth/login", {"username": "owner", "password": "another guess"}, format="json")
    assert another_process_view.get(key) == 2


@pytest.mark.redis
def test_with_redis_the_auth_counters_live_in_redis():
    assert django_settings.CACHES["throttle"]["BACKEND"] == "django_redis.cache.RedisCache"
    assert django_settings.CACHES["throttle"]["LOCATION"] == django_settings.REDIS_URL


@pytest.mark.django_db
def test_the_throttles_count_in_the_throttle_cache_and_the_user_rate_in_the_default_one():
    from registry.api.throttles import UserRateThrottle

    assert AuthRateThrottle.cache._alias == "throttle"
    AuthRateThrottle.cache.set("probe", 1)
    assert caches["throttle"].get("probe") == 1
    if not django_settings.REDIS_URL:  # with Redis both aliases are one store
        assert caches["default"].get("probe") is None
    assert UserRateThrottle.cache._alias == "default"


@pytest.mark.django_db(transaction=True)
def test_concurrent_increments_are_never_lost():
    """Eight server threads counting at once: every request counts, as it would across processes."""
    throttle_cache = caches["throttle"]
    throttle_cache.add("concurrent", 0, timeout=60)
    errors = []

    def count():
        try:
            for _ in range(15):
                caches["throttle"].incr("concurrent")
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert throttle_cache.get("concurrent") == 8 * 15
    throttle_cache.clear()
    connection.close()


@pytest.mark.django_db
def test_an_increment_keeps_the_counters_expiry():
    from accounts.models import ThrottleCacheEntry

    if django_settings.REDIS_URL:
        pytest.skip("Redis keeps a key's TTL on INCR by itself")
    throttle_cache = caches["throttle"]
    throttle_cache.add("window", 1, timeout=86400)
    before = ThrottleCacheEntry.objects.get().expires

    assert throttle_cache.incr("window") == 2

    assert ThrottleCacheEntry.objects.get().expires == before


@pytest.mark.django_db
def test_incrementing_a_missing_or_expired_counter_is_a_value_error():
    throttle_cache = caches["throttle"]
    with pytest.raises(ValueError):
        throttle_cache.incr("never-set")
    throttle_cache.set("expired", 5, timeout=-1)
    with pytest.raises(ValueError):
        throttle_cache.incr("expired")


SHOW_CACHES = """
import json
from django.conf import settings
print(json.dumps({alias: config["BACKEND"] for alias, config in settings.CACHES.items()}))
"""


def caches_with(**variables: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DEBUG", "DATABASE_URL"}}
    environment.update({"DJANGO_SETTINGS_MODULE": "registry.settings", **variables})
    script = "import django; django.setup()\n" + SHOW_CACHES
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_throttle_cache_is_the_database_without_redis_and_redis_with_it():
    assert caches_with()["throttle"] == "accounts.cache.CounterDatabaseCache"
    assert caches_with(REDIS_URL="redis://127.0.0.1:6399/0")["throttle"] == "django_redis.cache.RedisCache"
