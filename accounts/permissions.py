"""What a request signed in with an API key (``request.auth`` an ``ApiKey``) may do."""

from rest_framework.permissions import BasePermission, IsAuthenticated

from accounts.models import ApiKey


def _api_key(request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


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
