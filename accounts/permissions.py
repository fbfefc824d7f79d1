"""What a request signed in with an API key (``request.auth`` an ``ApiKey``) may do."""

from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated

from accounts.models import ApiKey


def _api_key(request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


class KeyScopeAllows(BasePermission):
    """A read key uses safe methods only (GET, HEAD, OPTIONS); a write key, and any other sign-in, all."""

    message = "This API key is read-only."

    def has_permission(self, request, view) -> bool:
        key = _api_key(request)
        return key is None or not key.is_read_only or request.method in SAFE_METHODS


class NotWithApiKey(BasePermission):
    """Keys are managed with a password or SSO sign-in (a JWT or a session): a stolen key cannot mint
    more keys, list them, or revoke the owner's other keys."""

    message = "API keys cannot manage API keys; sign in with your password."

    def has_permission(self, request, view) -> bool:
        return _api_key(request) is None


class IsSuperuser(IsAuthenticated):
    message = "Only a superuser can manage service accounts."

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and request.user.is_superuser
