"""The auth API (/api/v1/auth/): register, login, refresh, logout, me; JWT tampering; throttling; session use."""

import base64
import json
from datetime import timedelta

import jwt
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken
from rest_framework_simplejwt.utils import aware_utcnow

from accounts.api import LoginView, RegisterView
from accounts.tests.factories import TEST_PASSWORD, UserFactory
from registry.api.throttles import AuthRateThrottle, UserRateThrottle

pytestmark = pytest.mark.django_db

User = get_user_model()

AUTH = "/api/v1/auth/"
REGISTER = AUTH + "register"
LOGIN = AUTH + "login"
REFRESH = AUTH + "refresh"
LOGOUT = AUTH + "logout"
ME = AUTH + "me"

USER_FIELDS = {"id", "username", "email", "is_superuser", "is_service_account", "roles", "date_joined"}
STRONG_PASSWORD = "correct horse battery staple 42"
ANOTHER_KEY = "an-entirely-different-signing-key-that-is-long-enough-for-hs256-0123456789"


# --- helpers --------------------------------------------------------------------------------------------------------


def bearer(token) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def login(client, **data):
    return client.post(LOGIN, data, format="json")


def refresh(client, token, **extra):
    return client.post(REFRESH, {"refresh": str(token)}, format="json", **extra)


def me(client, token):
    return client.get(ME, **bearer(token))


def tokens_for(client, user) -> dict:
    response = login(client, username=user.username, password=TEST_PASSWORD)
    assert response.status_code == 200, response.content
    return response.json()


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def resign(token: str, key: str, **changes) -> str:
    """The token's claims (with ``changes``) signed again, with HS256 and ``key``."""
    return jwt.encode({**claims(token), **changes}, key, algorithm="HS256")


def b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


def unsigned(token: str, alg: str = "none") -> str:
    """The token's claims under an ``alg: none`` header and an empty signature."""
    return f"{b64url({'alg': alg, 'typ': 'JWT'})}.{b64url(claims(token))}."


def assert_detail(response, status: int) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("detail"), str)
    assert body["detail"]
    return body["detail"]


def assert_field_errors(response, *fields: str) -> dict:
    assert response.status_code == 400, response.content
    body = response.json()
    for field in fields:
        assert isinstance(body.get(field), list), body
        assert body[field], body
        assert all(isinstance(message, str) and message for message in body[field]), body
    return body


# --- register -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [REGISTER, REGISTER + "/"])
def test_register_creates_an_account_and_returns_the_user_without_the_password(api_client, path):
    response = api_client.post(
        path, {"username": "ada", "email": "ada@example.com", "password": STRONG_PASSWORD}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == USER_FIELDS
    created = User.objects.get(username="ada")
    assert body["id"] == created.pk
    assert body["username"] == "ada"
    assert body["email"] == "ada@example.com"
    assert body["is_superuser"] is False
    assert body["date_joined"]
    assert STRONG_PASSWORD not in response.content.decode()
    assert created.password != STRONG_PASSWORD
    assert created.check_password(STRONG_PASSWORD)
    assert created.is_active and not created.is_staff and not created.is_superuser


def test_registered_user_can_log_in_with_the_chosen_password(api_client):
    api_client.post(REGISTER, {"username": "ada", "email": "ada@example.com", "password": STRONG_PASSWORD})

    response = login(api_client, username="ada", password=STRONG_PASSWORD)

    assert response.status_code == 200, response.content
    assert me(api_client, response.json()["access"]).json()["username"] == "ada"


@pytest.mark.parametrize("username", ["owner", "OWNER", "Owner"])
def test_register_refuses_a_username_taken_in_any_letter_case(api_client, user, username):
    response = api_client.post(
        REGISTER, {"username": username, "email": "new@example.com", "password": STRONG_PASSWORD}, format="json"
    )

    body = assert_field_errors(response, "username")
    assert "email" not in body and "password" not in body
    assert User.objects.count() == 1


@pytest.mark.parametrize("email", ["owner@example.com", "OWNER@EXAMPLE.COM", "Owner@Example.com"])
def test_register_refuses_an_email_taken_in_any_letter_case(api_client, user, email):
    response = api_client.post(
        REGISTER, {"username": "newcomer", "email": email, "password": STRONG_PASSWORD}, format="json"
    )

    body = assert_field_errors(response, "email")
    assert "username" not in body and "__all__" not in body and "non_field_errors" not in body
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    "password",
    [
        "Xy7!q",  # too short
        "password123",  # common
        "83920571629405",  # entirely numeric
        "marguerite-duras",  # too similar to the username
    ],
)
def test_register_refuses_weak_passwords(api_client, password):
    response = api_client.post(
        REGISTER, {"username": "marguerite-duras", "email": "md@example.com", "password": password}, format="json"
    )

    body = assert_field_errors(response, "password")
    assert password not in json.dumps(body)
    assert not User.objects.filter(username="marguerite-duras").exists()


def test_register_names_every_missing_field(api_client):
    response = api_client.post(REGISTER, {}, format="json")

    assert_field_errors(response, "username", "email", "password")
    assert User.objects.count() == 0


def test_register_refuses_an_invalid_email(api_client):
    response = api_client.post(
        REGISTER, {"username": "ada", "email": "not-an-email", "password": STRONG_PASSWORD}, format="json"
    )

    assert_field_errors(response, "email")
    assert User.objects.count() == 0


def test_register_refuses_unknown_fields_naming_them(api_client):
    response = api_client.post(
        REGISTER,
        {
            "username": "mallory",
            "email": "mallory@example.com",
            "password": STRONG_PASSWORD,
            "is_superuser": True,
            "is_staff": True,
        },
        format="json",
    )

    assert_field_errors(response, "is_superuser", "is_staff")
    assert not User.objects.filter(username="mallory").exists()


def test_register_answers_403_when_registration_is_closed(api_client, settings):
    settings.REGISTRATION_OPEN = False

    response = api_client.post(
        REGISTER, {"username": "ada", "email": "ada@example.com", "password": STRONG_PASSWORD}, format="json"
    )

    assert_detail(response, 403)
    assert not User.objects.filter(username="ada").exists()


# --- login ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [LOGIN, LOGIN + "/"])
def test_login_by_username_returns_a_bearer_token_pair_for_that_user(api_client, user, path):
    response = api_client.post(path, {"username": "owner", "password": TEST_PASSWORD}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh", "token_type"}
    assert body["token_type"] == "bearer"
    assert claims(body["access"])["token_type"] == "access"
    assert claims(body["refresh"])["token_type"] == "refresh"
    assert claims(body["access"])["user_id"] == str(user.pk)
    assert me(api_client, body["access"]).json()["id"] == user.pk
    assert refresh(api_client, body["refresh"]).status_code == 200


@pytest.mark.parametrize("email", ["owner@example.com", "OWNER@example.COM"])
def test_login_by_email_in_any_letter_case(api_client, user, email):
    response = login(api_client, email=email, password=TEST_PASSWORD)

    assert response.status_code == 200, response.content
    assert me(api_client, response.json()["access"]).json()["username"] == "owner"


@pytest.mark.parametrize("email", ["owner@example.com", "Owner@Example.com"])
def test_login_accepts_an_email_in_the_username_field(api_client, user, email):
    response = login(api_client, username=email, password=TEST_PASSWORD)

    assert response.status_code == 200, response.content
    assert me(api_client, response.json()["access"]).json()["username"] == "owner"


@pytest.mark.parametrize("identity", [{"username": "owner"}, {"email": "owner@example.com"}])
def test_login_with_a_wrong_password_is_401(api_client, user, identity):
    response = login(api_client, **identity, password="not-the-password")

    assert_detail(response, 401)
    assert "access" not in response.json() and "refresh" not in response.json()


def test_login_of_an_unknown_user_looks_like_a_wrong_password(api_client, user):
    wrong_password = login(api_client, username="owner", password="not-the-password")
    unknown_user = login(api_client, username="nobody", password=TEST_PASSWORD)
    unknown_email = login(api_client, email="nobody@example.com", password=TEST_PASSWORD)

    assert_detail(unknown_user, 401)
    assert_detail(unknown_email, 401)
    assert unknown_user.json() == wrong_password.json() == unknown_email.json()


def test_login_of_a_deactivated_user_is_401(api_client):
    UserFactory(username="gone", is_active=False)

    response = login(api_client, username="gone", password=TEST_PASSWORD)

    assert_detail(response, 401)


def test_login_without_username_or_email_is_400(api_client, user):
    response = login(api_client, password=TEST_PASSWORD)

    assert_field_errors(response, "username")


def test_login_without_password_is_400(api_client, user):
    response = login(api_client, username="owner")

    assert_field_errors(response, "password")


def test_login_refuses_unknown_fields_naming_them(api_client, user):
    response = login(api_client, username="owner", password=TEST_PASSWORD, remember_me=True)

    body = assert_field_errors(response, "remember_me")
    assert "access" not in body


def test_login_with_malformed_json_is_a_json_400(api_client, user):
    response = api_client.post(LOGIN, '{"username": "owner", "password": ', content_type="application/json")

    assert_detail(response, 400)


def test_login_answers_get_with_a_json_405(api_client):
    response = api_client.get(LOGIN, HTTP_ACCEPT="application/json")

    assert_detail(response, 405)


# --- refresh --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [REFRESH, REFRESH + "/"])
def test_refresh_returns_a_new_access_and_a_new_refresh_token(api_client, user, path):
    old = tokens_for(api_client, user)

    response = api_client.post(path, {"refresh": old["refresh"]}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert body["refresh"] != old["refresh"]
    assert claims(body["refresh"])["jti"] != claims(old["refresh"])["jti"]
    assert me(api_client, body["access"]).json()["id"] == user.pk
    assert refresh(api_client, body["refresh"]).status_code == 200


def test_refresh_token_cannot_be_reused_after_rotation(api_client, user):
    old = tokens_for(api_client, user)["refresh"]
    first = refresh(api_client, old)
    assert first.status_code == 200

    reused = refresh(api_client, old)

    assert_detail(reused, 401)
    assert "access" not in reused.json()
    assert refresh(api_client, first.json()["refresh"]).status_code == 200


def test_refresh_without_a_token_is_400(api_client):
    response = api_client.post(REFRESH, {}, format="json")

    assert_field_errors(response, "refresh")


@pytest.mark.parametrize("garbage", ["not-a-token", "a.b.c", ""])
def test_refresh_with_garbage_is_refused(api_client, garbage):
    response = api_client.post(REFRESH, {"refresh": garbage}, format="json")

    if garbage:
        assert_detail(response, 401)
    else:
        assert_field_errors(response, "refresh")


# --- logout ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [LOGOUT, LOGOUT + "/"])
def test_refresh_token_stops_working_after_logout(api_client, user, path):
    tokens = tokens_for(api_client, user)

    response = api_client.post(path, {"refresh": tokens["refresh"]}, format="json", **bearer(tokens["access"]))

    assert response.status_code == 205, response.content
    assert response.content == b""
    assert_detail(refresh(api_client, tokens["refresh"]), 401)


def test_logout_leaves_the_users_other_sessions_working(api_client, user):
    laptop = tokens_for(api_client, user)
    ci_job = tokens_for(api_client, user)

    response = api_client.post(LOGOUT, {"refresh": laptop["refresh"]}, format="json", **bearer(laptop["access"]))

    assert response.status_code == 205
    assert refresh(api_client, ci_job["refresh"]).status_code == 200


def test_logout_needs_a_bearer_token(api_client, user):
    tokens = tokens_for(api_client, user)

    response = api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")

    assert_detail(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert refresh(api_client, tokens["refresh"]).status_code == 200


def test_logout_refuses_another_users_refresh_token(api_client, user, other_user):
    mine = tokens_for(api_client, user)
    theirs = tokens_for(api_client, other_user)

    response = api_client.post(LOGOUT, {"refresh": theirs["refresh"]}, format="json", **bearer(mine["access"]))

    assert_field_errors(response, "refresh")
    assert refresh(api_client, theirs["refresh"]).status_code == 200


@pytest.mark.parametrize("kind", ["garbage", "access token"])
def test_logout_with_something_other_than_a_refresh_token_is_400(api_client, user, kind):
    tokens = tokens_for(api_client, user)
    sent = "not-a-token" if kind == "garbage" else tokens["access"]

    response = api_client.post(LOGOUT, {"refresh": sent}, format="json", **bearer(tokens["access"]))

    assert_field_errors(response, "refresh")
    assert refresh(api_client, tokens["refresh"]).status_code == 200


def test_logout_without_a_refresh_token_is_400(api_client, user):
    tokens = tokens_for(api_client, user)

    response = api_client.post(LOGOUT, {}, format="json", **bearer(tokens["access"]))

    assert_field_errors(response, "refresh")


# --- me -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["user", "superuser"])
def test_me_returns_the_current_user(client_for, request, who):
    account = request.getfixturevalue(who)

    response = client_for(account).get(ME)

    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": account.pk,
        "username": account.username,
        "email": account.email,
        "is_superuser": account.is_superuser,
        "is_service_account": False,
        "roles": ["superuser", "approver"] if who == "superuser" else [],
        "date_joined": response.json()["date_joined"],
    }
    assert response.json()["is_superuser"] is (who == "superuser")


def test_me_as_anonymous_is_401(api_client):
    response = api_client.get(ME)

    assert_detail(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer ", "Bearer not-a-token", "Bearer a.b.c", "Bearer x y", "Basic b3duZXI6eA=="]
)
def test_me_with_a_malformed_authorization_header_is_401(api_client, user, header):
    response = api_client.get(ME, HTTP_AUTHORIZATION=header)

    assert_detail(response, 401)


# --- JWT tampering --------------------------------------------------------------------------------------------------


def test_access_token_with_a_wrong_signature_is_401(api_client, user):
    access = str(AccessToken.for_user(user))
    # The re-signing itself yields a valid token when the real key is used.
    assert me(api_client, resign(access, jwt_settings.SIGNING_KEY)).status_code == 200

    response = me(api_client, resign(access, ANOTHER_KEY))

    assert_detail(response, 401)


def test_access_token_with_its_user_swapped_keeps_no_valid_signature(api_client, user, other_user):
    header, _, signature = str(AccessToken.for_user(user)).split(".")
    forged_claims = {**claims(str(AccessToken.for_user(user))), "user_id": str(other_user.pk)}

    response = me(api_client, f"{header}.{b64url(forged_claims)}.{signature}")

    assert_detail(response, 401)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_access_token_with_alg_none_is_401(api_client, user, alg):
    response = me(api_client, unsigned(str(AccessToken.for_user(user)), alg))

    assert_detail(response, 401)


@pytest.mark.parametrize("alg", ["none", "None"])
def test_refresh_token_with_alg_none_is_401(api_client, user, alg):
    response = refresh(api_client, unsigned(str(RefreshToken.for_user(user)), alg))

    assert_detail(response, 401)
    assert "access" not in response.json()


def test_refresh_token_with_a_wrong_signature_is_401(api_client, user):
    token = str(RefreshToken.for_user(user))

    response = refresh(api_client, resign(token, ANOTHER_KEY))

    assert_detail(response, 401)
    assert "access" not in response.json()


def test_expired_access_token_is_401(api_client, user):
    live = AccessToken.for_user(user)
    live.set_exp(from_time=aware_utcnow(), lifetime=timedelta(minutes=5))
    assert me(api_client, live).status_code == 200
    expired = AccessToken.for_user(user)
    expired.set_exp(from_time=aware_utcnow() - timedelta(hours=1), lifetime=timedelta(minutes=30))

    response = me(api_client, expired)

    assert_detail(response, 401)


def test_expired_refresh_token_is_401(api_client, user):
    expired = RefreshToken.for_user(user)
    expired.set_exp(from_time=aware_utcnow() - timedelta(days=8), lifetime=timedelta(days=7))

    response = refresh(api_client, expired)

    assert_detail(response, 401)
    assert "access" not in response.json()


def test_access_token_sent_to_refresh_is_401(api_client, user):
    tokens = tokens_for(api_client, user)

    response = refresh(api_client, tokens["access"])

    assert_detail(response, 401)
    assert "access" not in response.json()


def test_refresh_token_used_as_a_bearer_access_token_is_401(api_client, user):
    tokens = tokens_for(api_client, user)

    response = me(api_client, tokens["refresh"])

    assert_detail(response, 401)


def test_deactivated_users_access_token_stops_working(api_client, user):
    access = tokens_for(api_client, user)["access"]
    assert me(api_client, access).status_code == 200
    user.is_active = False
    user.save()

    response = me(api_client, access)

    assert_detail(response, 401)


def test_deactivated_users_refresh_token_stops_working(api_client, user):
    token = tokens_for(api_client, user)["refresh"]
    user.is_active = False
    user.save()

    response = refresh(api_client, token)

    assert_detail(response, 401)
    assert "access" not in response.json()


def test_deleted_users_refresh_token_is_401_not_500(api_client, user):
    token = tokens_for(api_client, user)["refresh"]
    user.delete()

    response = refresh(api_client, token)

    assert_detail(response, 401)
    assert "access" not in response.json()


def test_deleted_users_access_token_is_401(api_client, user):
    access = tokens_for(api_client, user)["access"]
    user.delete()

    response = me(api_client, access)

    assert_detail(response, 401)


# --- throttling -----------------------------------------------------------------------------------------------------


def assert_throttled(response, max_wait: int = 60) -> None:
    assert_detail(response, 429)
    assert 1 <= int(response["Retry-After"]) <= max_wait


def test_login_and_register_use_the_configured_auth_rate():
    assert LoginView.throttle_classes == [AuthRateThrottle]
    assert RegisterView.throttle_classes == [AuthRateThrottle]
    assert AuthRateThrottle.scope == "auth"
    assert AuthRateThrottle().rate == django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["auth"]


def test_login_is_throttled_at_the_configured_auth_rate(api_client, user):
    allowed, _ = AuthRateThrottle().parse_rate(django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["auth"])

    for _ in range(allowed):
        assert login(api_client, username="owner", password=TEST_PASSWORD).status_code == 200

    assert_throttled(login(api_client, username="owner", password=TEST_PASSWORD), max_wait=86400)


def test_login_is_throttled_per_client_address(api_client, user, monkeypatch):
    monkeypatch.setattr(AuthRateThrottle, "rate", "3/minute", raising=False)
    attacker = {"REMOTE_ADDR": "198.51.100.7"}

    for _ in range(3):
        response = api_client.post(LOGIN, {"username": "owner", "password": TEST_PASSWORD}, format="json", **attacker)
        assert response.status_code == 200

    assert_throttled(api_client.post(LOGIN, {"username": "owner", "password": "a-guess"}, format="json", **attacker))
    # Even the right password waits: guessing cannot continue from that address.
    assert_throttled(
        api_client.post(LOGIN, {"username": "owner", "password": TEST_PASSWORD}, format="json", **attacker)
    )
    # Another client address has its own budget.
    other = api_client.post(
        LOGIN, {"username": "owner", "password": TEST_PASSWORD}, format="json", REMOTE_ADDR="203.0.113.9"
    )
    assert other.status_code == 200


def test_login_throttle_cannot_be_dodged_with_a_forged_x_forwarded_for(api_client, user, monkeypatch):
    monkeypatch.setattr(AuthRateThrottle, "rate", "2/minute", raising=False)

    def attempt(n: int):
        return api_client.post(
            LOGIN,
            {"username": "owner", "password": TEST_PASSWORD},
            format="json",
            REMOTE_ADDR="198.51.100.7",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )

    assert attempt(1).status_code == 200
    assert attempt(2).status_code == 200

    assert_throttled(attempt(3))


def test_register_is_throttled_per_client_address(api_client, monkeypatch):
    monkeypatch.setattr(AuthRateThrottle, "rate", "2/minute", raising=False)

    for n in range(2):
        data = {"username": f"bot{n}", "email": f"bot{n}@example.com", "password": STRONG_PASSWORD}
        assert api_client.post(REGISTER, data, format="json").status_code == 201

    data = {"username": "bot9", "email": "bot9@example.com", "password": STRONG_PASSWORD}
    assert_throttled(api_client.post(REGISTER, data, format="json"))
    assert not User.objects.filter(username="bot9").exists()


def test_me_is_throttled_per_user(client_for, user, other_user, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "rate", "2/minute", raising=False)
    busy = client_for(user)

    assert busy.get(ME).status_code == 200
    assert busy.get(ME).status_code == 200
    assert_throttled(busy.get(ME))
    # Same client address, another user: a budget of their own.
    assert client_for(other_user).get(ME).status_code == 200


# --- session auth and the browsable API -----------------------------------------------------------------------------


def test_the_browsable_apis_login_link_leads_to_the_apps_login_page_and_back(client):
    response = client.get("/api/auth/login/?next=/api/v1/models/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/api/v1/models/"


def test_session_user_gets_me_as_json(client, user):
    client.force_login(user)

    response = client.get(ME, HTTP_ACCEPT="application/json")

    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["id"] == user.pk
    assert response.json()["username"] == "owner"


def test_session_user_gets_me_in_the_browsable_api(client, user):
    client.force_login(user)

    response = client.get(ME, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"owner@example.com" in response.content


def test_session_post_without_csrf_token_is_refused(user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    token = str(RefreshToken.for_user(user))

    response = browser.post(LOGOUT, {"refresh": token}, content_type="application/json", HTTP_ACCEPT="application/json")

    detail = assert_detail(response, 403)
    assert "CSRF" in detail
    assert refresh(APIClient(), token).status_code == 200


def test_session_post_with_csrf_token_is_accepted(user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/")  # a page hands out the CSRF cookie
    token = str(RefreshToken.for_user(user))

    response = browser.post(
        LOGOUT,
        {"refresh": token},
        content_type="application/json",
        HTTP_ACCEPT="application/json",
        HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value,
    )

    assert response.status_code == 205, response.content
