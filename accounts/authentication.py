"""DRF authentication by API key: ``Authorization: Bearer mlr_…`` and HTTP Basic with the key as the
password (what the MLflow client sends from MLFLOW_TRACKING_USERNAME/PASSWORD).

Both classes come before SimpleJWT's in DEFAULT_AUTHENTICATION_CLASSES and answer None to anything
that is not a key, so JWTs and sessions go on to their own classes and a key never reaches the JWT
parser. ``request.auth`` is the ``ApiKey``: the scope and key-management permissions read it.
"""

from __future__ import annotations

import base64
import binascii

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS

from accounts import services
from accounts.models import ApiKey, User
from accounts.permissions import NotWithApiKey

READ_ONLY = "This API key is read-only."


def _authenticate(raw: str) -> ApiKey:
    try:
        return services.api_key_authenticate(raw)
    except services.ApiKeyInvalid as error:
        raise exceptions.AuthenticationFailed(str(error), error.code) from None


def _within_scope(request, key: ApiKey) -> tuple[User, ApiKey]:
    if key.is_read_only and request.method not in SAFE_METHODS:
        # Here rather than in a permission class: views that set their own permission_classes drop the
        # defaults, so a read key could reach a handler that writes. Refused here, it never can.
        raise exceptions.PermissionDenied(READ_ONLY)
    return key.user, key


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer mlr_<prefix>_<secret>``; any other bearer token is left to SimpleJWT."""

    keyword = "bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.encode():
            return None
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            return None
        if not services.looks_like_api_key(token):
            return None
        return _within_scope(request, _authenticate(token))

    def authenticate_header(self, request) -> str:
        # The first class's header decides 401 (not 403) for unauthenticated requests: SimpleJWT's.
        return 'Bearer realm="api"'


class ApiKeyBasicAuthentication(BaseAuthentication):
    """HTTP Basic with the key's owner's username and the key as the password. A password that is not
    a key is left alone (None): no password sign-in happens here. The wrong username for a key: 401."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != b"basic":
            return None
        try:
            username, separator, password = base64.b64decode(parts[1], validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if not separator or not services.looks_like_api_key(password):
            return None
        key = _authenticate(password)
        if key.user.get_username() != username:
            raise exceptions.AuthenticationFailed("This API key belongs to another user.", "api_key_user_mismatch")
        return _within_scope(request, key)

    def authenticate_header(self, request) -> str:
        return 'Basic realm="api"'


class _KeySchemeMixin:
    def get_security_requirement(self, auto_schema):
        # The key-management routes refuse keys (accounts.permissions.NotWithApiKey): not offered there.
        if any(isinstance(permission, NotWithApiKey) for permission in auto_schema.view.get_permissions()):
            return None
        return {self.name: []}


class ApiKeyScheme(_KeySchemeMixin, OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "An API key as a bearer token: `Authorization: Bearer mlr_<prefix>_<secret>` "
            "(create one at /accounts/api-keys/ or POST /api/v1/auth/api-keys/).",
        }


class ApiKeyBasicScheme(_KeySchemeMixin, OpenApiAuthenticationExtension):
    target_class = ApiKeyBasicAuthentication
    name = "apiKeyBasicAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "HTTP Basic with your username and an API key as the password.",
        }
