import pytest


@pytest.fixture(scope="session")
def asgi_live_server():
    """daphne serving the project (HTTP and WebSocket) in this process: live/testing.py."""
    from live.testing import AsgiLiveServer

    server = AsgiLiveServer().start()
    yield server
    server.stop()


@pytest.fixture
def asgi_live_url(asgi_live_server, settings, transactional_db) -> str:
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, asgi_live_server.host]
    return asgi_live_server.url
