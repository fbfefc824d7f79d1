"""Deliveries on real Celery workers through Redis (the services pass): a worker killed in the middle
of a delivery leaves it to another, and the event still arrives, with the same webhook-id."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from standardwebhooks import Webhook as StandardWebhook

from accounts.tests.factories import UserFactory
from mlmodels import services as model_services
from mlmodels.tests.factories import MLModelFactory
from registry.celery import app
from webhooks.models import Delivery
from webhooks.tests.factories import WebhookFactory
from webhooks.tests.receiver import Answer, Receiver

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 3


@pytest.fixture
def worker_environment():
    if app.conf.task_always_eager or not settings.TASK_BROKER_URL:
        pytest.skip("needs a broker (REDIS_URL)")
    if connection.vendor != "postgresql":
        pytest.skip("the worker must share the test's database: PostgreSQL (DATABASE_URL)")
    db = connection.settings_dict
    credentials = f"{quote(db['USER'] or '')}:{quote(db['PASSWORD'] or '')}"
    where = f"{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}"
    database_url = f"postgres://{credentials}@{where}/{quote(db['NAME'])}"
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "TASKS_EAGER": "0",
        "TASK_VISIBILITY_SECONDS": "3",
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
        "WEBHOOK_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        "WEBHOOK_RETRY_BASE_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }


def start_worker(name: str, env: dict) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "registry", "worker", "--pool", "solo", "--hostname", f"{name}@%h"]
    command += ["--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.kill()
    worker.wait(timeout=10)


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_leaves_it_to_another_and_the_same_webhook_id_arrives(
    settings, worker_environment
):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    user = UserFactory(username="hooked-owner")
    model = MLModelFactory(owner=user)
    # The first request hangs: its worker is killed while it waits for the answer.
    with Receiver(Answer(200, delay=60), Answer(200)) as hooked:
        webhook = WebhookFactory(owner=user, url=hooked.url())
        doomed = start_worker("doomed", worker_environment)
        try:
            model_services.lifecycle_move(model=model, actor=user, to_stage="staging")  # commits: autocommit
            hooked.wait_for(1, timeout=60)
            doomed.send_signal(signal.SIGKILL)  # before its own timeout: no chance to record anything
            doomed.wait(timeout=10)
        finally:
            stop(doomed)
        assert Delivery.objects.get(webhook=webhook).status == "pending"
        rescuer = start_worker("rescuer", worker_environment)
        try:
            first, second = hooked.wait_for(2, timeout=90)
            deadline = time.monotonic() + 30
            while Delivery.objects.get(webhook=webhook).status == "pending" and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop(rescuer)

    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    StandardWebhook(webhook.secret).verify(second.body, second.headers)
    delivery = Delivery.objects.get(webhook=webhook)
    assert (delivery.status, delivery.attempts, str(delivery.event_id)) == ("delivered", 2, first.headers["webhook-id"])
