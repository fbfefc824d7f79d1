"""Tasks for the task queue's own tests (a worker started by a test includes this module)."""

import time

from celery import shared_task
from django.core.cache import cache


@shared_task
def remember(key: str, value: str) -> None:
    cache.set(key, value, timeout=300)


@shared_task
def remember_slowly(key: str, value: str, seconds: float) -> None:
    """Counts its attempts, waits, then remembers: a worker killed while it waits leaves it to the next."""
    cache.add(f"{key}:attempts", 0, timeout=300)
    cache.incr(f"{key}:attempts")
    time.sleep(seconds)
    cache.set(key, value, timeout=300)
