"""The task queue: one Celery app for the project, configured from Django's settings (``CELERY_*``).

With ``REDIS_URL`` set, tasks go through Redis to the workers (``make worker``; the ``worker`` service
of docker-compose). On the embedded defaults there is no broker to run: tasks run in the process that
enqueued them (Celery's eager mode), once the enqueuing transaction has committed, so a first
``make run`` needs no second command. Apps enqueue with ``task.delay_on_commit(...)`` (Celery's
DjangoTask): a rolled-back change enqueues nothing, and a worker never looks for a row that is not
committed yet. Tasks are acknowledged after they ran (``acks_late``) and put back when their worker
dies, so each must be idempotent: safe to run twice for the same arguments.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")

app = Celery("registry", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
