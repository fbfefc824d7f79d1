"""The registry's own account pages: register, password change, API keys (allauth runs the sign-in)."""

import math

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from accounts import services
from accounts.forms import LoginForm, RegisterForm
from accounts.models import ApiKey
from accounts.roles import roles_of
from registry.api.throttles import AuthRateThrottle
from registry.forms import add_service_errors


def _over_auth_rate(request) -> AuthRateThrottle | None:
    """The throttle that refuses this POST (the API's per-address ``auth`` budget), or None."""
    throttle = AuthRateThrottle()
    return None if throttle.allow_request(request, None) else throttle


def _too_many_attempts(throttle: AuthRateThrottle) -> str:
    return f"Too many attempts from your address. Try again in {_wait(throttle)} seconds."


def _wait(throttle: AuthRateThrottle) -> int:
    return max(1, math.ceil(throttle.wait()))


def _refused(response, throttle: AuthRateThrottle):
    response["Retry-After"] = str(_wait(throttle))
    return response


@require_http_methods(["GET", "POST"])
def register(request):
    if not services.registration_open():
        return render(request, "accounts/register_closed.html", status=403)
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and (throttle := _over_auth_rate(request)):
        # It would tell whether an email address has an account: limited per address, like the API.
        form.add_error(None, _too_many_attempts(throttle))
        return _refused(render(request, "accounts/register.html", {"form": form}, status=429), throttle)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_register(**form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        except PermissionDenied as error:
            form.add_error(None, str(error))
        else:
            login(request, user, backend="accounts.backends.AccountBackend")
            messages.success(request, f"Welcome, {user.username}! Your account is ready.")
            return redirect("dashboard")
    return render(request, "accounts/register.html", {"form": form})


@login_required
@require_safe
def profile(request):
    """Who the signed-in user is here: their roles, how they sign in, and where to manage each."""
    user = request.user
    context = {
        "roles": roles_of(user),
        "sso_accounts": user.socialaccount_set.all(),
        "sso_enabled": bool(settings.SOCIALACCOUNT_PROVIDERS["openid_connect"]["APPS"]),
        "authenticators": sorted({a.get_type_display() for a in user.authenticator_set.all()}),
        "api_key_count": ApiKey.objects.filter(user=user, revoked_at__isnull=True).count(),
    }
    return render(request, "accounts/profile.html", context)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change; then nothing issued under the old password works but this session."""

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("password-changed")

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not request.user.has_usable_password():
            # SSO users and service accounts have no password here to change.
            return render(request, "accounts/password_change.html", {"no_password": True})
        return super().dispatch(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        # The form checks the old password: a stolen session must not be a way to guess it.
        if throttle := _over_auth_rate(request):
            form = self.get_form()
            form.add_error(None, _too_many_attempts(throttle))
            return _refused(self.render_to_response(self.get_context_data(form=form), status=429), throttle)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)  # saves the password, keeps this session (with a new key)
        services.user_password_changed(user=form.user, keep_session_key=self.request.session.session_key)
        return response


def not_offered(request, *args, **kwargs):
    """allauth pages the registry does not offer (it sends no mail): a 404 like any unknown page."""
    raise Http404("This page is not offered here: the registry sends no mail. Ask an administrator.")


def locked_out(request, original_response=None, credentials=None):
    """django-axes' lockout answer (AXES_LOCKOUT_CALLABLE), status 429 with Retry-After: the login page
    with the reason for people, ``{"detail": ...}`` for API clients."""
    message = services.lockout_message()
    if request.path.startswith("/api/v1/") or not request.accepts("text/html"):
        response = JsonResponse({"detail": message}, status=429)
    else:
        context = {"form": LoginForm(request=request), "lockout": message}
        response = render(request, "account/login.html", context, status=429)
    response["Retry-After"] = str(services.lockout_seconds())
    return response


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the key is for, e.g. the pipeline that uses it.")
    scope = forms.ChoiceField(choices=ApiKey.Scope.choices, initial=ApiKey.Scope.READ)
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at",
        help_text="Optional, e.g. 2027-06-30 18:00 (server time). Empty: never expires.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )


@never_cache  # the answer to a creation holds the full key: no cache may keep it
@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request):
    """The signed-in user's keys and a form to create one; a creation answers this page (200, not a
    redirect) with the new key shown once, so the key is never stored in a session or a URL."""
    form = ApiKeyForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            key, raw = services.api_key_create(actor=request.user, user=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            created = {"key": key, "raw": raw}
            form = ApiKeyForm()
    keys = ApiKey.objects.filter(user=request.user, revoked_at__isnull=True)
    return render(request, "accounts/api_keys.html", {"form": form, "keys": keys, "created": created})


@login_required
@require_http_methods(["GET", "POST"])
def api_key_revoke(request, pk: int):
    """GET: the confirmation; POST: revoke (only the user's own live keys are found here)."""
    key = get_object_or_404(ApiKey, pk=pk, user=request.user, revoked_at__isnull=True)
    if request.method == "POST":
        services.api_key_revoke(actor=request.user, key=key)
        messages.success(request, f"API key “{key.name}” (mlr_{key.prefix}_…) was revoked; it no longer works.")
        return redirect("api-keys")
    return render(request, "accounts/api_key_revoke.html", {"key": key})
