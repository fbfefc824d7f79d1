"""What the live tests share: a signed-in socket on the real ASGI application, and the events a
change really published (after its real commit)."""

from __future__ import annotations

from contextlib import contextmanager

from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from registry.asgi import application
from registry.events import subscribe, unsubscribe

ORIGIN = "http://localhost"


def session_cookie(user) -> str:
    """A new session of ``user`` (as a sign-in makes one), as a Cookie header's value."""
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def socket(cookie: str | None = None, *, origin: str | None = ORIGIN) -> WebsocketCommunicator:
    headers = [(b"host", b"localhost")]
    if origin:
        headers.append((b"origin", origin.encode()))
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, "/ws/events/", headers=headers)


@contextmanager
def published(*types: str):
    """``with published() as events:`` the domain events delivered (committed) inside the block."""
    events: list = []

    def collect(event) -> None:
        events.append(event)

    subscribe(collect, types=types or None)
    try:
        yield events
    finally:
        unsubscribe(collect)
