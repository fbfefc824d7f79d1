"""Live updates across server processes (the services pass: Redis as the channel layer).

Two daphne processes on the test database and the same Redis, as production runs several: a change
made through process A's HTTP API reaches a WebSocket connected to process B. And the publishing side
of a sync process (a gunicorn worker) hands its events over one long-lived connection, not one per event.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection
from rest_framework_simplejwt.tokens import RefreshToken

from live import broadcast
from live.tests.helpers import published, session_cookie
from mlmodels import services
from mlmodels.tests.factories import MLModelFactory

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def database_url() -> str:
    """The test database (not the one DATABASE_URL names), for processes started by the test."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Daphne:
    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "SECRET_KEY": settings.SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "registry.asgi:application"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_until_up(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"daphne exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError("daphne did not answer /health")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def two_servers():
    servers = [Daphne(), Daphne()]
    try:
        for server in servers:
            server.wait_until_up()
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_a_change_through_one_process_reaches_a_socket_on_another(two_servers, user, other_user):
    from websockets.sync.client import connect

    a, b = two_servers
    model = MLModelFactory(owner=other_user)
    token = RefreshToken.for_user(other_user).access_token
    with connect(
        f"ws://127.0.0.1:{b.port}/ws/events/",
        origin=f"http://127.0.0.1:{b.port}",
        additional_headers={"Cookie": session_cookie(user)},
        open_timeout=10,
    ) as socket_on_b:
        response = requests.patch(
            f"{a.url}/api/v1/models/{model.pk}/lifecycle/",
            json={"lifecycle": "staging", "comment": "via A"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        message = json.loads(socket_on_b.recv(timeout=10))

    assert message["type"] == "lifecycle.changed"
    assert message["model"] == {"id": model.pk, "name": model.name}
    assert message["actor"]["username"] == other_user.username
    assert message["data"]["comment"] == "via A"


def test_a_sync_process_sends_every_event_over_one_connection_of_one_thread(user):
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    connections_before = client.info("stats")["total_connections_received"]
    model = MLModelFactory(owner=user)
    with published("tag.set") as events:
        for n in range(30):
            services.tag_set(model=model, actor=user, key="run", value=str(n))
    broadcast.wait_until_sent()

    assert len(events) == 30
    senders = [thread for thread in threading.enumerate() if thread.name == "live-broadcast"]
    assert len(senders) == 1
    # One for the layer's pool (and a spare for its group bookkeeping), not one per event.
    assert client.info("stats")["total_connections_received"] - connections_before <= 3
