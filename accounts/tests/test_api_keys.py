"""API keys: created with a password or SSO sign-in and shown once, stored as hashes only, accepted as
a bearer token or a Basic password, scoped read or write, refused at once when revoked or expired."""

import base64
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.models import ApiKey
from accounts.tests.factories import UserFactory
from mlmodels.models import MLModel
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db

KEYS_URL = "/api/v1/auth/api-keys/"
KEY_SHAPE = re.compile(r"^mlr_[a-z0-9]{8}_[A-Za-z0-9_-]{43,}$")


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def basic(username: str, password: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{username}:{password}".encode()).decode())
    return client


def make_key(user, scope="write", **kwargs) -> tuple[ApiKey, str]:
    return services.api_key_create(actor=user, user=user, name=f"{scope}-key", scope=scope, **kwargs)


# --- create, list, revoke through the API ------------------------------------------------------------


def test_create_shows_the_key_once_and_the_list_never(owner_api):
    response = owner_api.post(KEYS_URL, {"name": "nightly", "scope": "read"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "name", "prefix", "scope", "created_at", "expires_at", "last_used_at", "key"}
    assert KEY_SHAPE.match(body["key"]) and body["key"].startswith(f"mlr_{body['prefix']}_")
    assert (body["name"], body["scope"], body["last_used_at"]) == ("nightly", "read", None)
    listed = owner_api.get(KEYS_URL)
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [body["id"]]
    assert "key" not in listed.json()["results"][0]
    assert body["key"] not in listed.content.decode()


def test_the_secret_is_in_no_column_only_its_hash(user):
    key, raw = make_key(user)
    secret = raw.split("_", 2)[2]

    row = ApiKey.objects.filter(pk=key.pk).values().get()
    assert all(secret not in str(value) and raw not in str(value) for value in row.values()), row
    assert row["secret_hash"] == services.api_key_hash(secret) and len(row["secret_hash"]) == 64
    assert len(secret) >= 43  # 32 random bytes, base64url: 256 bits


def test_create_refuses_bad_input(owner_api):
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    response = owner_api.post(KEYS_URL, {"name": "x", "scope": "admin", "expires_at": past}, format="json")
    assert response.status_code == 400 and "scope" in response.json()
    response = owner_api.post(KEYS_URL, {"name": "x", "scope": "read", "expires_at": past}, format="json")
    assert response.status_code == 400 and "expires_at" in response.json()
    response = owner_api.post(KEYS_URL, {"name": "x", "scope": "read", "secret": "mine"}, format="json")
    assert response.status_code == 400 and "secret" in response.json()


def test_list_shows_only_the_callers_live_keys(owner_api, user, other_user):
    mine, _ = make_key(user)
    revoked, _ = make_key(user)
    services.api_key_revoke(actor=user, key=revoked)
    make_key(other_user)

    assert [row["id"] for row in owner_api.get(KEYS_URL).json()["results"]] == [mine.pk]


def test_revoke_answers_204_and_the_next_request_is_refused(owner_api, user):
    key, raw = make_key(user)
    assert bearer(raw).get("/api/v1/auth/me").status_code == 200

    assert owner_api.delete(f"{KEYS_URL}{key.pk}/").status_code == 204

    response = bearer(raw).get("/api/v1/auth/me")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert owner_api.delete(f"{KEYS_URL}{key.pk}").status_code == 404  # without the slash too


def test_nobody_revokes_another_users_key(other_api, user):
    key, raw = make_key(user)

    assert other_api.delete(f"{KEYS_URL}{key.pk}/").status_code == 404
    assert bearer(raw).get("/api/v1/auth/me").status_code == 200


def test_anonymous_cannot_manage_keys(api_client, user):
    key, _ = make_key(user)
    assert api_client.get(KEYS_URL).status_code == 401
    assert api_client.post(KEYS_URL, {"name": "x", "scope": "read"}, format="json").status_code == 401
    assert api_client.delete(f"{KEYS_URL}{key.pk}/").status_code == 401


@pytest.mark.parametrize("scope", ["read", "write"])
@pytest.mark.parametrize("via", ["bearer", "basic"])
def test_no_key_can_create_list_or_revoke_keys(user, scope, via):
    key, raw = make_key(user, scope=scope)
    client = bearer(raw) if via == "bearer" else basic(user.username, raw)

    for response in (
        client.get(KEYS_URL),
        client.post(KEYS_URL, {"name": "more", "scope": "write"}, format="json"),
        client.delete(f"{KEYS_URL}{key.pk}/"),
    ):
        assert response.status_code == 403, response.content
    assert client.get(KEYS_URL).json()["detail"] == "API keys cannot manage API keys; sign in with your password."
    assert ApiKey.objects.filter(user=user, revoked_at__isnull=True).count() == 1


# --- signing in with a key -----------------------------------------------------------------------------


def test_bearer_and_basic_sign_in_as_the_keys_user(user):
    _, raw = make_key(user, scope="read")

    for client in (bearer(raw), basic(user.username, raw)):
        response = client.get("/api/v1/auth/me")
        assert response.status_code == 200, response.content
        assert response.json()["username"] == user.username


def test_basic_with_another_username_or_a_wrong_secret_is_401(user, other_user):
    _, raw = make_key(user)

    response = basic(other_user.username, raw).get("/api/v1/auth/me")
    assert response.status_code == 401 and "another user" in response.json()["detail"]
    assert bearer(raw[:-2] + "xx").get("/api/v1/auth/me").status_code == 401
    assert bearer("mlr_unknown0_" + "a" * 43).get("/api/v1/auth/me").json()["detail"] == "Invalid API key."


def test_basic_with_a_password_is_not_a_sign_in_here(user):
    # Basic auth takes keys only: a password is ignored (anonymous, 401), and nothing breaks.
    from accounts.tests.factories import TEST_PASSWORD

    assert basic(user.username, TEST_PASSWORD).get("/api/v1/auth/me").status_code == 401


def test_jwts_still_work_next_to_keys(owner_api, user):
    make_key(user)
    assert owner_api.get("/api/v1/auth/me").status_code == 200
    assert bearer("not-a-jwt").get("/api/v1/auth/me").status_code == 401


def test_read_key_reads_but_never_writes(user):
    model = MLModelFactory(owner=user)
    _, raw = make_key(user, scope="read")
    client = bearer(raw)

    assert client.get(f"/api/v1/models/{model.pk}/").status_code == 200
    for response in (
        client.post("/api/v1/models/", {"name": "new-model", "framework": "sklearn"}, format="json"),
        client.patch(f"/api/v1/models/{model.pk}/", {"description": "changed"}, format="json"),
        client.put(f"/api/v1/models/{model.pk}/", {"name": "renamed", "framework": "sklearn"}, format="json"),
        client.delete(f"/api/v1/models/{model.pk}/"),
        basic(user.username, raw).delete(f"/api/v1/models/{model.pk}/"),
    ):
        assert response.status_code == 403, response.content
        assert response.json()["detail"] == "This API key is read-only."
    model.refresh_from_db()
    assert model.description != "changed" and MLModel.objects.count() == 1


def test_write_key_writes(user):
    model = MLModelFactory(owner=user)
    _, raw = make_key(user, scope="write")
    client = bearer(raw)

    response = client.patch(f"/api/v1/models/{model.pk}/", {"description": "changed"}, format="json")
    assert response.status_code == 200, response.content
    assert client.delete(f"/api/v1/models/{model.pk}/").status_code == 204


def test_expired_key_is_refused_saying_so(user):
    key, raw = make_key(user, expires_at=timezone.now() + timedelta(hours=1))
    assert bearer(raw).get("/api/v1/auth/me").status_code == 200

    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = bearer(raw).get("/api/v1/auth/me")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_deactivating_the_user_ends_their_keys(user):
    _, raw = make_key(user)
    _, other_raw = make_key(user)

    user.is_active = False
    user.save()
    services.user_deactivated(user=user)

    assert bearer(raw).get("/api/v1/auth/me").status_code == 401
    assert ApiKey.objects.filter(user=user, revoked_at__isnull=True).count() == 0
    # Reactivating brings no key back.
    user.is_active = True
    user.save()
    assert bearer(other_raw).get("/api/v1/auth/me").json()["detail"] == "This API key has been revoked."


def test_an_inactive_users_key_is_refused_even_unrevoked(user):
    _, raw = make_key(user)
    type(user).objects.filter(pk=user.pk).update(is_active=False)  # not through the service

    response = bearer(raw).get("/api/v1/auth/me")
    assert response.status_code == 401 and "inactive" in response.json()["detail"]


def test_a_password_change_keeps_the_keys(user):
    _, raw = make_key(user)

    services.user_password_changed(user=user)

    assert bearer(raw).get("/api/v1/auth/me").status_code == 200


def test_last_used_at_is_written_at_most_once_a_minute(user):
    key, raw = make_key(user)
    client = bearer(raw)

    client.get("/api/v1/auth/me")
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as captured:
        client.get("/api/v1/auth/me")
    assert not [q for q in captured if q["sql"].startswith("UPDATE")], captured.captured_queries
    key.refresh_from_db()
    assert key.last_used_at == first

    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(seconds=61))
    client.get("/api/v1/auth/me")
    key.refresh_from_db()
    assert key.last_used_at > first


def test_only_the_user_or_a_superuser_creates_a_users_keys(user, other_user, superuser):
    service = UserFactory(username="pipeline", is_service_account=True)

    key, raw = services.api_key_create(actor=superuser, user=service, name="ci", scope="write")
    assert bearer(raw).get("/api/v1/auth/me").json()["username"] == "pipeline"
    with pytest.raises(services.PermissionDenied):
        services.api_key_create(actor=other_user, user=user, name="ci", scope="write")
    with pytest.raises(services.PermissionDenied):
        services.api_key_revoke(actor=other_user, key=key)


# --- query budget -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/auth/me/", "/api/v1/models/{model}/", "/api/v1/models/"])
def test_a_key_costs_no_more_queries_than_a_jwt(client_for, user, url):
    model = MLModelFactory(owner=user)
    url = url.format(model=model.pk)
    _, raw = make_key(user, scope="read")
    jwt, key = client_for(user), bearer(raw)
    jwt.get(url)
    key.get(url)  # the first use writes last_used_at (at most once a minute): not counted below

    def queries(client) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    # JWT: the user. Key: the key joined to its user (one SELECT), so at most one more, in fact none.
    assert queries(key) <= queries(jwt) + 1


# --- pages ------------------------------------------------------------------------------------------


def test_page_creates_a_key_shows_it_once_lists_and_revokes_it(owner_client, user):
    page = owner_client.get("/accounts/api-keys/")
    assert page.status_code == 200 and b"You have no API keys yet" in page.content

    created = owner_client.post("/accounts/api-keys/", {"name": "from-the-page", "scope": "read"})
    assert created.status_code == 200
    raw = re.search(rb'data-copy="(mlr_[^"]+)"', created.content).group(1).decode()
    assert KEY_SHAPE.match(raw)
    assert "no-cache" in created["Cache-Control"] or "no-store" in created["Cache-Control"]
    key = ApiKey.objects.get(user=user)
    assert bearer(raw).get("/api/v1/auth/me").status_code == 200

    listed = owner_client.get("/accounts/api-keys/")
    assert raw.encode() not in listed.content
    assert f"mlr_{key.prefix}_".encode() in listed.content and b"from-the-page" in listed.content

    confirm = owner_client.get(f"/accounts/api-keys/{key.pk}/revoke/")
    assert confirm.status_code == 200 and b"Revoke API key" in confirm.content
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None  # GET only asks
    done = owner_client.post(f"/accounts/api-keys/{key.pk}/revoke/")
    assert done.status_code == 302 and done["Location"] == "/accounts/api-keys/"
    assert bearer(raw).get("/api/v1/auth/me").status_code == 401
    after = owner_client.get("/accounts/api-keys/").content
    assert b"<td>from-the-page</td>" not in after and b"was revoked" in after


def test_page_form_errors_rerender_with_200(owner_client):
    response = owner_client.post("/accounts/api-keys/", {"name": "", "scope": "read"})
    assert response.status_code == 200 and b"data-copy" not in response.content
    assert not ApiKey.objects.exists()


def test_pages_refuse_other_users_and_anonymous(owner_client, other_client, client, other_user):
    key, _ = make_key(other_user)

    assert owner_client.get(f"/accounts/api-keys/{key.pk}/revoke/").status_code == 404
    assert owner_client.post(f"/accounts/api-keys/{key.pk}/revoke/").status_code == 404
    assert b"write-key" not in owner_client.get("/accounts/api-keys/").content
    assert client.get("/accounts/api-keys/")["Location"].startswith("/accounts/login/")
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_user_menu_links_to_the_keys_page(owner_client):
    assert b'href="/accounts/api-keys/"' in owner_client.get("/").content


# --- admin -----------------------------------------------------------------------------------------


def test_admin_lists_and_revokes_keys_but_never_adds_them(superuser_client, user):
    key, raw = make_key(user)

    listing = superuser_client.get("/admin/accounts/apikey/")
    assert listing.status_code == 200 and key.prefix.encode() in listing.content
    assert key.secret_hash.encode() not in superuser_client.get(f"/admin/accounts/apikey/{key.pk}/change/").content
    assert superuser_client.get("/admin/accounts/apikey/add/").status_code == 403

    response = superuser_client.post(
        "/admin/accounts/apikey/", {"action": "revoke_selected", "_selected_action": [key.pk]}
    )
    assert response.status_code == 302
    assert bearer(raw).get("/api/v1/auth/me").status_code == 401


def test_the_large_upload_gate_accepts_a_write_key_and_refuses_a_revoked_one(rf, user):
    # registry.middleware lets a signed-in client's large multipart upload through: keys sign in there too.
    from django.contrib.auth.models import AnonymousUser

    from registry.middleware import _signed_in

    key, raw = make_key(user, scope="write")
    request = rf.post("/api/v1/files/upload", HTTP_AUTHORIZATION=f"Bearer {raw}")
    request.user = AnonymousUser()
    assert _signed_in(request)
    services.api_key_revoke(actor=user, key=key)
    assert not _signed_in(request)


def test_a_keys_authentication_loads_it_and_its_user_in_one_query_and_leaves_nothing_of_it_on_the_user(
    user, django_assert_num_queries
):
    key, raw = services.api_key_create(actor=user, user=user, name="ci", scope="read")
    services.api_key_authenticate(raw)  # the first use writes last_used_at

    with django_assert_num_queries(1):
        found = services.api_key_authenticate(raw)

    assert (found.pk, found.scope, found.user.pk, found.user.username) == (key.pk, "read", user.pk, user.username)
    assert not [name for name in vars(found.user) if name.startswith("apikey_")]
