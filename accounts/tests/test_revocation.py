"""Sessions and tokens die with the password; a deactivated account loses every credential.

A password change (the page, the admin) blacklists every outstanding refresh token of the user (also the
ones rotated from an older token), makes their access tokens fail at once, and ends their other sessions
while keeping the one that made the change. Deactivating a user in the admin does the same, and their
signed download URLs stop working.
"""

import io

import pytest
from django.contrib.sessions.models import Session
from django.core import signing
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.tests.factories import TEST_PASSWORD
from mlmodels import services as model_services
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-77"


def tokens_for(user) -> dict:
    response = APIClient().post("/api/v1/auth/login", {"username": user.username, "password": TEST_PASSWORD})
    assert response.status_code == 200, response.content
    return response.json()


def refresh(token: str):
    return APIClient().post("/api/v1/auth/refresh", {"refresh": token}, format="json")


def me(access: str):
    return APIClient().get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {access}")


def signed_in(client) -> bool:
    return client.get("/").status_code == 200


def sessions_of(user) -> list[str]:
    return [s.session_key for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(user.pk)]


def change_password_on_the_page(client):
    response = client.post(
        "/accounts/password/",
        {"old_password": TEST_PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content
    assert response["Location"] == "/accounts/password/done/"
    return response


def change_form(user, **changes) -> dict:
    """What the admin's change form of ``user`` posts, with ``changes``."""
    data = {
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": "on",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


# --- password change on the page ---------------------------------------------------------------------


def test_a_password_change_on_the_page_revokes_every_refresh_token(user):
    laptop = tokens_for(user)
    ci_job = tokens_for(user)
    rotated = refresh(ci_job["refresh"]).json()  # rotated before the change: a live token of its own
    browser = Client()
    browser.force_login(user)

    change_password_on_the_page(browser)

    assert refresh(laptop["refresh"]).status_code == 401
    assert refresh(rotated["refresh"]).status_code == 401
    outstanding = OutstandingToken.objects.filter(user=user)
    assert outstanding.count() == BlacklistedToken.objects.filter(token__user=user).count() == 3


def test_a_password_change_stops_the_users_access_tokens_at_once(user):
    access = tokens_for(user)["access"]
    assert me(access).status_code == 200
    browser = Client()
    browser.force_login(user)

    change_password_on_the_page(browser)

    response = me(access)
    assert response.status_code == 401
    assert "password" in response.json()["detail"].lower()


def test_after_a_password_change_the_new_password_gives_working_tokens(user):
    browser = Client()
    browser.force_login(user)
    change_password_on_the_page(browser)

    response = APIClient().post("/api/v1/auth/login", {"username": user.username, "password": NEW_PASSWORD})

    assert response.status_code == 200
    assert me(response.json()["access"]).status_code == 200
    assert refresh(response.json()["refresh"]).status_code == 200


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(user, other_user):
    laptop, phone, colleague = Client(), Client(), Client()
    laptop.force_login(user)
    phone.force_login(user)
    colleague.force_login(other_user)

    change_password_on_the_page(laptop)

    # The other session is gone from the store (not merely unusable until it is next used).
    assert sessions_of(user) == [laptop.session.session_key]
    assert phone.cookies["sessionid"].value not in set(Session.objects.values_list("session_key", flat=True))
    assert signed_in(laptop)
    assert not signed_in(phone)
    assert signed_in(colleague)


def test_a_failed_password_change_revokes_nothing(user):
    tokens = tokens_for(user)
    browser = Client()
    browser.force_login(user)

    response = browser.post(
        "/accounts/password/", {"old_password": "not-it", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )

    assert response.status_code == 200
    assert refresh(tokens["refresh"]).status_code == 200
    assert me(tokens["access"]).status_code == 200


def test_a_refresh_token_minted_before_a_password_change_elsewhere_is_refused(user):
    """Any path that changes the password (manage.py changepassword, a shell): the tokens carry its hash."""
    tokens = tokens_for(user)
    user.set_password(NEW_PASSWORD)
    user.save()

    assert refresh(tokens["refresh"]).status_code == 401
    assert me(tokens["access"]).status_code == 401


# --- the admin --------------------------------------------------------------------------------------


def test_a_password_change_in_the_admin_revokes_the_users_tokens_and_sessions(superuser_client, user):
    tokens = tokens_for(user)
    browser = Client()
    browser.force_login(user)

    response = superuser_client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 302, response.content
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert refresh(tokens["refresh"]).status_code == 401
    assert BlacklistedToken.objects.filter(token__user=user).count() == 1
    assert sessions_of(user) == []
    assert signed_in(superuser_client)


def test_an_admin_changing_their_own_password_in_the_admin_stays_signed_in(superuser_client, superuser):
    response = superuser_client.post(
        reverse("admin:auth_user_password_change", args=[superuser.pk]),
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert signed_in(superuser_client)
    assert sessions_of(superuser) == [superuser_client.session.session_key]


@pytest.fixture
def signed_url(user):
    model = MLModelFactory(owner=user, name="churn")
    data = io.BytesIO(b"weights " * 50)
    data.name = "weights.bin"
    key = model_services.model_attach_file(model=model, actor=user, file=data).file
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(f"/api/v1/files/presigned-url/{key}")
    assert response.status_code == 200
    return response.json()["url"].removeprefix("http://testserver")


def needs_embedded_storage(settings):
    if settings.USE_S3:
        pytest.skip("S3 serves its own presigned URLs; they cannot be revoked before they expire")


def test_deactivating_a_user_in_the_admin_revokes_tokens_sessions_and_signed_urls(
    superuser_client, user, settings, signed_url
):
    needs_embedded_storage(settings)
    tokens = tokens_for(user)
    browser = Client()
    browser.force_login(user)
    assert APIClient().get(signed_url).status_code == 200

    response = superuser_client.post(
        reverse("admin:accounts_user_change", args=[user.pk]), change_form(user, is_active=None)
    )

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    user.refresh_from_db()
    assert not user.is_active
    assert refresh(tokens["refresh"]).status_code == 401
    assert BlacklistedToken.objects.filter(token__user=user).count() == 1
    assert sessions_of(user) == []
    download = APIClient().get(signed_url)
    assert download.status_code == 403
    assert "no longer active" in download.json()["detail"]
    # Reactivating the account brings none of the old credentials back.
    user.is_active = True
    user.save()
    assert not signed_in(browser)
    assert refresh(tokens["refresh"]).status_code == 401


def test_an_admin_edit_that_keeps_a_user_active_revokes_nothing(superuser_client, user):
    tokens = tokens_for(user)

    response = superuser_client.post(
        reverse("admin:accounts_user_change", args=[user.pk]), change_form(user, first_name="Ada")
    )

    assert response.status_code == 302
    assert refresh(tokens["refresh"]).status_code == 200


# --- signed download URLs ---------------------------------------------------------------------------


def test_a_signed_url_names_the_user_who_asked_for_it(user, signed_url, settings):
    needs_embedded_storage(settings)
    from mlmodels.storage import key_from_download_token

    token = signed_url.rsplit("/", 1)[-1]

    key, user_id = key_from_download_token(token, max_age=60)

    assert key.startswith(f"users/{user.pk}/")
    assert user_id == user.pk


def test_a_signed_url_of_a_user_deactivated_any_way_is_refused(user, signed_url, settings):
    needs_embedded_storage(settings)
    user.is_active = False
    user.save()

    response = APIClient().get(signed_url)

    assert response.status_code == 403
    assert "no longer active" in response.json()["detail"]


def test_a_signed_url_of_a_deleted_user_is_refused(user, signed_url, settings):
    needs_embedded_storage(settings)
    token = signed_url.rsplit("/", 1)[-1]
    payload = signing.loads(token, salt="mlmodels.artifact-download")
    forged = signing.dumps({**payload, "user": user.pk + 1000}, salt="mlmodels.artifact-download", compress=True)

    response = APIClient().get(f"/api/v1/files/signed/{forged}")

    assert response.status_code == 403


def test_a_signed_url_that_names_no_user_is_refused(user, signed_url, settings):
    needs_embedded_storage(settings)
    token = signed_url.rsplit("/", 1)[-1]
    key = signing.loads(token, salt="mlmodels.artifact-download")["key"]
    unbound = signing.dumps(key, salt="mlmodels.artifact-download", compress=True)  # the earlier form

    response = APIClient().get(f"/api/v1/files/signed/{unbound}")

    assert response.status_code == 403
    assert "not valid" in response.json()["detail"]


# --- the service ------------------------------------------------------------------------------------


def test_revoking_credentials_leaves_other_users_alone(user, other_user):
    mine = RefreshToken.for_user(user)
    theirs = RefreshToken.for_user(other_user)
    theirs_session = Client()
    theirs_session.force_login(other_user)

    services.user_revoke_credentials(user=user)

    assert refresh(str(mine)).status_code == 401
    assert refresh(str(theirs)).status_code == 200
    assert signed_in(theirs_session)


def test_revoking_twice_is_harmless(user):
    token = RefreshToken.for_user(user)

    services.user_revoke_credentials(user=user)
    services.user_revoke_credentials(user=user)

    assert BlacklistedToken.objects.filter(token__jti=token["jti"]).count() == 1
