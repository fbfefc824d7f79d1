"""Account rules: registration, sign-in and its lockouts, revoking credentials; shared by the API, the
pages and the admin."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import string
from datetime import datetime, timedelta
from importlib import import_module

from allauth.account.models import EmailAddress
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import ApiKey, User
from accounts.roles import APPROVERS_GROUP
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


def registration_open() -> bool:
    """Whether people may make themselves a local account (never with SSO_ONLY: accounts come from the IdP)."""
    return settings.REGISTRATION_OPEN and not settings.SSO_ONLY


def user_register(*, username: str, email: str, password: str) -> User:
    """Create an account, refusing duplicates (email in any letter case) and weak passwords."""
    if not registration_open():
        raise PermissionDenied("Registration is closed; ask an administrator for an account.")
    user = User(username=(username or "").strip(), email=User.objects.normalize_email((email or "").strip()))
    errors = _new_user_errors(user)
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


def _new_user_errors(user: User) -> dict[str, list[str]]:
    """What is wrong with a new account's fields (duplicates in any letter case included)."""
    errors: dict[str, list[str]] = {}
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as error:
        errors.update(error.message_dict)
    if User.objects.filter(username__iexact=user.username).exclude(username=user.username).exists():
        errors.setdefault("username", []).append("A user with that username already exists.")
    return errors


# Service accounts receive no mail: without an address of their own they get one under a reserved
# domain (RFC 2606), unique like every email address here.
SERVICE_ACCOUNT_EMAIL_DOMAIN = "service-accounts.invalid"


def service_account_create(*, actor, username: str, email: str = "") -> User:
    """A pipeline's account (superusers only): it has no usable password, so it never signs in with
    one (accounts.backends), and acts only through the API keys a superuser makes for it."""
    if not actor.is_superuser:
        raise PermissionDenied("Only a superuser can create service accounts.")
    username = (username or "").strip()
    email = User.objects.normalize_email((email or "").strip()) or f"{username}@{SERVICE_ACCOUNT_EMAIL_DOMAIN}"
    user = User(username=username, email=email, is_service_account=True)
    user.set_unusable_password()
    errors = _new_user_errors(user)
    if errors:
        raise ValidationError(errors)
    with integrity_as_validation(user), transaction.atomic():
        user.save()
    return user


# Accounts made by an SSO sign-in whose IdP sends no email address get one under a reserved domain.
SSO_EMAIL_DOMAIN = "sso.invalid"


def local_sign_in_refusal(user: User, *, through_sso: bool = False) -> str | None:
    """Why ``user`` may not sign in this way (a password, a passkey, or the IdP), or None if they may."""
    if getattr(user, "is_service_account", False):
        return "Service accounts cannot sign in; they act only through their API keys."
    if settings.SSO_ONLY and not through_sso and not user.is_superuser:
        return (
            f"Sign-in with a password or a passkey is turned off here: use “Sign in with "
            f"{settings.OIDC_PROVIDER_NAME}”. Scripts use API keys."
        )
    return None


def api_password_sign_in_refusal(user: User) -> str | None:
    """Why the API's password sign-in refuses ``user`` despite the right password: a second factor (or
    a passkey) protects their account, and that endpoint cannot ask for it."""
    if is_mfa_enabled(user):
        return (
            "This account is protected by a second factor or a passkey, which this endpoint cannot ask for: "
            "sign in on the login page, and give scripts an API key."
        )
    return None


def failed_sign_in_message() -> str:
    """What the API's password sign-in answers a refusal (the same whatever the cause: no account, a
    wrong password, or one that may not sign in this way)."""
    message = "No active account found with the given credentials."
    if settings.SSO_ONLY:
        message += (
            f" Password sign-in is for administrators only here: sign in with {settings.OIDC_PROVIDER_NAME} "
            "on the login page and use an API key."
        )
    return message


def sso_sign_up_refusal(claims: dict, *, connecting=None) -> str | None:
    """Why a first SSO sign-in may not create an account: its email address belongs to an account
    here (signing into that one would hand it to whoever controls the IdP's address; a second one
    cannot have the address). Connecting the sign-in to one's own account is fine."""
    email = User.objects.normalize_email(claims.get("email") or "")
    holders = User.objects.filter(email__iexact=email)
    if getattr(connecting, "is_authenticated", False):
        holders = holders.exclude(pk=connecting.pk)
    if email and holders.exists():
        return (
            f"An account with the email address {email} already exists here, so your sign-in through "
            f"{settings.OIDC_PROVIDER_NAME} cannot make a new one. If it is yours, sign in to it and connect "
            f"{settings.OIDC_PROVIDER_NAME} on your account page; otherwise ask an administrator."
        )
    return None


def sso_user_sync(*, user: User, claims: dict) -> None:
    """At every SSO sign-in, what the IdP says wins: the email address (unless another account has it)
    and the roles its groups map to (OIDC_APPROVER_GROUPS, OIDC_ADMIN_GROUPS), given and taken away.
    A role whose setting is empty is left as the admin sets it."""
    groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    groups = {groups} if isinstance(groups, str) else {str(group) for group in groups}
    email = User.objects.normalize_email(claims.get("email") or "")
    with transaction.atomic():
        taken = User.objects.filter(email__iexact=email).exclude(pk=user.pk)
        if email and email.lower() != user.email.lower() and not taken.exists():
            user.email = email
            # allauth's own record of the address (it looks for clashes there) follows.
            EmailAddress.objects.filter(user=user).delete()
            EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        if settings.OIDC_ADMIN_GROUPS:
            user.is_superuser = user.is_staff = bool(groups & set(settings.OIDC_ADMIN_GROUPS))
        user.save(update_fields=["email", "is_superuser", "is_staff", "updated_at"])
        if settings.OIDC_APPROVER_GROUPS:
            approvers, _ = Group.objects.get_or_create(name=APPROVERS_GROUP)
            if groups & set(settings.OIDC_APPROVER_GROUPS):
                user.groups.add(approvers)
            else:
                user.groups.remove(approvers)


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


def user_revoke_credentials(*, user: User, keep_session_key: str | None = None, api_keys: bool = True) -> None:
    """End every way ``user`` is signed in, but the session ``keep_session_key``: every outstanding
    refresh token is blacklisted (also those rotated from an older one: SimpleJWT records each) and
    every other session is deleted from the session store; with ``api_keys``, every API key is revoked
    (not after a password change: keys do not derive from the password). Access tokens stop
    on their own: they carry the password hash they were issued under (CHECK_REVOKE_TOKEN) and the
    user's active flag is checked."""
    with transaction.atomic():
        live = OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True)
        BlacklistedToken.objects.bulk_create([BlacklistedToken(token=token) for token in live], ignore_conflicts=True)
        if api_keys:
            api_key_revoke_all(user=user)
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
    when the user changed it themselves). API keys are kept: they are not derived from the password,
    and the scripts holding them (SSO users' included) must not break with it (DESIGN.md, Identity)."""
    user_revoke_credentials(user=user, keep_session_key=keep_session_key, api_keys=False)


def user_deactivated(*, user: User) -> None:
    """After ``user`` was deactivated: their sessions, refresh tokens and API keys end for good (a later
    reactivation brings none back); their signed download URLs are refused while they are inactive."""
    user_revoke_credentials(user=user)


# --- API keys -------------------------------------------------------------------------------------

API_KEY_PREFIX = "mlr_"
API_KEY_LAST_USED_EVERY = timedelta(minutes=1)
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits


class ApiKeyInvalid(Exception):
    """A presented API key that signs nobody in: unknown, revoked, expired, or its user inactive (the
    API answers 401 with the message)."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


def api_key_hash(secret: str) -> str:
    """SHA-256 of a key's secret (hex): 256 random bits need no slow hash (see ``ApiKey``)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_parse(raw: str) -> tuple[str, str] | None:
    """``(prefix, secret)`` of a string shaped like a key (``mlr_<8 chars>_<secret>``), else None."""
    if not raw.startswith(API_KEY_PREFIX):
        return None
    prefix, separator, secret = raw[len(API_KEY_PREFIX) :].partition("_")
    if len(prefix) != ApiKey.PREFIX_LENGTH or not separator or not secret:
        return None
    return prefix, secret


def looks_like_api_key(raw: str) -> bool:
    return raw.startswith(API_KEY_PREFIX)


@transaction.atomic
def api_key_create(
    *, actor: User, user: User, name: str, scope: str, expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """A new key of ``user``, made by ``user`` or a superuser (who makes the keys of service
    accounts); returns the row and the full key, which is not stored anywhere and cannot be shown again."""
    if not (actor.is_superuser or actor.pk == user.pk):
        raise PermissionDenied("Only the user or a superuser can create this user's API keys.")
    if not user.is_active:
        raise ValidationError("API keys cannot be created for an inactive user.")
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["Give the key a name, e.g. the pipeline that uses it."]
    if scope not in ApiKey.Scope.values:
        errors["scope"] = [f"Choose one of: {', '.join(ApiKey.Scope.values)}."]
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = ["The expiry must be in the future."]
    if errors:
        raise ValidationError(errors)
    secret = secrets.token_urlsafe(32)  # 256 bits
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(ApiKey.PREFIX_LENGTH))
    while ApiKey.objects.filter(prefix=prefix).exists():  # 36**8 prefixes: practically never
        prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(ApiKey.PREFIX_LENGTH))
    key = ApiKey(user=user, name=name, prefix=prefix, secret_hash=api_key_hash(secret), scope=scope)
    key.expires_at = expires_at
    key.full_clean()
    key.save()
    return key, f"{API_KEY_PREFIX}{prefix}_{secret}"


def api_key_revoke(*, actor: User, key: ApiKey) -> ApiKey:
    """Revoke ``key`` (its user or a superuser): the next request with it is refused, as nothing
    caches a key. Revoking a revoked key changes nothing."""
    if not (actor.is_superuser or actor.pk == key.user_id):
        raise PermissionDenied("Only the key's user or a superuser can revoke it.")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=key.revoked_at)
    return key


def api_key_revoke_all(*, user: User) -> int:
    """Revoke every live key of ``user``; how many. One UPDATE."""
    return ApiKey.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


# The key of a prefix with its user, and what the checks need of the key's times decided by the
# database, in one query: Django's select_related() join costs more Python per request than the rest
# of a key's authentication (bench/: get_model with --auth apikey). The user columns are the model's,
# loaded (and converted) as the ORM loads them; the key's come back as plain values.
_KEY_COLUMNS = ("id", "name", "scope", "secret_hash")


@functools.cache
def _api_key_lookup_sql(vendor: str) -> str:
    # Identifiers from the models and constants only, quoted; every value is a bound parameter.
    quote = connection.ops.quote_name
    key_columns = ", ".join(f"k.{quote(column)} AS {quote('apikey_' + column)}" for column in _KEY_COLUMNS)
    return (
        f"SELECT u.*, {key_columns}, "  # noqa: S608 - no value is formatted into the SQL
        f"CASE WHEN k.{quote('revoked_at')} IS NULL THEN 0 ELSE 1 END AS apikey_revoked, "
        f"CASE WHEN k.{quote('expires_at')} <= %s THEN 1 ELSE 0 END AS apikey_expired, "
        f"CASE WHEN k.{quote('last_used_at')} >= %s THEN 0 ELSE 1 END AS apikey_stale "
        f"FROM {quote(User._meta.db_table)} u JOIN {quote(ApiKey._meta.db_table)} k "
        f"ON k.{quote('user_id')} = u.{quote('id')} WHERE k.{quote('prefix')} = %s"
    )


def _api_key_with_user(prefix: str, now: datetime) -> tuple[ApiKey, dict[str, bool]] | None:
    adapt = connection.ops.adapt_datetimefield_value
    params = [adapt(now), adapt(now - API_KEY_LAST_USED_EVERY), prefix]
    user = next(iter(User.objects.raw(_api_key_lookup_sql(connection.vendor), params)), None)
    if user is None:
        return None
    # The key's columns come as attributes of the user: taken off it, the secret's hash included.
    values = {column: user.__dict__.pop(f"apikey_{column}") for column in _KEY_COLUMNS}
    state = {name: bool(user.__dict__.pop(f"apikey_{name}")) for name in ("revoked", "expired", "stale")}
    # The other fields of the key (its times) are deferred: read only on the way out (an expiry's message).
    key = ApiKey.from_db(
        connection.alias,
        ["id", "user_id", "name", "prefix", "secret_hash", "scope"],
        [values["id"], user.pk, values["name"], prefix, values["secret_hash"], values["scope"]],
    )
    key.user = user
    return key, state


def api_key_authenticate(raw: str) -> ApiKey:
    """The live key ``raw`` is, with its user loaded (one query), or ``ApiKeyInvalid`` saying why:
    unknown, revoked, expired, or an inactive user. The secret is compared in constant time.

    ``last_used_at`` is written at most once a minute, by one conditional UPDATE (so concurrent
    requests write it once between them), and only when the loaded row says it is stale: most
    requests cost the one SELECT."""
    parsed = api_key_parse(raw)
    now = timezone.now()
    found = _api_key_with_user(parsed[0], now) if parsed is not None else None
    # Compared even when no row was found, so that timing tells nothing about which prefixes exist.
    expected = found[0].secret_hash if found is not None else "0" * 64
    matches = hmac.compare_digest(expected, api_key_hash(parsed[1] if parsed else raw))
    if found is None or not matches:
        raise ApiKeyInvalid("Invalid API key.", "api_key_invalid")
    key, state = found
    if state["revoked"]:
        raise ApiKeyInvalid("This API key has been revoked.", "api_key_revoked")
    if state["expired"]:
        raise ApiKeyInvalid(f"This API key expired at {key.expires_at.isoformat()}.", "api_key_expired")
    if not key.user.is_active:
        raise ApiKeyInvalid("The user of this API key is inactive.", "user_inactive")
    if state["stale"]:
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - API_KEY_LAST_USED_EVERY)
        ApiKey.objects.filter(stale, pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
