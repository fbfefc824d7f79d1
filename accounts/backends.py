from allauth.account.auth_backends import AuthenticationBackend

from accounts import services


class AccountBackend(AuthenticationBackend):
    """allauth's username-or-email password check, refused to service accounts (they act only through
    their API keys, so a guessed or leaked password, they have none usable, never signs one in), and,
    with SSO_ONLY, to everyone but superusers."""

    def user_can_authenticate(self, user) -> bool:
        return super().user_can_authenticate(user) and services.local_sign_in_refusal(user) is None


def attempted_login(request, credentials: dict | None) -> str | None:
    """The username (or email) a sign-in tries, as django-axes counts it: allauth's form passes
    ``username`` or ``email`` to authenticate(), Django's forms and the API ``username``."""
    if credentials:
        return credentials.get("username") or credentials.get("email")
    data = getattr(request, "data", None) or request.POST
    return data.get("login") or data.get("username")
