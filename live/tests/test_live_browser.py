"""Live updates in a real browser (Chromium through Playwright), served by daphne (HTTP and WebSocket):
what one person changes appears on another person's open pages within a second, without a reload,
and a page whose connection dropped catches up once it is back.

Run with `REQUIRE_BROWSER=1 .venv/bin/pytest -m browser live/`; the screenshot lands in
test-artifacts/screenshots/ (live-*).
"""

import re

import pytest
from django.conf import settings as django_settings
from django.test import Client

from accounts.tests.factories import UserFactory
from mlmodels import services
from mlmodels.models import Stage
from mlmodels.tests.browser_steps import accept_dialogs, assert_not_reloaded, mark_as_not_reloaded
from mlmodels.tests.factories import MLModelFactory

try:
    from playwright.sync_api import expect
except ImportError:  # without Playwright the `browser` marker skips (or, in CI, fails) these tests
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
# What "without reload, within a second" allows for the change to reach the other page.
WITHIN_A_SECOND = 1000


class PageErrors:
    def __init__(self):
        self.messages = []

    def watch(self, page):
        page.on("console", lambda message: message.type == "error" and self.messages.append(message.text))
        page.on("pageerror", lambda error: self.messages.append(str(error)))
        return page


@pytest.fixture
def errors():
    return PageErrors()


@pytest.fixture
def person(browser, asgi_live_url, errors):
    """``person(user)``: a browser context of its own, signed in as ``user``; returns a page maker."""
    contexts = []

    def sign_in(user):
        context = browser.new_context(base_url=asgi_live_url, viewport=DESKTOP)
        contexts.append(context)
        client = Client()
        client.force_login(user)
        name = django_settings.SESSION_COOKIE_NAME
        context.add_cookies([{"name": name, "value": client.cookies[name].value, "url": asgi_live_url}])

        def open_page(path, *, socket_route=None):
            page = errors.watch(context.new_page())
            if socket_route is not None:
                page.route_web_socket(re.compile(r"/ws/events/$"), socket_route)
            page.goto(path)
            expect(page.locator("html")).to_have_attribute("data-live", "open")
            mark_as_not_reloaded(page)
            return page

        return context, open_page

    yield sign_in
    for context in contexts:
        context.close()


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")


def test_a_promotion_by_one_person_updates_the_others_model_page_list_and_dashboard(
    person, alice, bob, errors, save_screenshot
):
    model = MLModelFactory(owner=alice, name="churn")
    _, alice_opens = person(alice)
    _, bob_opens = person(bob)
    bob_model = bob_opens(f"/models/{model.pk}/")
    bob_list = bob_opens("/models/")
    bob_dashboard = bob_opens("/")
    expect(bob_dashboard.locator(".card.stage-staging .stat-number")).to_have_text("0")

    # Alice promotes on her page.
    alice_page = alice_opens(f"/models/{model.pk}/")
    accept_dialogs(alice_page)
    alice_page.locator("#lifecycle-to").select_option("staging")
    alice_page.locator("#lifecycle-comment").fill("offline eval passed")
    alice_page.locator("#lifecycle-move").click()
    expect(alice_page.locator("#lifecycle-stage")).to_have_text("Staging")
    expect(alice_page.locator("#lifecycle-notice, #lifecycle-error")).to_have_count(0)

    # Bob's three pages follow, in place.
    expect(bob_model.locator("#lifecycle-stage")).to_have_text("Staging", timeout=WITHIN_A_SECOND)
    expect(bob_model.locator("#stage-badge")).to_have_text("Staging", timeout=WITHIN_A_SECOND)
    expect(bob_model.locator("#timeline")).to_contain_text("offline eval passed", timeout=WITHIN_A_SECOND)
    row = bob_list.locator(f"#model-row-{model.pk}")
    expect(row.locator(".badge")).to_have_text("Staging", timeout=WITHIN_A_SECOND)
    expect(bob_dashboard.locator(".card.stage-staging .stat-number")).to_have_text("1", timeout=WITHIN_A_SECOND)
    expect(bob_dashboard.locator(".timeline.compact")).to_contain_text("churn", timeout=WITHIN_A_SECOND)
    # Bob reads no owner's buttons: the regions came back rendered for him, not for Alice.
    expect(bob_model.locator("#lifecycle-form")).to_have_count(0)

    # A tag and a new version from Alice's pipeline (the services, as the API calls them).
    services.tag_set(model=model, actor=alice, key="team", value="payments")
    services.version_record(model=model, actor=alice, data={"accuracy": 0.97}, note="nightly retrain")
    expect(bob_model.locator("#model-tags")).to_contain_text("team: payments", timeout=WITHIN_A_SECOND)
    expect(bob_model.locator("#versions")).to_contain_text("nightly retrain", timeout=WITHIN_A_SECOND)
    expect(bob_model.locator("#metric-cards")).to_contain_text("0.97", timeout=WITHIN_A_SECOND)
    expect(row).to_contain_text("team: payments", timeout=WITHIN_A_SECOND)

    # A new model is announced on the list, not pushed into the rows Bob reads.
    rows_before = bob_list.locator("table.models tbody tr").count()
    MLModelFactory(owner=alice, name="fraud")
    notice = bob_list.locator("#new-models")
    expect(notice).to_be_visible(timeout=WITHIN_A_SECOND)
    expect(notice).to_contain_text("1 new model registered")
    assert bob_list.locator("table.models tbody tr").count() == rows_before
    notice.get_by_role("button", name="Show").click()
    expect(bob_list.locator("table.models tbody")).to_contain_text("fraud")
    expect(notice).to_be_hidden()

    # Bob typed nothing: no region of his waits for him to finish editing.
    expect(bob_model.locator(".live-stale")).to_have_count(0)
    for page in (bob_model, bob_list, bob_dashboard):
        assert_not_reloaded(page)
    save_screenshot(bob_model, "live-model-page-updated")
    assert not errors.messages, errors.messages


def test_a_page_does_not_replace_a_form_its_user_is_typing_in(person, alice, bob, errors):
    model = MLModelFactory(owner=bob, name="churn")
    _, bob_opens = person(bob)
    page = bob_opens(f"/models/{model.pk}/")
    comment = page.locator("#lifecycle-comment")
    comment.fill("half-written thou")

    services.lifecycle_move(model=model, actor=UserFactory(is_superuser=True), to_stage=Stage.STAGING)
    panel = page.locator("#lifecycle-panel")
    expect(panel.locator(".live-stale")).to_be_visible(timeout=WITHIN_A_SECOND)
    expect(comment).to_have_value("half-written thou")  # still there, still focused
    expect(page.locator("#lifecycle-stage")).to_have_text("Development")

    panel.locator(".live-stale").get_by_role("button", name="Update").click()
    expect(page.locator("#lifecycle-stage")).to_have_text("Staging")
    expect(panel.locator(".live-stale")).to_have_count(0)
    assert_not_reloaded(page)
    assert not errors.messages, errors.messages


class DroppableSocket:
    """Stands between the page and the server's socket (Playwright's WebSocket routing): ``drop()``
    closes the page's connection as a restarting server would and turns its reconnects away until
    ``restore()``. (Chromium's offline mode, context.set_offline, leaves an open WebSocket open.)"""

    def __init__(self):
        self.open_routes = []
        self.refusing = False

    def __call__(self, route):
        if self.refusing:
            route.close(code=1012, reason="restarting")
            return
        route.connect_to_server()
        self.open_routes.append(route)

    def drop(self):
        self.refusing = True
        for route in self.open_routes:
            route.close(code=1012, reason="restarting")
        self.open_routes.clear()

    def restore(self):
        self.refusing = False


def test_a_page_whose_connection_dropped_catches_up_when_it_is_back(person, alice, bob, errors):
    model = MLModelFactory(owner=alice, name="churn")
    _, bob_opens = person(bob)
    connection = DroppableSocket()
    page = bob_opens(f"/models/{model.pk}/", socket_route=connection)
    live_state = page.locator("html")

    connection.drop()
    expect(live_state).to_have_attribute("data-live", "closed")
    # Changed while Bob's page cannot hear it: no event of these will ever reach it.
    services.lifecycle_move(model=model, actor=alice, to_stage=Stage.STAGING, comment="while you were away")
    services.tag_set(model=model, actor=alice, key="team", value="payments")
    page.wait_for_timeout(300)
    expect(page.locator("#lifecycle-stage")).to_have_text("Development")
    connection.restore()

    # Reconnected (with backoff), the page refreshes every region from the database.
    expect(live_state).to_have_attribute("data-live", "open", timeout=5000)
    expect(page.locator("#lifecycle-stage")).to_have_text("Staging", timeout=WITHIN_A_SECOND)
    expect(page.locator("#timeline")).to_contain_text("while you were away")
    expect(page.locator("#model-tags")).to_contain_text("team: payments")
    assert_not_reloaded(page)
    assert not errors.messages, errors.messages
