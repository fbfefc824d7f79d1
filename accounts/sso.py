"""Single sign-on with OpenID Connect: allauth's provider, with a nonce bound to each sign-in.

allauth's ``openid_connect`` provider checks the ``state`` of the callback but sends no ``nonce``, so
an ID token issued for another sign-in (a replayed or injected authorization code) would be taken.
This provider sends a fresh nonce with every authorization request, keeps it in the sign-in's state
(allauth's session-bound store), and ``check_nonce`` refuses an ID token that does not carry it back.
"""

from __future__ import annotations

import hmac
import secrets

from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from django.core.exceptions import PermissionDenied


class NonceOpenIDConnectProvider(OpenIDConnectProvider):
    # Its URLs (login, callback) are those of allauth's provider package, not of this module's.
    package = "allauth.socialaccount.providers.openid_connect"

    def redirect(self, request, process, next_url=None, data=None, **kwargs):
        nonce = secrets.token_urlsafe(32)
        auth_params = kwargs.pop("auth_params", None)
        auth_params = {**(self.get_auth_params() if auth_params is None else auth_params), "nonce": nonce}
        # Keyword arguments other than the auth parameters are stashed in the sign-in's state.
        return super().redirect(request, process, next_url, data, auth_params=auth_params, nonce=nonce, **kwargs)


def check_nonce(request, sociallogin) -> None:
    """Refuse (PermissionDenied: allauth shows its sign-in error page) a sign-in through this provider
    whose ID token lacks the nonce this sign-in sent."""
    if not isinstance(sociallogin.account.get_provider(request), NonceOpenIDConnectProvider):
        return
    expected = (sociallogin.state or {}).get("nonce")
    received = (sociallogin.account.extra_data.get("id_token") or {}).get("nonce")
    if not (isinstance(expected, str) and isinstance(received, str) and hmac.compare_digest(expected, received)):
        raise PermissionDenied("The identity provider's answer does not belong to this sign-in (nonce mismatch).")


def claims_of(sociallogin) -> dict:
    """What the IdP says of the user: the ID token's claims, with the userinfo answer's on top."""
    data = sociallogin.account.extra_data or {}
    return {**(data.get("id_token") or {}), **(data.get("userinfo") or {})}
