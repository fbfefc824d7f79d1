"""Single sign-on end to end: the registry (allauth's openid_connect, provider "sso") against a real
OpenID Connect provider on loopback (allauth's IdP, the `oidc_provider` fixture of conftest.py).

The fast tests play a person's browser with requests; the `browser` ones drive Chromium. The rules
behind a sign-in (roles from groups, the nonce check, SSO_ONLY) are unit-tested in test_sso_rules.py.
"""

import re
from html import unescape
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import pytest
import requests
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.test import Client

from accounts import services
from accounts.adapters import SocialAccountAdapter
from accounts.models import User
from accounts.roles import APPROVERS_GROUP, can_approve, roles_of
from accounts.tests.factories import TEST_PASSWORD, UserFactory

try:
    from playwright.sync_api import expect
except ImportError:  # without Playwright the `browser` marker skips (or, in CI, fails) those tests
    expect = None

# The live server (another thread) sees only committed data.
pytestmark = pytest.mark.django_db(transaction=True)

PROVIDER_NAME = "Acme SSO"
LOGIN_PATH = "/accounts/login/"
SSO_LOGIN_PATH = "/accounts/oidc/sso/login/"
CALLBACK_PATH = "/accounts/oidc/sso/login/callback/"
TIMEOUT = 10


@pytest.fixture(scope="module")
def idp(oidc_provider, live_server):
    # Module scope: the provider is shared by the session, and other modules register their own URI.
    oidc_provider.register_redirect_uri(f"{live_server.url}{CALLBACK_PATH}")
    return oidc_provider


def sso_apps_template() -> dict:
    return {"provider_id": "sso", "name": PROVIDER_NAME, "client_id": "registry", "secret": "s"}


def sso_apps(idp) -> list[dict]:
    return [
        {
            **sso_apps_template(),
            "client_id": idp.client_id,
            "secret": idp.client_secret,
            "settings": {"server_url": idp.issuer},
        }
    ]


@pytest.fixture
def sso(settings, idp):
    """The registry set up for Acme SSO, as OIDC_SERVER_URL and friends would set it up."""
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {**settings.SOCIALACCOUNT_PROVIDERS["openid_connect"], "APPS": sso_apps(idp)}
    }
    settings.OIDC_APPROVER_GROUPS = ["ml-approvers"]
    settings.OIDC_ADMIN_GROUPS = ["ml-admins"]
    settings.OIDC_PROVIDER_NAME = PROVIDER_NAME
    settings.CSP_FORM_ACTION_ORIGINS = [idp.issuer]
    # The approvers group as migration 0006 makes it: an earlier transactional test's flush removed it.
    # (serialized_rollback cannot bring it back here: once Playwright's event loop runs in this thread,
    # asgiref hands Django a new connection object, without the serialized contents.)
    approvers, _ = Group.objects.get_or_create(name=APPROVERS_GROUP)
    approvers.permissions.add(Permission.objects.get(content_type__app_label="mlmodels", codename="approve_production"))
    return idp


# --- A browser, played with requests -------------------------------------------------------------


def find_form(html: str, action_path: str | None = None) -> tuple[str, dict[str, str]]:
    """(action, named inputs) of the first form, or of the first that posts to ``action_path``."""
    for attrs, body in re.findall(r"<form\b([^>]*)>(.*?)</form>", html, flags=re.S):
        action = unescape(dict(re.findall(r'([\w-]+)="([^"]*)"', attrs)).get("action", ""))
        if action_path is None or urlsplit(action).path == action_path:
            fields = {}
            for tag in re.findall(r"<input\b[^>]*>", body):
                attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', tag))
                if "name" in attributes:
                    fields[attributes["name"]] = unescape(attributes.get("value", ""))
            return action, fields
    raise AssertionError(f"no form posting to {action_path!r} in:\n{html[:3000]}")


def submit(session: requests.Session, page: requests.Response, action_path: str | None = None, **data):
    action, fields = find_form(page.text, action_path)
    return session.post(urljoin(page.url, action), data={**fields, **data}, timeout=TIMEOUT)


class Browser(requests.Session):
    """A session whose redirects pass through ``rewrite(url)``: what a man in the middle could change."""

    def __init__(self, rewrite=None):
        super().__init__()
        self.rewrite = rewrite or (lambda url: url)

    def get_redirect_target(self, resp):
        target = super().get_redirect_target(resp)
        return self.rewrite(urljoin(resp.url, target)) if target else target


def sso_sign_in(live_url: str, idp, username: str, password: str, rewrite=None) -> tuple[Browser, requests.Response]:
    """A new browser's "Sign in with Acme SSO": the registry's redirect, the IdP's login form and the
    way back, redirects followed. Returns the browser's session and the page it ends on."""
    session = Browser(rewrite)
    response = submit(session, session.get(f"{live_url}{LOGIN_PATH}", timeout=TIMEOUT), SSO_LOGIN_PATH)
    assert response.url.startswith(f"{idp.issuer}/accounts/login/"), response.url
    return session, submit(session, response, login=username, password=password)


def password_sign_in(live_url: str, login: str, password: str) -> tuple[requests.Session, requests.Response]:
    session = requests.Session()
    page = session.get(f"{live_url}{LOGIN_PATH}", timeout=TIMEOUT)
    return session, submit(session, page, LOGIN_PATH, login=login, password=password)


def signed_in_as(live_url: str, session: requests.Session) -> str | None:
    """The username the registry's API gives ``session``'s cookies, None when they sign nobody in."""
    response = session.get(f"{live_url}/api/v1/auth/me", headers={"Accept": "application/json"}, timeout=TIMEOUT)
    return response.json()["username"] if response.status_code == 200 else None


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode({**dict(parse_qsl(parts.query)), **changes})))


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


FORGED_NONCE = "forged-nonce-0123456789"


def tamper_state(url: str, seen: list[str]) -> str:
    """The IdP's redirect back to the callback with another state (any other: allauth keeps states per session)."""
    if urlsplit(url).path != CALLBACK_PATH:
        return url
    if url not in seen:  # requests asks for each redirect's target twice
        seen.append(url)
    return with_query(url, state=query_of(url)["state"][::-1] + "x")


def tamper_nonce(url: str, seen: list[str]) -> str:
    """The authorization request with a nonce of the attacker's; the IdP puts it in the ID token."""
    if urlsplit(url).path != "/identity/o/authorize" or query_of(url).get("nonce") == FORGED_NONCE:
        return url
    if url not in seen:
        seen.append(url)
    return with_query(url, nonce=FORGED_NONCE)


@pytest.fixture
def sign_in_errors(monkeypatch):
    """Why allauth refused each SSO sign-in: (error code, exception) as its adapter hook is told them."""
    errors = []

    def record(self, request, provider, error=None, exception=None, extra_context=None):
        errors.append((error, exception))

    monkeypatch.setattr(SocialAccountAdapter, "on_authentication_error", record)
    return errors


def visited(response: requests.Response) -> list[str]:
    return [urlsplit(step.url).path for step in [*response.history, response]]


def main_text(response: requests.Response) -> str:
    main = re.search(r"<main\b.*?</main>", response.text, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", main.group(0) if main else response.text)))


# --- The login page -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("configured", [True, False], ids=["configured", "not-configured"])
def test_the_login_page_offers_the_idp_only_when_one_is_configured(settings, configured):
    # Rendering the button asks the IdP nothing, so none has to run (nor a live server) for this one.
    apps = [{**sso_apps_template(), "settings": {"server_url": "https://idp.invalid"}}] if configured else []
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {**settings.SOCIALACCOUNT_PROVIDERS["openid_connect"], "APPS": apps}
    }

    page = Client().get(LOGIN_PATH).content.decode()

    assert (f'<form method="post" action="{SSO_LOGIN_PATH}?process=login">' in page) is configured
    assert ('id="sso-login">Sign in with Acme SSO</button>' in page) is configured
    assert ('id="sso-login"' in page) is configured
    # The password form is there either way while SSO_ONLY is off.
    assert f'<form method="post" action="{LOGIN_PATH}"' in page


# --- Who the first sign-in makes, and who it must not touch ---------------------------------------


def test_a_username_taken_locally_gives_the_sso_user_a_variant_of_it(live_url, sso):
    ada = UserFactory(username="ada", email="ada@local.example.com")
    sso.set_user("ada", "pw-ada-123", "ada@idp.example.com", [])

    session, response = sso_sign_in(live_url, sso, "ada", "pw-ada-123")

    newcomer = User.objects.exclude(pk=ada.pk).get()
    assert re.fullmatch(r"ada\d+", newcomer.username), newcomer.username
    assert newcomer.email == "ada@idp.example.com"
    assert signed_in_as(live_url, session) == newcomer.username
    assert visited(response)[-1] == "/"
    ada_now = User.objects.get(pk=ada.pk)
    assert (ada_now.username, ada_now.email, ada_now.password) == ("ada", ada.email, ada.password)
    assert not SocialAccount.objects.filter(user=ada).exists()


def test_an_idp_email_held_by_a_local_account_neither_signs_into_it_nor_changes_it(live_url, sso):
    # SOCIALACCOUNT_EMAIL_AUTHENTICATION is off: "same email" is not "same person". Not "ada": the IdP
    # is shared by the session.
    byron = UserFactory(username="byron", email="byron@example.com")
    sso.set_user("byron", "pw-byron-123", "BYRON@example.com", ["ml-admins"])

    session, response = sso_sign_in(live_url, sso, "byron", "pw-byron-123")

    # Refused with the reason (no sign-up form asking for another address: nothing could verify it).
    assert response.status_code == 403
    assert "An account with the email address BYRON@example.com already exists here" in main_text(response)
    assert signed_in_as(live_url, session) is None
    assert list(User.objects.values_list("username", flat=True)) == ["byron"]
    byron_now = User.objects.get(pk=byron.pk)
    assert (byron_now.email, byron_now.password, byron_now.is_superuser) == (byron.email, byron.password, False)
    assert not SocialAccount.objects.exists()


# --- SSO_ONLY -------------------------------------------------------------------------------------


@pytest.fixture
def sso_only(settings, sso):
    settings.SSO_ONLY = True
    return sso


def test_sso_only_refuses_a_members_password_and_says_to_use_the_idp(live_url, sso_only):
    member = UserFactory(username="member")

    session, response = password_sign_in(live_url, "member", TEST_PASSWORD)

    assert signed_in_as(live_url, session) is None
    assert visited(response)[-1] == LOGIN_PATH
    assert services.local_sign_in_refusal(member) in main_text(response)
    assert "Sign in with Acme SSO" in services.local_sign_in_refusal(member)


def test_sso_only_keeps_password_sign_in_for_superusers(live_url, sso_only):
    UserFactory(username="root", is_superuser=True, is_staff=True)

    session, response = password_sign_in(live_url, "root", TEST_PASSWORD)

    assert signed_in_as(live_url, session) == "root"
    assert visited(response)[-1] == "/"


def test_sso_only_lets_a_member_sign_in_through_the_idp(live_url, sso_only):
    sso_only.set_user("sso-member", "pw-member-123", "sso-member@example.com", [])

    session, response = sso_sign_in(live_url, sso_only, "sso-member", "pw-member-123")

    assert User.objects.filter(username="sso-member", is_superuser=False).exists()
    assert visited(response)[-1] == "/"
    assert signed_in_as(live_url, session) == "sso-member"


# --- A tampered answer of the IdP -----------------------------------------------------------------


def test_a_callback_with_a_tampered_state_signs_nobody_in(live_url, sso, sign_in_errors):
    sso.set_user("mallory", "pw-mallory-123", "mallory@example.com", ["ml-admins"])
    tampered = []

    session, response = sso_sign_in(
        live_url, sso, "mallory", "pw-mallory-123", rewrite=lambda url: tamper_state(url, tampered)
    )

    assert len(tampered) == 1
    assert (visited(response)[-1], response.status_code) == (CALLBACK_PATH, 401)
    assert "Single sign-on failed" in main_text(response)
    # Refused for its state (none found), before the code was ever exchanged.
    assert [exception for _, exception in sign_in_errors] == [None]
    assert signed_in_as(live_url, session) is None
    assert not User.objects.exists()


def test_an_id_token_with_a_tampered_nonce_signs_nobody_in(live_url, sso, sign_in_errors):
    sso.set_user("mallory", "pw-mallory-123", "mallory@example.com", ["ml-admins"])
    sent = []

    session, response = sso_sign_in(
        live_url, sso, "mallory", "pw-mallory-123", rewrite=lambda url: tamper_nonce(url, sent)
    )

    assert len(sent) == 1 and query_of(sent[0])["nonce"] not in ("", FORGED_NONCE)
    assert signed_in_as(live_url, session) is None
    assert not User.objects.exists() and not SocialAccount.objects.exists()
    assert (visited(response)[-1], response.status_code) == (CALLBACK_PATH, 401)
    assert [type(exception) for _, exception in sign_in_errors] == [PermissionDenied]
    assert "nonce mismatch" in str(sign_in_errors[0][1])


# --- Later sign-ins -------------------------------------------------------------------------------


def test_a_deactivated_user_is_not_signed_in_through_the_idp(live_url, sso):
    sso.set_user("leaver", "pw-leaver-123", "leaver@example.com", [])
    sso_sign_in(live_url, sso, "leaver", "pw-leaver-123")
    User.objects.filter(username="leaver").update(is_active=False)

    session, response = sso_sign_in(live_url, sso, "leaver", "pw-leaver-123")

    assert signed_in_as(live_url, session) is None
    assert visited(response)[-1] == "/accounts/inactive/"
    assert "This account is inactive." in main_text(response)


def test_a_refused_sign_in_of_a_deactivated_user_leaves_the_account_as_it_was(live_url, sso):
    sso.set_user("leaver", "pw-leaver-123", "leaver@example.com", ["ml-admins"])
    sso_sign_in(live_url, sso, "leaver", "pw-leaver-123")
    # The admin deactivates the leaver and takes the superuser role away; the IdP is not told yet.
    User.objects.filter(username="leaver").update(is_active=False, is_superuser=False, is_staff=False)
    sso.set_user("leaver", "pw-leaver-123", "leaver@elsewhere.example.com", ["ml-admins"])

    session, _ = sso_sign_in(live_url, sso, "leaver", "pw-leaver-123")

    assert signed_in_as(live_url, session) is None
    leaver = User.objects.get(username="leaver")
    assert (leaver.is_superuser, leaver.is_staff, leaver.email) == (False, False, "leaver@example.com")


def test_the_idps_new_email_replaces_the_old_one_at_the_next_sign_in(live_url, sso):
    sso.set_user("mover", "pw-mover-123", "mover@old.example.com", [])
    sso_sign_in(live_url, sso, "mover", "pw-mover-123")
    assert User.objects.get(username="mover").email == "mover@old.example.com"
    sso.set_user("mover", "pw-mover-123", "mover@new.example.com", [])

    session, _ = sso_sign_in(live_url, sso, "mover", "pw-mover-123")

    assert signed_in_as(live_url, session) == "mover"
    assert list(User.objects.values_list("username", "email")) == [("mover", "mover@new.example.com")]


# --- In Chromium ----------------------------------------------------------------------------------


def sign_in_in_browser(page, idp, username: str, password: str) -> None:
    """From the registry's login page through the IdP's login form and back to the registry (in a new
    browser context: the IdP keeps its own session cookie, and would otherwise skip its form)."""
    page.goto(LOGIN_PATH)
    registry = urlunsplit(urlsplit(page.url)._replace(path="", query=""))
    page.locator("#sso-login").click()
    # The registry's own form has a "login" field too: wait until the IdP's page is the one shown.
    expect(page).to_have_url(re.compile(re.escape(f"{idp.issuer}/accounts/login/")))
    page.locator("input[name=login]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Sign In", exact=True).click()
    expect(page).to_have_url(re.compile("^" + re.escape(registry) + "/"))
    page.wait_for_load_state()


def api_me(page) -> dict | None:
    response = page.request.get("/api/v1/auth/me", headers={"Accept": "application/json"})
    return response.json() if response.ok else None


def expect_sign_in_refused(page) -> None:
    """The registry's sign-in error page, in the app's layout, and nobody signed in."""
    expect(page.get_by_role("heading", name="Single sign-on failed")).to_be_visible()
    expect(page.locator("#sso-error")).to_be_visible()
    expect(page.locator("header.topbar .brand")).to_have_text("◆ Model Registry")
    expect(page.get_by_role("navigation", name="Account").get_by_role("link", name="Log in")).to_be_visible()
    assert api_me(page) is None


@pytest.mark.browser
def test_the_sso_button_takes_the_browser_to_the_idp_under_the_registrys_csp(page, sso):
    page.goto(LOGIN_PATH)
    page.locator("#sso-login").click()

    # On loopback the IdP's form is up in well under a second; a blocked form never gets there.
    expect(page).to_have_url(re.compile(re.escape(f"{sso.issuer}/accounts/login/")), timeout=3000)
    expect(page.locator("input[name=login]")).to_be_visible()


@pytest.mark.browser
def test_the_first_sign_in_creates_the_user_as_an_approver_and_lands_on_the_dashboard(
    page, live_url, sso, console_errors, save_screenshot
):
    sso.set_user("grace", "pw-grace-123", "grace@example.com", ["ml-approvers", "ml-viewers"])

    sign_in_in_browser(page, sso, "grace", "pw-grace-123")

    expect(page).to_have_url(f"{live_url}/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator(".user-menu summary")).to_have_text("grace")
    grace = User.objects.get(username="grace")
    assert grace.email == "grace@example.com"
    assert not grace.has_usable_password()
    # allauth records the app's provider_id, not "openid_connect" (what accounts.sso.check_nonce looks up).
    assert SocialAccount.objects.get(user=grace).provider == "sso"
    assert can_approve(grace) and roles_of(grace) == ["approver"]
    assert api_me(page)["roles"] == ["approver"]
    page.goto("/accounts/profile/")
    expect(page.locator("#roles .badge")).to_have_text(["approver"])
    save_screenshot(page, "sso-profile-approver")
    console_errors.assert_none()


@pytest.mark.browser
def test_each_sign_in_gives_and_takes_the_roles_of_the_idps_groups(page, live_url, sso, new_context, console_errors):
    sso.set_user("hopper", "pw-hopper-123", "hopper@example.com", ["ml-approvers", "ml-admins"])
    sign_in_in_browser(page, sso, "hopper", "pw-hopper-123")
    expect(page).to_have_url(f"{live_url}/")
    hopper = User.objects.get(username="hopper")
    assert roles_of(hopper) == ["superuser", "approver"] and hopper.is_staff
    page.goto("/accounts/profile/")
    expect(page.locator("#roles .badge")).to_have_text(["superuser", "approver"])

    sso.set_user("hopper", "pw-hopper-123", "hopper@example.com", ["ml-viewers"])
    # A new browser: without the IdP's session cookie, the IdP asks for the password again.
    later = console_errors.watch(new_context().new_page())
    sign_in_in_browser(later, sso, "hopper", "pw-hopper-123")

    expect(later).to_have_url(f"{live_url}/")
    hopper = User.objects.get(username="hopper")
    assert roles_of(hopper) == [] and not hopper.is_staff
    later.goto("/accounts/profile/")
    expect(later.locator("#roles .badge")).to_have_count(0)
    expect(later.locator("#roles")).to_contain_text("member")
    # The earlier browser's session belongs to the same user: it sees the new roles at once.
    assert api_me(page)["roles"] == []
    console_errors.assert_none()


def rewrite_redirects_from(page, first_request: re.Pattern, rewrite) -> None:
    """Send the browser on to ``rewrite(target)`` in the redirect chain that starts with a request
    matching ``first_request``. Playwright routes only the first request of a chain, so the hops
    are replayed here, with the context's cookies, up to the first target that ``rewrite`` changes."""

    def handle(route):
        response = route.fetch(max_redirects=0)
        while 300 <= response.status < 400:
            target = urljoin(response.url, response.headers["location"])
            if rewrite(target) != target:
                route.fulfill(status=302, headers={"Location": rewrite(target)})
                return
            response = page.context.request.get(target, max_redirects=0)
        raise AssertionError(f"the chain from {route.request.url} ended at {response.url} unchanged")

    page.route(first_request, handle)


@pytest.mark.browser
def test_a_tampered_state_is_refused_with_the_sign_in_error_page(
    page, live_url, sso, sign_in_errors, console_errors, save_screenshot
):
    sso.set_user("mallory", "pw-mallory-123", "mallory@example.com", ["ml-admins"])
    tampered = []
    # The IdP's login form starts the chain: its POST, authorize, then the callback.
    rewrite_redirects_from(
        page, re.compile(re.escape(f"{sso.issuer}/accounts/login/")), lambda url: tamper_state(url, tampered)
    )

    sign_in_in_browser(page, sso, "mallory", "pw-mallory-123")

    expect_sign_in_refused(page)
    assert len(tampered) == 1
    assert [exception for _, exception in sign_in_errors] == [None]
    assert not User.objects.exists()
    save_screenshot(page, "sso-refused-state")
    # Chromium logs the 401 answer itself as a console error; nothing else may show up.
    assert [message for message in console_errors if "status of 401" not in message] == []


@pytest.mark.browser
def test_a_tampered_nonce_is_refused_with_the_sign_in_error_page(page, live_url, sso, sign_in_errors, console_errors):
    # allauth's own provider sends no nonce and checks none: only accounts.sso can refuse this.
    sso.set_user("mallory", "pw-mallory-123", "mallory@example.com", ["ml-admins"])
    sent = []
    # The SSO button's POST starts the chain: the registry's redirect to authorize.
    rewrite_redirects_from(
        page, re.compile(re.escape(f"{live_url}{SSO_LOGIN_PATH}")), lambda url: tamper_nonce(url, sent)
    )

    sign_in_in_browser(page, sso, "mallory", "pw-mallory-123")

    assert len(sent) == 1 and query_of(sent[0])["nonce"] not in ("", FORGED_NONCE)
    assert not User.objects.exists() and not SocialAccount.objects.exists()
    assert [type(exception) for _, exception in sign_in_errors] == [PermissionDenied]
    expect_sign_in_refused(page)
    assert [message for message in console_errors if "status of 401" not in message] == []
