import base64
import hashlib
import re
import secrets
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

import jwt
import pytest
import requests

REDIRECT_URI = "http://localhost:9/accounts/oidc/sso/login/callback/"
SCOPE = "openid profile email"


@pytest.fixture(scope="module")
def provider(oidc_provider):
    oidc_provider.register_redirect_uri(REDIRECT_URI)
    oidc_provider.set_user("ada", "pw-ada-123", "ada@example.com", ["ml-admins", "ml-viewers"])
    return oidc_provider


@pytest.fixture(scope="module")
def discovery(provider):
    return requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=5).json()


def hidden_inputs(html: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', tag))
        if attrs.get("type") == "hidden" and "name" in attrs:
            fields[attrs["name"]] = unescape(attrs.get("value", ""))
    return fields


def authorize(provider, discovery, session, username, password):
    """Runs the browser's half of the code flow; returns the callback's query and what the client sent."""
    verifier = secrets.token_urlsafe(48)
    sent = {
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "verifier": verifier,
    }
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    response = session.get(
        discovery["authorization_endpoint"],
        params={
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": SCOPE,
            "state": sent["state"],
            "nonce": sent["nonce"],
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        allow_redirects=False,
        timeout=5,
    )
    for _ in range(5):
        assert response.status_code in (200, 302), response.text
        if response.status_code == 200:
            login_url = response.url
            response = session.post(
                login_url,
                data={**hidden_inputs(response.text), "login": username, "password": password},
                headers={"Referer": login_url},
                allow_redirects=False,
                timeout=5,
            )
            continue
        location = urljoin(response.url, response.headers["Location"])
        if location.startswith(REDIRECT_URI):
            return parse_qs(urlsplit(location).query), sent
        response = session.get(location, allow_redirects=False, timeout=5)
    pytest.fail(f"no redirect to the client; last response {response.status_code}: {response.text[:500]}")


def test_discovery(provider, discovery):
    assert discovery["issuer"] == provider.issuer
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert discovery[endpoint].startswith(provider.issuer + "/")
    assert "code" in discovery["response_types_supported"]
    assert "RS256" in discovery["id_token_signing_alg_values_supported"]


def test_jwks_holds_an_rsa_key(discovery):
    keys = requests.get(discovery["jwks_uri"], timeout=5).json()["keys"]
    assert [key["kty"] for key in keys] == ["RSA"]
    assert keys[0]["kid"]


def test_authorization_code_flow(provider, discovery):
    session = requests.Session()
    query, sent = authorize(provider, discovery, session, "ada", "pw-ada-123")
    assert query["state"] == [sent["state"]]
    assert set(session.cookies.keys()) >= {"idp_sessionid", "idp_csrftoken"}

    tokens = requests.post(
        discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": sent["verifier"],
        },
        auth=(provider.client_id, provider.client_secret),
        timeout=5,
    )
    assert tokens.status_code == 200, tokens.text
    tokens = tokens.json()

    signing_key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(tokens["id_token"])
    claims = jwt.decode(
        tokens["id_token"], signing_key, algorithms=["RS256"], audience=provider.client_id, issuer=provider.issuer
    )
    assert claims["nonce"] == sent["nonce"]
    assert claims["preferred_username"] == "ada"
    assert claims["email"] == "ada@example.com"
    assert claims["email_verified"] is True
    assert claims["groups"] == ["ml-admins", "ml-viewers"]

    userinfo = requests.get(
        discovery["userinfo_endpoint"], headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=5
    ).json()
    assert userinfo["sub"] == claims["sub"]
    assert userinfo["email"] == "ada@example.com"
    assert userinfo["groups"] == ["ml-admins", "ml-viewers"]


def test_set_user_replaces_groups_and_email(provider, discovery):
    provider.set_user("bob", "pw-bob-123", "bob@example.com", ["ml-admins"])
    provider.set_user("bob", "pw-bob-456", "robert@example.com", ["ml-viewers"])
    query, sent = authorize(provider, discovery, requests.Session(), "bob", "pw-bob-456")
    tokens = requests.post(
        discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": sent["verifier"],
            "client_id": provider.client_id,
            "client_secret": provider.client_secret,
        },
        timeout=5,
    ).json()
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert (claims["email"], claims["groups"]) == ("robert@example.com", ["ml-viewers"])


def test_wrong_client_secret_is_refused(provider, discovery):
    query, sent = authorize(provider, discovery, requests.Session(), "ada", "pw-ada-123")
    response = requests.post(
        discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": sent["verifier"],
        },
        auth=(provider.client_id, "not-the-secret"),
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
