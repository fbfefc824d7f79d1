from allauth.account.auth_backends import AuthenticationBackend

from accounts import services
from accounts.models import User


class AccountBackend(AuthenticationBackend):
    """allauth's username-or-email password check, refused to service accounts (they act only through
    their API keys, so a guessed or leaked password, they have none usable, never signs one in), and,
    with SSO_ONLY, to everyone but superusers."""

    def user_can_authenticate(self, user) -> bool:
        return super().user_can_authenticate(user) and services.local_sign_in_refusal(user) is None

    def get_user(self, user_id):
        # A session already started (through the IdP, under SSO_ONLY) is no password sign-in: only a
        # deactivation, or a service account, ends it here.
        user = User._default_manager.filter(pk=user_id).first()
        if user is None or not super().user_can_authenticate(user) or user.is_service_account:
            return None
        return user


def attempted_login(request, credentials: dict | None) -> str | None:
    """The username (or email) a sign-in tries, as django-axes counts it: allauth's form passes
    ``username`` or ``email`` to authenticate(), Django's forms and the API ``username``."""
    if credentials:
        return credentials.get("username") or credentials.get("email")
    data = getattr(request, "data", None) or request.POST
    return data.get("login") or data.get("username")
