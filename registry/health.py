"""GET /health: whether the database, the cache and what the apps register (the artifact storage)
answer. An app adds its checks with ``register_check`` from its ``AppConfig.ready()``."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:
    # The Redis cache ignores its own errors (so pages keep working without it); a value that does
    # not come back is how a failure shows here.
    token = secrets.token_hex(8)
    cache.set("health-check", token, timeout=10)
    if cache.get("health-check") != token:
        raise RuntimeError("the cache did not return the value just written")


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "cache": check_cache,
}


def register_check(name: str, check: Callable[[], None]) -> None:
    """Add a check to /health: ``check()`` raises when ``name`` does not answer."""
    CHECKS[name] = check


@never_cache
@require_GET
def health(request):
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception:
            logger.exception("Health check of the %s failed", name)
            results[name] = "error"
        else:
            results[name] = "ok"
    healthy = all(value == "ok" for value in results.values())
    return JsonResponse({"status": "ok" if healthy else "error", **results}, status=200 if healthy else 503)
