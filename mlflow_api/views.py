"""The MLflow-compatible REST API's base view: MLflow's request parsing, authentication and error
answers around thin handlers (mlflow_api/registry.py) that call our services and selectors.

Requests are authenticated as API v1's are (API keys as a bearer token or a Basic password, JWTs),
plus a Basic user name and password, which MLflow's client sends from MLFLOW_TRACKING_USERNAME and
MLFLOW_TRACKING_PASSWORD (django-axes counts the failures). GET requests carry their fields in the
query string (the client sends a list as the same name repeated); the others a JSON body, DELETE
included.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.authentication import BasicAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from mlflow_api.errors import MlflowError, invalid
from registry.errors import Conflict, ServiceUnavailable, TooLarge
from registry.validators import lone_surrogate

logger = logging.getLogger(__name__)


class Unauthenticated(BasicAuthentication):
    """Basic auth with a password; its challenge names the realm as MLflow's server does."""

    www_authenticate_realm = "mlflow"


def _message(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return " ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return " ".join(error.messages)


def _codes(error: ValidationError) -> set[str]:
    return {item.code for item in error.error_list if item.code} if hasattr(error, "error_list") else set()


def as_mlflow_error(exc: Exception) -> MlflowError | None:
    if isinstance(exc, MlflowError):
        return exc
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return MlflowError("UNAUTHENTICATED", str(exc.detail))
    if isinstance(exc, exceptions.PermissionDenied | DjangoPermissionDenied):
        return MlflowError("PERMISSION_DENIED", str(getattr(exc, "detail", exc)) or "Permission denied.")
    if isinstance(exc, exceptions.Throttled):
        return MlflowError("REQUEST_LIMIT_EXCEEDED", str(exc.detail))
    if isinstance(exc, exceptions.ParseError | exceptions.UnsupportedMediaType):
        return MlflowError("BAD_REQUEST", str(exc.detail))
    if isinstance(exc, exceptions.MethodNotAllowed):
        return MlflowError("ENDPOINT_NOT_FOUND", str(exc.detail))
    if isinstance(exc, TooLarge):
        return MlflowError("INVALID_PARAMETER_VALUE", exc.detail)
    if isinstance(exc, ValidationError):
        if "duplicate_name" in _codes(exc):
            return MlflowError("RESOURCE_ALREADY_EXISTS", _message(exc))
        return invalid(_message(exc))
    if isinstance(exc, Http404 | exceptions.NotFound):
        return MlflowError("RESOURCE_DOES_NOT_EXIST", str(exc) or "Not found.")
    if isinstance(exc, Conflict):
        return MlflowError("INVALID_PARAMETER_VALUE", str(exc))
    if isinstance(exc, ServiceUnavailable):
        return MlflowError("TEMPORARILY_UNAVAILABLE", str(exc))
    return None


class MlflowView(APIView):
    """One MLflow endpoint: ``handle(request, fields)`` returns the answer's dict."""

    authentication_classes = [*api_settings.DEFAULT_AUTHENTICATION_CLASSES, Unauthenticated]
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    # Not part of API v1's OpenAPI schema: MLflow's own protos describe this API.
    schema = None
    # The HTTP method MLflow's client uses for this endpoint (model_registry.proto / service.proto);
    # a path served with several (logged-models/{id}: GET, PATCH, DELETE) names them all and has a
    # ``handle_<method>`` for each.
    method: str | tuple[str, ...] = "GET"

    def handle(self, request, fields: dict, **path) -> dict:
        raise NotImplementedError

    def _dispatch(self, request, *args, **kwargs):
        methods = (self.method,) if isinstance(self.method, str) else self.method
        if request.method not in methods:
            raise MlflowError(
                "ENDPOINT_NOT_FOUND", f"This endpoint takes {' or '.join(methods)}, not {request.method}."
            )
        handle = self.handle if len(methods) == 1 else getattr(self, f"handle_{request.method.lower()}")
        return Response(handle(request, self.fields(request), **kwargs))

    get = post = patch = delete = put = _dispatch

    def fields(self, request) -> dict:
        if request.method == "GET":
            fields = {}
            for name in request.query_params:
                values = request.query_params.getlist(name)
                fields[name] = values if len(values) > 1 or name in self.list_fields else values[0]
        else:
            fields = request.data
            if not isinstance(fields, dict):
                raise MlflowError("BAD_REQUEST", "The request body must be a JSON object.")
        if (found := _unstorable_text_in(fields)) is not None:
            where, what = found
            raise invalid(f"Invalid value for parameter '{where}': it holds {what}.")
        return fields

    list_fields: tuple[str, ...] = ("order_by", "stages", "experiment_ids", "run_ids")

    def handle_exception(self, exc):
        error = as_mlflow_error(exc)
        if error is None:
            return super().handle_exception(exc)
        response = Response(error.as_dict(), status=error.status)
        if error.error_code == "UNAUTHENTICATED":
            response["WWW-Authenticate"] = 'Basic realm="mlflow"'
        return response


def _problem(text: str) -> str | None:
    if lone_surrogate(text):
        # JSON's unpaired "\ud800" escapes decode to no Unicode text: nothing could store or echo it.
        return "an unpaired surrogate (\\ud800-\\udfff)"
    if "\x00" in text:
        return "a NUL character, which no text field may"  # PostgreSQL refuses them in text
    return None


def _unstorable_text_in(value, name: str = "") -> tuple[str, str] | None:
    """(field, problem) for the first text of a request's fields (or key) that cannot be stored."""
    if isinstance(value, str):
        problem = _problem(value)
        return (name, problem) if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            if problem := _problem(str(key)):
                return (name or "(a key)", problem)
            if (found := _unstorable_text_in(item, name or str(key))) is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            if (found := _unstorable_text_in(item, name)) is not None:
                return found
    return None


def endpoint_not_found(request, *args, **kwargs):
    """What MLflow's server answers for a path it does not serve."""
    error = MlflowError("ENDPOINT_NOT_FOUND", f"No API endpoint is served at {request.path} ({request.method}).")
    return JsonResponse(error.as_dict(), status=error.status)


def text(fields: dict, name: str, *, required: bool = True, default: str = "") -> str:
    value = fields.get(name)
    if value in (None, ""):
        if required:
            raise invalid(f"Missing value for required parameter '{name}'.")
        return default
    if not isinstance(value, str):
        raise invalid(f"Invalid value {value!r} for parameter '{name}' supplied: a string is expected.")
    return value


def integer(fields: dict, name: str) -> int:
    value = text(fields, name)
    try:
        number = int(value)
    except ValueError:
        raise invalid(f"Invalid value {value!r} for parameter '{name}': an integer is expected.") from None
    if number < 1 or number > 2**31:
        raise invalid(f"Invalid value {value!r} for parameter '{name}': a positive version number is expected.")
    return number
