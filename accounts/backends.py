from django.contrib.auth.backends import ModelBackend


class AccountBackend(ModelBackend):
    """Django's username-and-password sign-in, refused to service accounts: they act only through
    their API keys, so a guessed or leaked password (they have none usable) can never sign one in."""

    def user_can_authenticate(self, user) -> bool:
        return super().user_can_authenticate(user) and not getattr(user, "is_service_account", False)
