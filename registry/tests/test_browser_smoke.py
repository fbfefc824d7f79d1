"""Smoke tests of the browser-test setup: Chromium, the live server, static files, the login fixtures.

Run them with `REQUIRE_BROWSER=1 .venv/bin/pytest -m browser` (without Chromium they are skipped).
"""

import json
import re

import pytest

from accounts.tests.factories import TEST_PASSWORD

try:
    from playwright.sync_api import expect
except ImportError:  # no Playwright: the `browser` marker skips these tests (fails them with REQUIRE_BROWSER=1)
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_superuser_signs_in_to_the_admin_through_the_apps_login_page(page, superuser, console_errors, save_screenshot):
    stylesheets = []
    page.on("response", lambda response: stylesheets.append(response) if response.url.endswith(".css") else None)

    # The admin's own login form is not a door of its own (a second factor could be skipped there).
    page.goto("/admin/login/?next=/admin/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=(/|%2F)admin(/|%2F)$"))
    page.get_by_label("Username or email").fill(superuser.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    expect(page.locator("#user-tools")).to_contain_text(superuser.username)
    # The admin's own stylesheets came from the live server's static files, and were applied.
    assert stylesheets, "the admin loaded no stylesheet"
    assert all(response.status == 200 for response in stylesheets), [(r.url, r.status) for r in stylesheets]
    assert page.locator("#header").evaluate("element => getComputedStyle(element).display") == "flex"
    save_screenshot(page, "admin-index")
    save_screenshot(page, "admin-index")
    console_errors.assert_none()


def test_browser_login_fixture_opens_the_admin_as_a_superuser(page, browser_login, superuser, console_errors):
    browser_login(page, superuser)

    page.goto("/admin/")

    expect(page).to_have_url(re.compile(r"/admin/$"))  # not sent to the login page
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    console_errors.assert_none()


def test_logged_in_page_fixture_is_logged_in_as_user(logged_in_page, user):
    response = logged_in_page.goto("/admin/")

    # Signed in (the user menu names them), but not staff: the admin answers the app's 403 page.
    assert response.status == 403
    expect(logged_in_page.locator(".user-menu summary")).to_have_text(user.username)
    expect(logged_in_page.get_by_role("heading", name=re.compile("You can.t do that here"))).to_be_visible()


def test_health_page_answers_json(page, live_url, console_errors):
    response = page.goto(f"{live_url}/health")

    assert response.status == 200
    assert response.headers["content-type"].startswith("application/json")
    assert json.loads(page.locator("body").inner_text()) == {
        "status": "ok",
        "database": "ok",
        "cache": "ok",
        "storage": "ok",
    }
    console_errors.assert_none()


def test_api_docs_render_under_the_content_security_policy(page, console_errors):
    response = page.goto("/api/docs/")

    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Model Registry API")
    console_errors.assert_none()
