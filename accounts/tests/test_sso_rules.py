"""The rules behind single sign-on, checked without an IdP: what a sign-in through the IdP changes
(email, roles from groups), the nonce that binds an ID token to its sign-in, who may sign in locally
under SSO_ONLY (and at the API's password login with a second factor on), and the account pages
around them. The full redirect flow against a real provider is in
test_sso.py."""

import pytest
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount, SocialLogin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.test import Client

from accounts import services, sso
from accounts.models import User
from accounts.roles import APPROVERS_GROUP, can_approve, roles_of
from accounts.tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def mapped_groups(settings):
    settings.OIDC_GROUPS_CLAIM = "groups"
    settings.OIDC_APPROVER_GROUPS = ["ml-approvers"]
    settings.OIDC_ADMIN_GROUPS = ["ml-admins"]


def test_the_groups_claim_gives_and_takes_away_the_approver_and_superuser_roles(user, mapped_groups):
    services.sso_user_sync(user=user, claims={"groups": ["ml-approvers", "ml-admins", "other"]})
    user = User.objects.get(pk=user.pk)  # permissions are cached per instance
    assert can_approve(user) and user.is_superuser and user.is_staff

    services.sso_user_sync(user=user, claims={"groups": ["other"]})
    user = User.objects.get(pk=user.pk)  # permissions are cached per instance
    assert not can_approve(user) and not user.is_superuser and not user.is_staff
    assert roles_of(user) == []


def test_a_missing_groups_claim_takes_the_mapped_roles_away(user, mapped_groups):
    services.sso_user_sync(user=user, claims={"groups": ["ml-approvers"]})
    services.sso_user_sync(user=user, claims={})

    user = User.objects.get(pk=user.pk)  # permissions are cached per instance
    assert not can_approve(user)


def test_roles_are_left_as_the_admin_set_them_when_no_groups_are_mapped(settings, superuser):
    settings.OIDC_APPROVER_GROUPS = []
    settings.OIDC_ADMIN_GROUPS = []

    services.sso_user_sync(user=superuser, claims={"groups": []})

    superuser.refresh_from_db()
    assert superuser.is_superuser


def test_a_single_group_as_a_string_and_a_renamed_claim_are_read(user, settings, mapped_groups):
    settings.OIDC_GROUPS_CLAIM = "roles"

    services.sso_user_sync(user=user, claims={"roles": "ml-approvers", "groups": ["ml-admins"]})

    user = User.objects.get(pk=user.pk)  # permissions are cached per instance
    assert can_approve(user) and not user.is_superuser


def test_the_idps_email_replaces_the_old_one_unless_another_account_has_it(user, other_user):
    services.sso_user_sync(user=user, claims={"email": "Ada@New.example.com"})
    user.refresh_from_db()
    assert user.email == "Ada@new.example.com"

    services.sso_user_sync(user=user, claims={"email": other_user.email.upper()})
    user.refresh_from_db()
    assert user.email == "Ada@new.example.com"


SSO_APP = {"provider_id": "sso", "name": "Acme SSO", "client_id": "c", "secret": "s"}


@pytest.fixture
def configured(settings):
    """Single sign-on set up as OIDC_SERVER_URL would (the IdP is never reached by these tests)."""
    providers = settings.SOCIALACCOUNT_PROVIDERS["openid_connect"]
    app = {**SSO_APP, "settings": {"server_url": "https://idp.invalid"}}
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {**providers, "APPS": [app]}}


def sociallogin_with(*, sent: object, received: object) -> SocialLogin:
    # allauth names the account's provider by the app's provider_id ("sso"), as a real sign-in does.
    account = SocialAccount(provider="sso", uid="1", extra_data={"id_token": {"nonce": received}})
    login = SocialLogin(account=account)
    login.state = {"nonce": sent}
    return login


def test_an_id_token_carrying_the_sign_ins_nonce_is_accepted(configured, rf):
    sso.check_nonce(rf.get("/"), sociallogin_with(sent="n-123", received="n-123"))


@pytest.mark.parametrize(("sent", "received"), [("n-123", "n-124"), ("n-123", None), (None, None), ("n", 7)])
def test_an_id_token_without_the_sign_ins_nonce_is_refused(sent, received, configured, rf):
    with pytest.raises(PermissionDenied, match="nonce mismatch"):
        sso.check_nonce(rf.get("/"), sociallogin_with(sent=sent, received=received))


def test_the_claims_are_the_id_tokens_with_the_userinfo_answer_on_top():
    account = SocialAccount(
        provider="openid_connect",
        extra_data={"id_token": {"sub": "1", "groups": ["a"]}, "userinfo": {"sub": "1", "email": "a@example.com"}},
    )

    assert sso.claims_of(SocialLogin(account=account)) == {"sub": "1", "groups": ["a"], "email": "a@example.com"}


def test_sso_only_keeps_password_sign_in_for_superusers_only(settings, user, superuser):
    settings.SSO_ONLY = True
    settings.OIDC_PROVIDER_NAME = "Acme SSO"

    assert "Sign in with Acme SSO" in services.local_sign_in_refusal(user)
    assert services.local_sign_in_refusal(user, through_sso=True) is None
    assert services.local_sign_in_refusal(superuser) is None


def test_sso_only_refuses_a_members_password_on_the_login_page_and_the_api(settings, user, superuser, api_client):
    settings.SSO_ONLY = True
    settings.OIDC_PROVIDER_NAME = "Acme SSO"

    page = Client().post("/accounts/login/", {"login": user.username, "password": TEST_PASSWORD}, follow=True)
    api = api_client.post("/api/v1/auth/login", {"username": user.username, "password": TEST_PASSWORD}, format="json")
    admin = api_client.post(
        "/api/v1/auth/login", {"username": superuser.username, "password": TEST_PASSWORD}, format="json"
    )

    assert "_auth_user_id" not in page.client.session
    assert "use “Sign in with Acme SSO”" in page.content.decode()
    assert api.status_code == 401
    assert "sign in with Acme SSO on the login page and use an API key" in api.json()["detail"]
    assert admin.status_code == 200


def test_sso_only_hides_the_password_form_behind_an_administrators_link(settings, configured):
    settings.SSO_ONLY = True

    page = Client().get("/accounts/login/").content.decode()

    assert 'id="sso-login">Sign in with Acme SSO</button>' in page
    assert "Administrators: sign in with a password or a passkey" in page
    assert "Register" not in page


def test_the_pages_let_forms_post_to_the_idp_only_when_sso_is_configured(settings, client):
    assert "form-action 'self';" in client.get("/accounts/login/")["Content-Security-Policy"]

    settings.CSP_FORM_ACTION_ORIGINS = ["https://idp.example.com"]

    assert "form-action 'self' https://idp.example.com;" in client.get("/accounts/login/")["Content-Security-Policy"]


def test_a_first_sso_sign_in_with_an_address_taken_here_is_refused_with_the_reason(user, other_user):
    claims = {"email": user.email.upper()}

    assert "already exists here" in services.sso_sign_up_refusal(claims)
    # Connecting the IdP to one's own account is no new account.
    assert services.sso_sign_up_refusal(claims, connecting=user) is None
    assert "already exists here" in services.sso_sign_up_refusal(claims, connecting=other_user)
    assert services.sso_sign_up_refusal({"email": "new@example.com"}) is None


def test_an_sso_session_outlives_turning_sso_only_on(settings, user, client):
    client.force_login(user, backend="accounts.backends.AccountBackend")

    settings.SSO_ONLY = True

    assert client.get("/").status_code == 200


def test_the_user_page_shows_roles_and_how_the_user_signs_in(client):
    approver = UserFactory(username="reviewer")
    approver.groups.add(Group.objects.get(name=APPROVERS_GROUP))
    client.force_login(approver)

    page = client.get("/accounts/profile/").content.decode()

    assert '<span class="badge">approver</span>' in page
    assert '<span class="badge">password</span>' in page


def test_a_user_without_a_password_is_told_why_there_is_none_to_change(client):
    sso_user = UserFactory(username="sso-user")
    sso_user.set_unusable_password()
    sso_user.save()
    client.force_login(sso_user)

    for response in (client.get("/accounts/password/"), client.post("/accounts/password/", {"old_password": "x"})):
        assert response.status_code == 200
        assert 'id="no-password"' in response.content.decode()


@pytest.mark.parametrize(
    "path",
    ["/accounts/password/reset/", "/accounts/password/reset/key/done/", "/accounts/email/", "/accounts/confirm-email/"],
)
def test_allauths_mail_pages_are_not_offered(path, client, user):
    client.force_login(user)

    assert client.get(path).status_code == 404


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/accounts/signup/", "/accounts/register/"),
        ("/accounts/password/change/", "/accounts/password/"),
        ("/accounts/security/", "/accounts/2fa/"),
    ],
)
def test_allauths_addresses_lead_to_the_registrys_own_pages(path, target, client, user):
    client.force_login(user)

    assert client.get(path)["Location"] == target


def test_the_apis_password_sign_in_refuses_an_account_with_a_second_factor(api_client, user):
    Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "unused"})

    response = api_client.post("/api/v1/auth/login", {"username": user.username, "password": TEST_PASSWORD})

    assert response.status_code == 401
    assert "protected by a second factor or a passkey" in response.json()["detail"]
