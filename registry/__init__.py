# The Celery app is made with Django's settings, so that tasks of every app find it as the current app.
from registry.celery import app as celery_app

__all__ = ("celery_app",)
