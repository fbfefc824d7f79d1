"""The task queue (registry/celery.py): tasks enqueued after commit run in-process on the embedded
defaults, and on a real Celery worker through Redis in the services pass, surviving a killed worker."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from registry.celery import app
from registry.tests.queue_tasks import remember, remember_slowly

ROOT = Path(__file__).resolve().parents[2]


def test_the_embedded_defaults_run_tasks_in_process_without_a_broker(settings):
    if settings.TASK_BROKER_URL:
        pytest.skip("this run has a broker: the worker tests below cover it")

    assert app.conf.task_always_eager
    assert app.conf.broker_url == "memory://"


@pytest.mark.django_db(transaction=True)
def test_a_task_runs_once_its_transaction_commits_and_never_after_a_rollback(settings):
    app.conf.task_always_eager = True  # in-process here; the worker tests send them through Redis
    try:
        committed, rolled_back = f"committed-{uuid.uuid4()}", f"rolled-back-{uuid.uuid4()}"
        with transaction.atomic():
            remember.delay_on_commit(committed, "yes")
            assert cache.get(committed) is None  # not before the commit
        with pytest.raises(RuntimeError), transaction.atomic():
            remember.delay_on_commit(rolled_back, "yes")
            raise RuntimeError("the change fails")

        assert cache.get(committed) == "yes"
        assert cache.get(rolled_back) is None
    finally:
        app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER


def test_tasks_are_acknowledged_late_and_put_back_when_their_worker_dies():
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1


# --- a real worker through Redis (the services pass) -----------------------------------------------


def start_worker(name: str) -> subprocess.Popen:
    env = {**os.environ, "TASKS_EAGER": "0", "TASK_VISIBILITY_SECONDS": "3", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "celery", "-A", "registry", "worker", "--pool", "solo", "--hostname"]
    command += [f"{name}@%h", "--include", "registry.tests.queue_tasks", "--loglevel", "WARNING", "--without-gossip"]
    command += ["--without-mingle", "--without-heartbeat"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(condition, *, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.kill()
    worker.wait(timeout=10)


@pytest.fixture
def through_redis():
    if app.conf.task_always_eager or not settings.TASK_BROKER_URL:
        pytest.skip("needs a broker (REDIS_URL)")


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_a_task_sent_through_redis_after_commit(through_redis):
    worker = start_worker("first")
    try:
        key = f"sent-{uuid.uuid4()}"
        with transaction.atomic():
            remember.delay_on_commit(key, "delivered")
        assert wait_for(lambda: cache.get(key), seconds=30, what="the worker's run") == "delivered"
    finally:
        stop(worker)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_task_whose_worker_is_killed_mid_run_is_run_again_by_another(through_redis):
    key = f"killed-{uuid.uuid4()}"
    first = start_worker("doomed")
    try:
        with transaction.atomic():
            remember_slowly.delay_on_commit(key, "finished", 5)
        wait_for(lambda: cache.get(f"{key}:attempts"), seconds=30, what="the first attempt")
        first.send_signal(signal.SIGKILL)  # no chance to acknowledge, nor to put the task back itself
        first.wait(timeout=10)
        assert cache.get(key) is None
    finally:
        stop(first)
    second = start_worker("rescuer")
    try:
        assert wait_for(lambda: cache.get(key), seconds=60, what="the second worker's run") == "finished"
        assert cache.get(f"{key}:attempts") == 2
    finally:
        stop(second)
