import os

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.tests.factories import UserFactory

# What each service marker needs, and how to tell it is really there.
SERVICE_PRESENT = {
    "postgres": lambda: connection.vendor == "postgresql",
    "redis": lambda: bool(django_settings.REDIS_URL),
    "s3": lambda: django_settings.USE_S3,
}


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test whose service is absent; with REQUIRE_SERVICES=1 (CI) that is a failure."""
    for marker, present in SERVICE_PRESENT.items():
        if item.get_closest_marker(marker) and not present():
            message = f"needs {marker}, which this run is not configured for"
            if os.environ.get("REQUIRE_SERVICES") == "1":
                pytest.fail(f"REQUIRE_SERVICES=1 but the test {message}", pytrace=False)
            pytest.skip(message)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # bcrypt at the production 12 rounds costs ~0.25 s a hash; the tests of the hasher set it back.
    settings.BCRYPT_ROUNDS = 4


@pytest.fixture(autouse=True)
def _isolated_media_root(settings, tmp_path):
    """Each test stores local artifact files in its own folder (S3 runs use the bucket)."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Throttle counters and cached values live in the cache; each test starts without them.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_client() -> APIClient:
    """An anonymous API client."""
    return APIClient()


@pytest.fixture
def client_for():
    """``client_for(user)``: an API client sending a real JWT access token of ``user``."""

    def make(user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
        return client

    return make


@pytest.fixture
def user(db):
    return UserFactory(username="owner")


@pytest.fixture
def other_user(db):
    return UserFactory(username="someone-else")


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)
