"""One error shape for the whole API: ``{"detail": "..."}`` or ``{"field": ["..."]}``."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.views import csrf, defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from mlmodels.services import FileTooLarge
from mlmodels.storage import StorageUnavailable


class ServiceUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "A service the registry depends on is unavailable; try again shortly."
    default_code = "service_unavailable"


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "too_large"


def exception_handler(exc, context):
    if isinstance(exc, FileTooLarge):
        exc = PayloadTooLarge(exc.detail)
    # Services raise Django's ValidationError; to a client it is bad input (400), never a 500.
    elif isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            exc = exceptions.ValidationError(exc.message_dict)
        else:
            exc = exceptions.ValidationError({"detail": " ".join(exc.messages)})
    if isinstance(exc, StorageUnavailable):
        exc = ServiceUnavailable(str(exc))
    return drf_exception_handler(exc, context)


def _api_json(status: int, detail: str, page_handler):
    def handler(request, *args, **kwargs):
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": detail}, status=status)
        return page_handler(request, *args, **kwargs)

    return handler


# Django's error views, answered in JSON under /api/ (see ``handler…`` in registry/urls.py).
bad_request = _api_json(400, "Bad request.", defaults.bad_request)
permission_denied = _api_json(403, "You do not have permission to perform this action.", defaults.permission_denied)
page_not_found = _api_json(404, "Not found.", defaults.page_not_found)
server_error = _api_json(500, "Internal server error.", defaults.server_error)


@csrf_exempt  # it serves nothing to protect; a POST to an unknown path is a 404, not a CSRF failure
def api_not_found(request, *args, **kwargs):
    """Catch-all under /api/: an unknown API route is a JSON 404 whatever the method, also when DEBUG is on."""
    return JsonResponse({"detail": "Not found."}, status=404)


def csrf_failure(request, reason=""):
    """Django's CSRF failure page, in JSON under /api/ (settings.CSRF_FAILURE_VIEW)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"CSRF check failed: {reason}"}, status=403)
    return csrf.csrf_failure(request, reason=reason)
