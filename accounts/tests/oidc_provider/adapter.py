import os

from allauth.idp.oidc.adapter import DefaultOIDCAdapter


class GroupsOIDCAdapter(DefaultOIDCAdapter):
    """Adds a `groups` claim to the ID token and userinfo, like Keycloak's group membership mapper."""

    def get_issuer(self) -> str:
        # Fixed, so `iss` does not follow the Host header a client happens to use (localhost or 127.0.0.1).
        return os.environ.get("OIDC_PROVIDER_ISSUER") or super().get_issuer()

    def get_claims(self, purpose, user, client, scopes, email=None, **kwargs):
        claims = super().get_claims(purpose, user, client, scopes, email=email, **kwargs)
        claims["groups"] = sorted(user.groups.values_list("name", flat=True))
        return claims
