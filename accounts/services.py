"""Account rules: registration and sign-in, shared by the API and the pages."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.models import User
from registry.integrity import integrity_as_validation


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
    matches; None otherwise. Unknown logins cost a password hash too, so timing reveals nothing."""
    username = login
    if "@" in login:
        match = User.objects.filter(email__iexact=login).values_list("username", flat=True).first()
        username = match or login
    return authenticate(request, username=username, password=password)
