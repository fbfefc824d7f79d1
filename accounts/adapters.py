"""allauth's hooks: who may sign in how, and what an SSO sign-in changes; the rules are in services."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render

from accounts import services, sso


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return services.registration_open()

    def pre_authenticate(self, request, **credentials) -> None:
        # django-axes counts failed passwords (and locks out) at every door, this one included.
        return None

    def pre_login(self, request, user, **kwargs):
        refusal = services.local_sign_in_refusal(user, through_sso="sociallogin" in (kwargs.get("signal_kwargs") or {}))
        if refusal:
            messages.error(request, refusal)
            return redirect("login")
        return super().pre_login(request, user, **kwargs)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin) -> bool:
        # The IdP vouches for its users: registration_open() is about local accounts.
        return True

    def populate_user(self, request, sociallogin, data):
        user = super().populate_user(request, sociallogin, data)
        email = user.email or ""
        user.username = get_account_adapter(request).generate_unique_username(
            [data.get("username") or "", email.partition("@")[0], "user"]
        )
        if not email:
            # Every account has a unique address; an IdP that sends none gets one under a reserved domain.
            user.email = f"{user.username}@{services.SSO_EMAIL_DOMAIN}"
        return user

    def pre_social_login(self, request, sociallogin) -> None:
        sso.check_nonce(request, sociallogin)
        claims = sso.claims_of(sociallogin)
        if sociallogin.is_existing:
            # A deactivated user is refused next (allauth's pre_login): their account stays as it is.
            if sociallogin.user.is_active:
                services.sso_user_sync(user=sociallogin.user, claims=claims)
        elif refusal := services.sso_sign_up_refusal(claims, connecting=request.user):
            raise PermissionDenied(refusal)

    def on_authentication_error(self, request, provider, error=None, exception=None, extra_context=None):
        if isinstance(exception, PermissionDenied):
            # The registry's own refusals (above) say what is wrong; allauth's page would only say "failed".
            raise ImmediateHttpResponse(
                render(request, "socialaccount/authentication_error.html", {"reason": str(exception)}, status=403)
            )
        super().on_authentication_error(request, provider, error, exception, extra_context)

    def save_user(self, request, sociallogin, form=None):
        user = super().save_user(request, sociallogin, form)
        services.sso_user_sync(user=user, claims=sso.claims_of(sociallogin))
        return user
