import pytest

from registry.celery import app
from webhooks.tests.receiver import Receiver


@pytest.fixture
def in_process(settings):
    """Deliveries run in this process once the change commits (as on the embedded defaults), whatever
    broker the run has; retries come at once and the address rules let loopback through."""
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed():`` the change inside is delivered as if its transaction committed."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def receiver():
    """``with receiver(Answer(...), ...) as r:`` a loopback receiver answering those in turn."""
    return Receiver
