"""Roles (approvers, superusers, service accounts) and service accounts: made by superusers, never
signed in with a password, owners and actors like anyone."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.test import Client

from accounts import services
from accounts.models import User
from accounts.roles import APPROVERS_GROUP, can_approve, roles_of
from accounts.tests.factories import TEST_PASSWORD, UserFactory
from mlmodels import services as model_services

SERVICE_ACCOUNTS = "/api/v1/service-accounts/"


@pytest.mark.django_db
def test_the_migration_creates_the_approvers_group_with_the_approve_permission():
    group = Group.objects.get(name=APPROVERS_GROUP)

    assert [(p.content_type.app_label, p.codename) for p in group.permissions.all()] == [
        ("mlmodels", "approve_production")
    ]


@pytest.mark.django_db
def test_membership_of_the_approvers_group_makes_an_approver(user, superuser):
    assert not can_approve(user)
    user.groups.add(Group.objects.get(name=APPROVERS_GROUP))
    user = User.objects.get(pk=user.pk)  # permissions are cached per instance

    assert can_approve(user)
    assert can_approve(superuser)
    assert roles_of(user) == ["approver"]
    assert roles_of(superuser) == ["superuser", "approver"]


@pytest.mark.django_db
def test_an_inactive_approver_approves_nothing(user):
    user.groups.add(Group.objects.get(name=APPROVERS_GROUP))
    user.is_active = False
    user.save()

    assert not can_approve(User.objects.get(pk=user.pk))


@pytest.mark.django_db
def test_me_shows_the_callers_roles(client_for, user):
    user.groups.add(Group.objects.get(name=APPROVERS_GROUP))

    body = client_for(user).get("/api/v1/auth/me").json()

    assert body["roles"] == ["approver"]
    assert body["is_service_account"] is False


@pytest.mark.django_db
def test_a_superuser_creates_and_lists_service_accounts(client_for, superuser):
    api = client_for(superuser)

    created = api.post(SERVICE_ACCOUNTS, {"username": "nightly-trainer"}, format="json")
    listed = api.get(SERVICE_ACCOUNTS)

    assert created.status_code == 201, created.content
    assert created.json()["roles"] == ["service_account"]
    assert created.json()["email"] == "nightly-trainer@service-accounts.invalid"
    assert [row["username"] for row in listed.json()["results"]] == ["nightly-trainer"]
    account = User.objects.get(username="nightly-trainer")
    assert account.is_service_account and not account.has_usable_password()


@pytest.mark.django_db
def test_only_superusers_manage_service_accounts(client_for, user, api_client):
    assert client_for(user).post(SERVICE_ACCOUNTS, {"username": "x"}, format="json").status_code == 403
    assert client_for(user).get(SERVICE_ACCOUNTS).status_code == 403
    assert api_client.get(SERVICE_ACCOUNTS).status_code == 401
    with pytest.raises(PermissionDenied):
        services.service_account_create(actor=user, username="x")
    assert not User.objects.filter(is_service_account=True).exists()


@pytest.mark.django_db
def test_a_duplicate_service_account_name_is_a_400(client_for, superuser, user):
    response = client_for(superuser).post(SERVICE_ACCOUNTS, {"username": user.username.upper()}, format="json")

    assert response.status_code == 400
    assert "username" in response.json()


@pytest.mark.django_db
def test_a_service_account_never_signs_in_with_a_password(api_client):
    account = UserFactory(username="pipeline", is_service_account=True)  # the factory gives it a password

    api = api_client.post("/api/v1/auth/login", {"username": "pipeline", "password": TEST_PASSWORD}, format="json")
    page = Client().post("/accounts/login/", {"login": "pipeline", "password": TEST_PASSWORD}, follow=True)

    assert account.has_usable_password()
    assert api.status_code == 401
    assert "_auth_user_id" not in page.client.session
    assert "Service accounts cannot sign in; they act only through their API keys." in page.content.decode()


@pytest.mark.django_db
def test_a_service_account_made_in_the_admin_has_no_usable_password(superuser_client):
    response = superuser_client.post(
        "/admin/accounts/user/add/",
        {
            "username": "etl-bot",
            "email": "etl@example.com",
            "is_service_account": "on",
            "usable_password": "true",
            "password1": "a long admin-chosen passphrase",
            "password2": "a long admin-chosen passphrase",
        },
    )

    assert response.status_code == 302, response.content[:500]
    account = User.objects.get(username="etl-bot")
    assert account.is_service_account and not account.has_usable_password()


@pytest.mark.django_db
def test_a_service_account_owns_models_and_appears_in_the_trail(superuser):
    account = services.service_account_create(actor=superuser, username="trainer")

    model = model_services.model_create(owner=account, name="from-a-pipeline")
    model_services.lifecycle_move(model=model, actor=account, to_stage="staging")

    assert model.owner == account
    assert model.events.get().actor == account


@pytest.mark.django_db
def test_a_superuser_makes_a_key_for_a_service_account_and_the_pipeline_uses_it(client_for, superuser, api_client):
    account = services.service_account_create(actor=superuser, username="trainer")

    made = client_for(superuser).post(
        f"{SERVICE_ACCOUNTS}{account.pk}/api-keys/", {"name": "nightly", "scope": "write"}, format="json"
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {made.json()['key']}")
    created = api_client.post("/api/v1/models/", {"name": "trained-tonight"}, format="json")

    assert made.status_code == 201, made.content
    assert created.status_code == 201, created.content
    assert created.json()["owner_id"] == account.pk


@pytest.mark.django_db
def test_keys_for_service_accounts_need_a_superuser_signed_in_without_a_key(client_for, superuser, user, api_client):
    account = services.service_account_create(actor=superuser, username="trainer")
    url = f"{SERVICE_ACCOUNTS}{account.pk}/api-keys/"
    _, superusers_key = services.api_key_create(actor=superuser, user=superuser, name="k", scope="write")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {superusers_key}")

    assert client_for(user).post(url, {"name": "x", "scope": "read"}, format="json").status_code == 403
    assert api_client.post(url, {"name": "x", "scope": "read"}, format="json").status_code == 403
    person = client_for(superuser).post(f"{SERVICE_ACCOUNTS}{user.pk}/api-keys/", {"name": "x", "scope": "read"})
    assert person.status_code == 404
    assert not account.api_keys.exists()
