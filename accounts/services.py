"""Account rules: registration, sign-in and its lockouts, revoking credentials; shared by the API, the
pages and the admin."""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import User
from registry.integrity import integrity_as_validation


class SignInLockedOut(PermissionDenied):
    """Too many failed sign-ins for this username or from this client address (django-axes)."""

    def __init__(self):
        super().__init__(lockout_message())
        self.retry_after = lockout_seconds()


def lockout_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_message() -> str:
    """What a locked-out sign-in is told, on every door: why, when to come back, who can help sooner."""
    minutes = lockout_seconds() // 60
    return (
        "Too many failed sign-in attempts for this account or from your address: sign-in is locked for "
        f"{minutes} minutes after the last failed attempt. Try again in {minutes} minutes, or ask an "
        "administrator to unlock the account."
    )


def user_register(*, username: str, email: str, password: str) -> User:
    """Create an account, refusing duplicates (email in any letter case) and weak passwords."""
    if not settings.REGISTRATION_OPEN:
        raise PermissionDenied("Registration is closed; ask an administrator for an account.")
    user = User(username=(username or "").strip(), email=User.objects.normalize_email((email or "").strip()))
    errors: dict[str, list[str]] = {}
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as error:
        errors.update(error.message_dict)
    if User.objects.filter(username__iexact=user.username).exclude(username=user.username).exists():
        errors.setdefault("username", []).append("A user with that username already exists.")
    try:
        password_validation.validate_password(password, user)
    except ValidationError as error:
        errors["password"] = error.messages
    if errors:
        raise ValidationError(errors)
    user.set_password(password)
    with integrity_as_validation(user), transaction.atomic():
        user.save()
    return user


def user_authenticate(*, request, login: str, password: str) -> User | None:
    """The active user whose username or email (any letter case) is ``login`` and whose password
    matches; None otherwise. Unknown logins cost a password hash too, so timing reveals nothing.
    Raises ``SignInLockedOut`` while django-axes locks the username or the client address."""
    username = login
    if "@" in login:
        match = User.objects.filter(email__iexact=login).values_list("username", flat=True).first()
        username = match or login
    user = authenticate(request, username=username, password=password)
    if user is None and getattr(request, "axes_locked_out", False):
        # django-axes refused it (even a right password) or this failure reached the limit. The pages
        # get axes' answer from its middleware; an API request wraps the one the middleware sees.
        raise SignInLockedOut()
    return user


def user_revoke_credentials(*, user: User, keep_session_key: str | None = None) -> None:
    """End every way ``user`` is signed in, but the session ``keep_session_key``: every outstanding
    refresh token is blacklisted (also those rotated from an older one: SimpleJWT records each) and
    every other session is deleted from the session store. Access tokens stop on their own: they carry
    the password hash they were issued under (CHECK_REVOKE_TOKEN) and the user's active flag is checked."""
    with transaction.atomic():
        live = OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True)
        BlacklistedToken.objects.bulk_create([BlacklistedToken(token=token) for token in live], ignore_conflicts=True)
    user_end_sessions(user=user, keep_session_key=keep_session_key)


def user_end_sessions(*, user: User, keep_session_key: str | None = None) -> int:
    """Delete ``user``'s sessions (but ``keep_session_key``) from the store, cache included; how many.

    Sessions do not record their user in a column, so each live session is decoded: a scan, fine for
    the rare events that call it (a password change, a deactivation)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    ended = 0
    live = store.get_model_class().objects.filter(expire_date__gt=timezone.now()).exclude(session_key=keep_session_key)
    for session in live.only("session_key", "session_data").iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            store(session.session_key).delete()
            ended += 1
    return ended


def user_password_changed(*, user: User, keep_session_key: str | None = None) -> None:
    """After ``user``'s password was changed or reset (the password page, the admin): nothing issued
    under the old password keeps working, except the session that made the change (``keep_session_key``,
    when the user changed it themselves)."""
    user_revoke_credentials(user=user, keep_session_key=keep_session_key)


def user_deactivated(*, user: User) -> None:
    """After ``user`` was deactivated: their sessions and refresh tokens end for good (a later
    reactivation brings none back); their signed download URLs are refused while they are inactive."""
    user_revoke_credentials(user=user)
