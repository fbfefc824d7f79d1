import pytest
from django.contrib.auth import get_user_model

from accounts.tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def test_login_page_signs_in_and_goes_to_the_dashboard(client, user):
    assert client.get("/accounts/login/").status_code == 200

    response = client.post("/accounts/login/", {"login": user.username, "password": TEST_PASSWORD})

    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_login_page_takes_an_email_address_in_any_letter_case(client, user):
    response = client.post("/accounts/login/", {"login": user.email.upper(), "password": TEST_PASSWORD})

    assert response["Location"] == "/"


def test_login_with_a_wrong_password_shows_an_error(client, user):
    response = client.post("/accounts/login/", {"login": user.username, "password": "wrong"})

    assert response.status_code == 200
    assert b"The username and/or password you specified are not correct." in response.content


def test_logout_ends_the_session(client, user):
    client.force_login(user)

    response = client.post("/accounts/logout/")

    assert response["Location"] == "/accounts/login/"
    assert client.get("/").status_code == 302


def test_register_creates_an_account_and_signs_in(client):
    response = client.post(
        "/accounts/register/", {"username": "newbie", "email": "newbie@example.com", "password": "a-long-passphrase-1"}
    )

    assert response["Location"] == "/"
    assert get_user_model().objects.filter(username="newbie").exists()
    assert client.get("/").status_code == 200


def test_register_shows_inline_errors(client, user):
    response = client.post("/accounts/register/", {"username": "x", "email": user.email.upper(), "password": "123"})

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "email" in errors and "password" in errors


def test_register_page_is_closed_when_registration_is_off(client, settings):
    settings.REGISTRATION_OPEN = False

    response = client.get("/accounts/register/")

    assert response.status_code == 403
    assert b"Registration is closed" in response.content


def test_password_change(client, user):
    client.force_login(user)

    response = client.post(
        "/accounts/password/",
        {"old_password": TEST_PASSWORD, "new_password1": "another-long-pass-9", "new_password2": "another-long-pass-9"},
    )

    assert response["Location"] == "/accounts/password/done/"
    user.refresh_from_db()
    assert user.check_password("another-long-pass-9")


def test_navigation_shows_admin_only_to_superusers(client, user, superuser):
    client.force_login(user)
    assert b'href="/admin/"' not in client.get("/").content

    client.force_login(superuser)
    assert b'href="/admin/"' in client.get("/").content


def test_a_deactivated_users_session_stops_working(client, user):
    client.force_login(user)
    assert client.get("/").status_code == 200

    user.is_active = False
    user.save(update_fields=["is_active"])

    assert client.get("/")["Location"].startswith("/accounts/login/")
    assert client.get("/api/v1/auth/me", HTTP_ACCEPT="application/json").status_code == 401
