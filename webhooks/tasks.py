"""The webhooks' task (registry/celery.py): one attempt of a delivery, and the next one scheduled.

With a broker the next attempt is the same task sent with a countdown. Eager mode (the embedded
defaults) has no queue to hold a countdown: a due retry runs at once, and a later one on a timer
thread of this process (a restart drops the timer; ``manage.py webhooks_retry`` sends what is due).
"""

from __future__ import annotations

import threading

from celery import shared_task
from django.db import close_old_connections

from registry.celery import app
from webhooks import delivery


@shared_task(ignore_result=True)
def deliver(delivery_id: int) -> None:
    while (delay := delivery.attempt(delivery_id)) is not None:
        if not app.conf.task_always_eager:
            deliver.apply_async((delivery_id,), countdown=delay)
            return
        if delay > 0:
            timer = threading.Timer(delay, _deliver_on_thread, (delivery_id,))
            timer.daemon = True
            timer.start()
            return


def _deliver_on_thread(delivery_id: int) -> None:
    try:
        deliver(delivery_id)
    finally:
        close_old_connections()


def send(delivery_ids) -> None:
    """Enqueue the first attempt of each delivery once the current transaction commits."""
    for delivery_id in delivery_ids:
        deliver.delay_on_commit(delivery_id)
