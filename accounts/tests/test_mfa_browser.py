"""allauth's second factors in a real browser: passkeys, an authenticator app (TOTP), recovery codes.

Passkeys are made and used by a CDP virtual authenticator in Debian's Chromium (see ../shared/SERVICES.md,
"WebAuthn passkeys"). Run with `REQUIRE_BROWSER=1 .venv/bin/pytest accounts/tests/test_mfa_browser.py`;
screenshots land in test-artifacts/screenshots/.
"""

import re
import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

from accounts.tests.factories import TEST_PASSWORD

try:
    from playwright.sync_api import expect
except ImportError:  # without Playwright the `browser` marker skips (or, in CI, fails) these tests
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOTP_PERIOD = 30  # allauth's MFA_TOTP_PERIOD default, which the settings keep
SIGN_IN = re.compile(r"/accounts/login/$")
SECOND_FACTOR = re.compile(r"/accounts/2fa/authenticate/$")


class VirtualAuthenticator:
    """A platform authenticator with resident keys and user verification, as a laptop or phone has."""

    def __init__(self, page):
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})
        self.id = self.cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                    "automaticPresenceSimulation": True,
                }
            },
        )["authenticatorId"]

    def credentials(self) -> list[dict]:
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})["credentials"]

    def refuse_user_verification(self) -> None:
        """The person fails the fingerprint or PIN check (or cancels): the browser's get() rejects."""
        self.cdp.send("WebAuthn.setUserVerified", {"authenticatorId": self.id, "isUserVerified": False})


@pytest.fixture
def authenticator(page, live_url) -> VirtualAuthenticator:
    # The RP ID is the page's host, and WebAuthn refuses an IP address as one.
    assert live_url.startswith("http://localhost:"), f"WebAuthn needs the live server on localhost, not {live_url}"
    return VirtualAuthenticator(page)


def sign_in_with_password(page, user):
    page.goto("/accounts/login/")
    page.get_by_label("Username or email").fill(user.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()


def sign_out(page):
    page.locator("header.topbar .user-menu summary").click()
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(SIGN_IN)
    expect_signed_out(page)


def expect_signed_out(page):
    expect(page.locator("header.topbar .user-menu")).to_have_count(0)
    expect(page.locator("header.topbar").get_by_role("link", name="Log in")).to_be_visible()


def expect_signed_in_on_the_dashboard(page, user):
    expect(page).to_have_url(re.compile(r"^http://localhost:\d+/$"))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator("header.topbar .user-menu summary")).to_have_text(user.username)


def confirm_password(page):
    """allauth's "Confirm Access" step before a change to the factors.

    It comes even right after signing in through the login form: allauth 65.22 counts only an explicit
    reauthentication (records marked reauthenticated), for ACCOUNT_REAUTHENTICATION_TIMEOUT (300 s).
    """
    expect(page).to_have_url(re.compile(r"/accounts/reauthenticate/\?next="))
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Confirm").click()


def open_security_page(page):
    page.locator("header.topbar .user-menu summary").click()
    page.get_by_role("link", name="Security").click()
    expect(page).to_have_url(re.compile(r"/accounts/2fa/$"))


def security_section(page, title: str):
    return page.locator("section.subpanel").filter(has=page.get_by_role("heading", name=title, exact=True))


def add_passkey(page, name: str, *, confirm: bool = True, save_screenshot=None):
    """Adds a passwordless passkey from the Security page; allauth then shows the recovery codes."""
    open_security_page(page)
    security_section(page, "Security Keys").get_by_role("link", name="Add").click()
    if confirm:
        confirm_password(page)
    expect(page).to_have_url(re.compile(r"/accounts/2fa/webauthn/add/$"))
    page.get_by_label("Name").fill(name)
    page.get_by_label("Passwordless").check()
    if save_screenshot:
        save_screenshot(page, "mfa-add-passkey")
    page.get_by_role("button", name="Add").click()
    # The first factor of an account comes with a set of recovery codes, shown at once.
    expect(page).to_have_url(re.compile(r"/accounts/2fa/recovery-codes/$"))
    expect(page.locator("main .messages")).to_contain_text("Security key added.")
    if save_screenshot:
        save_screenshot(page, "mfa-recovery-codes-after-the-first-factor")


def totp_code(secret: str, *, periods_ahead: int = 0) -> str:
    """What an authenticator app shows now (allauth's own HOTP functions).

    allauth accepts the current period's code only (MFA_TOTP_TOLERANCE 0): near the end of a period
    this waits for the next one, so that the code is still current when the server checks it.
    """
    if TOTP_PERIOD - time.time() % TOTP_PERIOD < 5:
        time.sleep(TOTP_PERIOD - time.time() % TOTP_PERIOD + 0.1)
    return format_hotp_value(hotp_value(secret, int(time.time()) // TOTP_PERIOD + periods_ahead))


def activate_totp(page, *, confirm: bool = True, save_screenshot=None) -> str:
    """Activates an authenticator app from the Security page, reading the secret it shows; returns it."""
    open_security_page(page)
    security_section(page, "Authenticator App").get_by_role("link", name="Activate").click()
    if confirm:
        confirm_password(page)
    expect(page).to_have_url(re.compile(r"/accounts/2fa/totp/activate/$"))
    secret = page.locator("#authenticator_secret").input_value()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    if save_screenshot:
        save_screenshot(page, "mfa-activate-totp")
    page.get_by_label("Authenticator code").fill(totp_code(secret))
    page.get_by_role("button", name="Activate").click()
    expect(page.locator("main .messages")).to_contain_text("Authenticator app activated.")
    return secret


def register_passkey_and_sign_out(page, user, name: str = "laptop"):
    sign_in_with_password(page, user)
    expect_signed_in_on_the_dashboard(page, user)
    add_passkey(page, name)
    sign_out(page)


def test_a_passkey_added_on_the_security_page_signs_in_without_a_password(
    page, user, authenticator, console_errors, save_screenshot
):
    sign_in_with_password(page, user)
    expect_signed_in_on_the_dashboard(page, user)

    add_passkey(page, "work laptop")

    passkey = Authenticator.objects.get(user=user, type=Authenticator.Type.WEBAUTHN)
    assert passkey.wrap().name == "work laptop"
    assert passkey.wrap().is_passwordless is True
    assert passkey.last_used_at is None
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.RECOVERY_CODES).exists()
    [credential] = authenticator.credentials()
    assert credential["rpId"] == "localhost"
    assert credential["isResidentCredential"] is True  # what lets the sign-in start without a username
    sign_out(page)

    expect(page.locator("#passkey_login")).to_have_text("Sign in with a passkey")
    save_screenshot(page, "mfa-passkey-sign-in")
    page.locator("#passkey_login").click()

    expect_signed_in_on_the_dashboard(page, user)
    expect(page.locator("main .messages")).to_contain_text(f"Successfully signed in as {user.username}.")
    save_screenshot(page, "mfa-passkey-signed-in")
    passkey.refresh_from_db()
    assert passkey.last_used_at is not None
    console_errors.assert_none()


def test_a_password_sign_in_then_asks_for_the_passkey_as_second_factor(page, user, authenticator, console_errors):
    register_passkey_and_sign_out(page, user)

    # A passkey is a second factor too: the password alone no longer signs in.
    sign_in_with_password(page, user)
    expect(page).to_have_url(SECOND_FACTOR)
    expect_signed_out(page)
    page.get_by_role("button", name="Use a security key").click()

    expect_signed_in_on_the_dashboard(page, user)
    assert Authenticator.objects.get(user=user, type=Authenticator.Type.WEBAUTHN).last_used_at is not None
    console_errors.assert_none()


def refuse_the_passkey(page, authenticator):
    """Clicks "Sign in with a passkey" while the device refuses; waits for the page to say so."""
    authenticator.refuse_user_verification()
    page.locator("#passkey_login").click()
    expect(page.locator("#passkey-error")).to_be_visible()


def test_a_passkey_refused_on_the_device_does_not_sign_in_and_says_why(page, user, authenticator, console_errors):
    register_passkey_and_sign_out(page, user)

    refuse_the_passkey(page, authenticator)

    # allauth's webauthn.js announces the browser's rejection (allauth.error); app.js shows it, so
    # nothing reaches the console and nothing is posted.
    expect(page.locator("#passkey-error")).to_contain_text(re.compile("passkey", re.IGNORECASE))
    console_errors.assert_none()
    expect(page).to_have_url(SIGN_IN)
    expect_signed_out(page)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    assert Authenticator.objects.get(user=user, type=Authenticator.Type.WEBAUTHN).last_used_at is None


def test_a_passkey_the_server_no_longer_knows_is_refused_with_a_message(page, user, authenticator, console_errors):
    register_passkey_and_sign_out(page, user)
    # As after removing the passkey from the Security page elsewhere: the device still offers it.
    Authenticator.objects.filter(user=user, type=Authenticator.Type.WEBAUTHN).delete()

    page.locator("#passkey_login").click()

    expect(page).to_have_url(SIGN_IN)
    # allauth's wording for any refused credential, passkeys included.
    expect(page.locator("main .messages .message.error")).to_have_text("Incorrect code.")
    expect_signed_out(page)
    console_errors.assert_none()


def test_an_authenticator_app_code_is_asked_after_the_password(page, user, console_errors, save_screenshot):
    sign_in_with_password(page, user)
    expect_signed_in_on_the_dashboard(page, user)
    secret = activate_totp(page)
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    sign_out(page)

    sign_in_with_password(page, user)
    expect(page).to_have_url(SECOND_FACTOR)
    expect(page.get_by_role("heading", name="Two-Factor Authentication")).to_be_visible()
    expect_signed_out(page)
    wrong = totp_code(secret, periods_ahead=10)
    page.get_by_label("Code").fill(wrong)
    page.get_by_role("button", name="Sign In").click()

    expect(page).to_have_url(SECOND_FACTOR)
    expect(page.get_by_role("alert")).to_have_text("Incorrect code.")
    expect_signed_out(page)
    save_screenshot(page, "mfa-second-factor-wrong-code")

    page.get_by_label("Code").fill(totp_code(secret))
    page.get_by_role("button", name="Sign In").click()

    expect_signed_in_on_the_dashboard(page, user)
    console_errors.assert_none()


def test_a_recovery_code_signs_in_once(page, user, console_errors, save_screenshot):
    sign_in_with_password(page, user)
    expect_signed_in_on_the_dashboard(page, user)
    activate_totp(page)
    open_security_page(page)
    recovery = security_section(page, "Recovery Codes")
    expect(recovery).to_contain_text("There are 10 out of 10 recovery codes available.")
    recovery.get_by_role("link", name="View").click()
    expect(page).to_have_url(re.compile(r"/accounts/2fa/recovery-codes/$"))
    codes = page.get_by_label("Unused codes").input_value().split()
    assert len(codes) == 10 and all(re.fullmatch(r"\d{8}", code) for code in codes), codes
    save_screenshot(page, "mfa-recovery-codes")
    sign_out(page)

    sign_in_with_password(page, user)
    expect(page).to_have_url(SECOND_FACTOR)
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Sign In").click()

    expect_signed_in_on_the_dashboard(page, user)
    open_security_page(page)
    expect(security_section(page, "Recovery Codes")).to_contain_text("There are 9 out of 10")
    sign_out(page)

    sign_in_with_password(page, user)
    expect(page).to_have_url(SECOND_FACTOR)
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Sign In").click()

    expect(page).to_have_url(SECOND_FACTOR)
    expect(page.get_by_role("alert")).to_have_text("Incorrect code.")
    expect_signed_out(page)
    console_errors.assert_none()


def test_the_security_page_lists_the_passkey_and_the_authenticator_app_in_the_app_layout(
    page, user, authenticator, console_errors, save_screenshot
):
    sign_in_with_password(page, user)
    expect_signed_in_on_the_dashboard(page, user)
    add_passkey(page, "work laptop", save_screenshot=save_screenshot)
    # No second Confirm Access: the password was confirmed a moment ago, for the passkey.
    activate_totp(page, confirm=False, save_screenshot=save_screenshot)

    open_security_page(page)

    expect(page.locator("header.topbar")).to_be_visible()
    expect(page.locator("header.topbar .user-menu summary")).to_have_text(user.username)
    expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()
    expect(page).to_have_title(re.compile(r"^\s*Security · Model Registry$"))
    expect(security_section(page, "Authenticator App")).to_contain_text(
        "Authentication using an authenticator app is active."
    )
    expect(security_section(page, "Authenticator App").get_by_role("link", name="Deactivate")).to_be_visible()
    keys = security_section(page, "Security Keys")
    expect(keys.locator(".mfa-keys li")).to_have_count(1)
    expect(keys.locator(".mfa-keys li")).to_contain_text(re.compile(r"work laptop\s+Passkey"))
    expect(keys.get_by_role("link", name="Manage")).to_be_visible()
    expect(security_section(page, "Recovery Codes")).to_contain_text("There are 10 out of 10")
    save_screenshot(page, "mfa-security-page")
    page.set_viewport_size({"width": 375, "height": 800})
    save_screenshot(page, "mfa-security-page-375px")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "sideways scroll at 375px"
    page.set_viewport_size({"width": 1280, "height": 720})

    keys.get_by_role("link", name="Manage").click()
    expect(page.get_by_role("row", name=re.compile("work laptop"))).to_contain_text("Passkey")
    save_screenshot(page, "mfa-security-keys")
    console_errors.assert_none()


def test_confirm_access_links_to_no_missing_page(page, user):
    sign_in_with_password(page, user)
    expect_signed_in_on_the_dashboard(page, user)
    open_security_page(page)
    security_section(page, "Authenticator App").get_by_role("link", name="Activate").click()
    expect(page).to_have_url(re.compile(r"/accounts/reauthenticate/"))
    expect(page.get_by_role("heading", name="Confirm Access")).to_be_visible()

    hrefs = page.locator("main a[href]").evaluate_all("links => links.map(link => link.href)")
    broken = {href: page.request.get(href).status for href in hrefs}
    assert not {href: status for href, status in broken.items() if status >= 400}, broken
