import importlib.util
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.tests.factories import UserFactory
from registry.events import subscribe, unsubscribe

# What each service marker needs, and how to tell it is really there.
SERVICE_PRESENT = {
    "postgres": lambda: connection.vendor == "postgresql",
    "redis": lambda: bool(django_settings.REDIS_URL),
    "s3": lambda: django_settings.USE_S3,
    # A system binary the tests start themselves; Debian puts it in /usr/sbin, off a non-root PATH.
    "nginx": lambda: shutil.which("nginx") is not None or os.access("/usr/sbin/nginx", os.X_OK),
}


# Browser tests (marked `browser`): Playwright drives Debian's Chromium, never a browser of its own
# (`playwright install` cannot download one here). CHROMIUM_PATH points elsewhere if needed.
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Screenshots the tests save (save_screenshot); test-artifacts/ is gitignored and kept by CI.
SCREENSHOTS_DIR = Path(__file__).resolve().parent / "test-artifacts" / "screenshots"


def browser_missing() -> str | None:
    """What a browser test lacks on this machine, or None when it can run."""
    if importlib.util.find_spec("playwright") is None or importlib.util.find_spec("pytest_playwright") is None:
        return "Playwright (pip install -r requirements-dev.txt)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test whose service is absent; with REQUIRE_SERVICES=1 (CI) that is a failure.

    The same for a browser test without Playwright or Chromium, with REQUIRE_BROWSER=1.
    """
    for marker, present in SERVICE_PRESENT.items():
        if item.get_closest_marker(marker) and not present():
            message = f"needs {marker}, which this run is not configured for"
            if os.environ.get("REQUIRE_SERVICES") == "1":
                pytest.fail(f"REQUIRE_SERVICES=1 but the test {message}", pytrace=False)
            pytest.skip(message)
    if item.get_closest_marker("browser"):
        missing = browser_missing()
        if missing:
            message = f"needs {missing}, which this machine does not have"
            if os.environ.get("REQUIRE_BROWSER") == "1":
                pytest.fail(f"REQUIRE_BROWSER=1 but the browser test {message}", pytrace=False)
            pytest.skip(message)
        # Playwright's sync API keeps its event loop marked as running in this thread from its first
        # use until the session ends, and Django then refuses every ORM call in the tests
        # (SynchronousOnlyOperation). That is why browser tests run last (below), and why this is
        # never unset again: only browser tests and the session teardown come after it.
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last (the sort is stable, so pytest-django's order holds within each group)."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # bcrypt at the production 12 rounds is slow by design; the tests of the hasher set it back.
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
def captured_events(django_capture_on_commit_callbacks):
    """``with captured_events() as events:`` the domain events published inside, delivered (to every
    subscriber) as if the test's transaction committed at the end of the block; ``captured_events(
    "model.created", ...)`` keeps only those types. A change rolled back inside the block (a savepoint
    of the test's transaction) delivers nothing, as a real rollback would."""

    @contextmanager
    def capture(*types: str):
        events: list = []

        def collect(event) -> None:
            events.append(event)

        subscribe(collect, types=types or None)
        try:
            with django_capture_on_commit_callbacks(execute=True):
                yield events
        finally:
            unsubscribe(collect)

    return capture


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
def owner_api(client_for, user) -> APIClient:
    """An API client with a JWT access token of ``user``."""
    return client_for(user)


@pytest.fixture
def other_api(client_for, other_user) -> APIClient:
    """An API client with a JWT access token of ``other_user``."""
    return client_for(other_user)


@pytest.fixture
def owner_client(user) -> Client:
    """A browser-like test client signed in (session) as ``user``."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def other_client(other_user) -> Client:
    """A browser-like test client signed in (session) as ``other_user``."""
    client = Client()
    client.force_login(other_user)
    return client


@pytest.fixture
def superuser_client(superuser) -> Client:
    """A browser-like test client signed in (session) as ``superuser``: the admin's pages."""
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def user(db):
    return UserFactory(username="owner")


@pytest.fixture
def other_user(db):
    return UserFactory(username="someone-else")


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)


# --- Browser tests (pytest-playwright's `page`, `context` and `browser` fixtures) ----------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Launch Debian's Chromium (see browser_missing) with the flags it needs in a container."""
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [*browser_type_launch_args.get("args", []), *CHROMIUM_ARGS],
    }


@pytest.fixture(scope="session")
def base_url(live_server) -> str:
    """Relative URLs in page.goto() and friends go to pytest-django's live server."""
    return live_server.url


@pytest.fixture(autouse=True)
def _browser_test_static_files(request):
    """Browser tests get plain static file names, which the live server serves from the finders.

    With DEBUG unset that is the setting already; this keeps it so when a run turns DEBUG off
    (the manifest storage has no hashed names before collectstatic).
    """
    if request.node.get_closest_marker("browser"):
        settings = request.getfixturevalue("settings")
        settings.STORAGES = {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }


@pytest.fixture(autouse=True)
def _no_live_socket_on_the_wsgi_live_server(request):
    """pytest-django's live server speaks WSGI only: the pages it serves open no WebSocket (live.js
    would only log its refused handshake as a console error). The live updates' own browser tests
    serve the pages with daphne instead (live/tests/conftest.py: asgi_live_server)."""
    if request.node.get_closest_marker("browser") and "asgi_live_server" not in request.fixturenames:
        request.getfixturevalue("settings").LIVE_UPDATES = False


@pytest.fixture
def live_url(live_server) -> str:
    """The live server's root URL, e.g. http://localhost:41234 (no trailing slash)."""
    return live_server.url


@pytest.fixture
def browser_login(live_server):
    """``browser_login(page, user)``: ``page`` (its browser context) is logged in as ``user``.

    A session is made on the server (Client.force_login) and its cookie put into the browser, so
    it does not depend on the login page. Returns the page, not yet navigated anywhere new.
    """

    def log_in(page, user):
        client = Client()
        client.force_login(user)
        cookie_name = django_settings.SESSION_COOKIE_NAME
        page.context.add_cookies(
            [
                {
                    "name": cookie_name,
                    "value": client.cookies[cookie_name].value,
                    "url": live_server.url,
                    "httpOnly": django_settings.SESSION_COOKIE_HTTPONLY,
                    "sameSite": django_settings.SESSION_COOKIE_SAMESITE or "None",
                }
            ]
        )
        return page

    return log_in


@pytest.fixture
def logged_in_page(page, live_server, user, browser_login):
    """A page whose browser is logged in as ``user`` (override ``user`` in a test module to change who)."""
    return browser_login(page, user)


class ConsoleErrors:
    """The JavaScript errors of the pages it watches: console.error messages and uncaught exceptions.

    Chromium also logs a failed subresource load (a 404 stylesheet, script or image) as a console
    error, so this catches broken static files as well. Not the browser's own guess at /favicon.ico
    (which it asks for once, on whichever page it shows first, when a page links no icon).
    """

    def __init__(self) -> None:
        self.messages: list[str] = []

    def watch(self, page):
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)
        return page

    def _on_console(self, message) -> None:
        if message.type == "error":
            url = (message.location or {}).get("url") or "?"
            if urlsplit(url).path == "/favicon.ico" and message.text.startswith("Failed to load resource"):
                return
            self.messages.append(f"console.error at {url}: {message.text}")

    def _on_page_error(self, error) -> None:
        self.messages.append(f"uncaught {error.name or 'error'}: {error.message}")

    def clear(self) -> None:
        self.messages.clear()

    def assert_none(self) -> None:
        assert not self.messages, "JavaScript errors in the browser:\n" + "\n".join(self.messages)

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self):
        return iter(self.messages)


@pytest.fixture
def console_errors(page) -> ConsoleErrors:
    """Records the JavaScript errors of ``page`` from now on; ``console_errors.assert_none()`` checks.

    ``console_errors.watch(other_page)`` adds another page (e.g. a popup, or a second context).
    """
    errors = ConsoleErrors()
    errors.watch(page)
    return errors


def _screenshot_path(name: str) -> Path:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name.removesuffix(".png")).strip("-.") or "screenshot"
    return SCREENSHOTS_DIR / f"{stem}.png"


@pytest.fixture
def save_screenshot():
    """``save_screenshot(page, name, full_page=True)``: test-artifacts/screenshots/<name>.png; returns the path.

    The same name overwrites the earlier file: give each page and width its own name
    (e.g. "model-detail-375px").
    """

    def save(page, name: str, *, full_page: bool = True) -> Path:
        path = _screenshot_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=path, full_page=full_page)
        return path

    return save
