"""The mlmodels app's tasks (registry/celery.py): thin calls of its services, safe to run twice."""

from celery import shared_task

from mlmodels import services
from mlmodels.storage import StorageUnavailable


@shared_task(autoretry_for=(StorageUnavailable,), retry_backoff=5, retry_backoff_max=300, max_retries=8)
def scan_version(model_id: int, version_number: int) -> str | None:
    """Scan a version's stored artifact and record what it is (``services.version_scan``)."""
    report = services.version_scan(model_id=model_id, version_number=version_number)
    return None if report is None else report.status
