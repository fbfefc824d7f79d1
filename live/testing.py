"""An ASGI live server for browser tests: daphne in a thread of the test process, serving HTTP and
WebSocket (pytest-django's live_server speaks WSGI only, so its pages cannot open /ws/events/).

In the test process, so a test's settings overrides reach the views as they do with live_server, and
its in-memory channel layer is the one the test's own changes publish to. The views run in daphne's
thread pool on their own database connections: use it in transactional tests (committed rows), on a
database that is a file or a server (the SQLite test database is a file: registry/settings.py).
Twisted's reactor runs once per process: one server for the whole session.
"""

from __future__ import annotations

import threading
import time


class AsgiLiveServer:
    host = "localhost"

    def __init__(self) -> None:
        # Imported here: daphne.server installs Twisted's asyncio reactor when first imported.
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        from registry.asgi import application

        self.server = Server(
            application=ASGIStaticFilesHandler(application),
            endpoints=build_endpoint_description_strings(host="127.0.0.1", port=0),
            signal_handlers=False,
            verbosity=0,
        )
        self.thread = threading.Thread(target=self.server.run, name="asgi-live-server", daemon=True)

    def start(self, timeout: float = 10.0) -> AsgiLiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.listening_addresses:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the ASGI live server did not start listening")
            time.sleep(0.02)
        self.port = self.server.listening_addresses[0][1]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        from twisted.internet import reactor

        reactor.callFromThread(reactor.stop)
        self.thread.join(timeout=10)
