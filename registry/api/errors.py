"""One error shape for the whole API: ``{"detail": "..."}`` or ``{"field": ["..."]}``; error pages
inside the app's layout everywhere else."""

import logging
import re
from urllib.parse import quote, urlsplit

from django.apps import apps
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import csrf, defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from registry.errors import Conflict, ServiceUnavailable, TooLarge


class ServiceUnavailableError(exceptions.APIException):
    status_code = 503
    default_detail = "A service the registry depends on is unavailable; try again shortly."
    default_code = "service_unavailable"


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "too_large"


class ConflictError(exceptions.APIException):
    status_code = 409
    default_code = "conflict"


def exception_handler(exc, context):
    if isinstance(exc, TooLarge):
        exc = PayloadTooLarge(exc.detail)
    # Services raise Django's ValidationError; to a client it is bad input (400), never a 500.
    elif isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            exc = exceptions.ValidationError(exc.message_dict)
        else:
            exc = exceptions.ValidationError({"detail": " ".join(exc.messages)})
    if isinstance(exc, ServiceUnavailable):
        exc = ServiceUnavailableError(str(exc))
    elif isinstance(exc, Conflict):
        exc = ConflictError(str(exc))
    return drf_exception_handler(exc, context)


def _api_json(status: int, detail: str, page_handler):
    def handler(request, *args, **kwargs):
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": detail}, status=status)
        return page_handler(request, *args, **kwargs)

    return handler


# --- Error pages (outside /api/) ----------------------------------------------------------------

logger = logging.getLogger(__name__)

# Where an error page can send the visitor, by the view a parent address resolves to.
_WAYS_BACK = {
    "model-detail": "Back to the model",
    "model-list": "All models",
    "experiment-detail": "Back to the experiment",
    "experiment-list": "All experiments",
}
# Http404's own wording from get_object_or_404 and the generic views: for developers (it names classes).
_STOCK_NOT_FOUND = re.compile(r"^No (?P<name>.+?) (matches the given query|found matching the query)\.?$")


def _way_up(path: str, *, to_objects: bool) -> tuple[str, str]:
    """The nearest page above ``path`` worth a link, and its label: the model whose edit was refused;
    for a missing page only a list (the object above a missing page may be missing too)."""
    parts = path.rstrip("/").split("/")
    while len(parts) > 1:
        parts.pop()
        parent = "/".join(parts) + "/"
        try:
            match = resolve(parent)
        except Resolver404:
            continue
        label = _WAYS_BACK.get(match.view_name)
        if label and (to_objects or not match.kwargs):
            return parent, label
    return reverse("dashboard"), "Dashboard"


def _ways_back(request, *, to_objects: bool) -> dict:
    up_url, up_label = _way_up(request.path, to_objects=to_objects)
    previous = request.META.get("HTTP_REFERER", "")
    same_site = url_has_allowed_host_and_scheme(
        previous, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    if not same_site or urlsplit(previous).path in (request.path, up_url):
        previous = ""
    return {"up_url": up_url, "up_label": up_label, "previous_url": previous}


def _not_found_reason(exception) -> str:
    message = exception.args[0] if exception is not None and exception.args else None
    if not isinstance(message, str) or not message:  # Resolver404 carries a dict: no route matched
        return "Nothing lives at this address: the link may be wrong or out of date."
    stock = _STOCK_NOT_FOUND.match(message)
    if stock:
        found = [m._meta.verbose_name for m in apps.get_models() if stock["name"] in (m.__name__, m._meta.verbose_name)]
        return f"There is no such {found[0] if found else 'page'}: it may have been deleted, or the link is wrong."
    return message


def _permission_denied_page(request, exception):
    context = {
        # The services' and views' PermissionDenied messages are written for the person refused.
        "reason": str(exception) or "You do not have permission to open this page.",
        **_ways_back(request, to_objects=True),
    }
    return render(request, "403.html", context, status=403)


def _not_found_page(request, exception):
    context = {
        "reason": _not_found_reason(exception),
        "request_path": quote(request.path),
        **_ways_back(request, to_objects=False),
    }
    return render(request, "404.html", context, status=404)


# The last resort when even 500.html cannot render (a missing static manifest entry, a broken template).
PLAIN_SERVER_ERROR = (
    "<!doctype html><html lang=en><title>Server error</title><h1>Server error (500)</h1>"
    '<p>Something went wrong on our side. Try again shortly, or go back to <a href="/">the dashboard</a>.</p>'
)


def _server_error_page(request, *args, **kwargs):
    """500.html, rendered as Django does: without a request context (no user, no database)."""
    try:
        return defaults.server_error(request, *args, **kwargs)
    except Exception:
        logger.exception("The 500 page could not be rendered; answered with plain HTML")
        return HttpResponseServerError(PLAIN_SERVER_ERROR)


# Django's error views, answered in JSON under /api/ (see ``handler…`` in registry/urls.py). 400.html and
# 500.html render without a request context (defaults.bad_request and server_error), 403 and 404 with one.
bad_request = _api_json(400, "Bad request.", defaults.bad_request)
permission_denied = _api_json(403, "You do not have permission to perform this action.", _permission_denied_page)
page_not_found = _api_json(404, "Not found.", _not_found_page)
server_error = _api_json(500, "Internal server error.", _server_error_page)


@csrf_exempt  # it serves nothing to protect; a POST to an unknown path is a 404, not a CSRF failure
def api_not_found(request, *args, **kwargs):
    """Catch-all under /api/: an unknown API route is a JSON 404 whatever the method, also when DEBUG is on."""
    return JsonResponse({"detail": "Not found."}, status=404)


def csrf_failure(request, reason=""):
    """Django's CSRF failure page, in JSON under /api/ (settings.CSRF_FAILURE_VIEW)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"CSRF check failed: {reason}"}, status=403)
    return csrf.csrf_failure(request, reason=reason)
