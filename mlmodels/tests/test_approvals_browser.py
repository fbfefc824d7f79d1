"""Approvals, aliases and tags in a real browser (Chromium through Playwright): an owner asks for
production and for a protected alias, an approver decides in the inbox and on the model page, and
tags change in place.

Run with `REQUIRE_BROWSER=1 .venv/bin/pytest -m browser mlmodels/tests/test_approvals_browser.py`;
screenshots land in test-artifacts/screenshots/ (approvals-*).
"""

import io
import re

import pytest

from mlmodels import approvals, services
from mlmodels.models import ApprovalRequest, ApprovalStatus, MLModel, ProtectedAlias, Stage
from mlmodels.tests.browser_steps import accept_dialogs, assert_not_reloaded, mark_as_not_reloaded
from mlmodels.tests.factories import MLModelFactory

try:
    from playwright.sync_api import expect
except ImportError:  # without Playwright the `browser` marker skips (or, in CI, fails) these tests
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
NARROW = {"width": 375, "height": 812}


def assert_fits(page, width: int = 375):
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "the page scrolls sideways"


def messages(page):
    return page.locator("ul.messages")


@pytest.fixture(autouse=True)
def _approvals_on(settings):
    settings.PRODUCTION_NEEDS_APPROVAL = True


@pytest.fixture(autouse=True)
def _champion_is_protected(db):
    ProtectedAlias.objects.create(name="champion")


@pytest.fixture
def second_page(browser, live_server, console_errors):
    """A page in a browser context of its own (its own cookies: another person), watched for errors."""
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = console_errors.watch(context.new_page())
    yield page
    context.close()


@pytest.fixture
def approver_page(second_page, browser_login, approver):
    return browser_login(second_page, approver)


def pending_request(model, **filters) -> ApprovalRequest:
    return ApprovalRequest.objects.get(model=model, status=ApprovalStatus.PENDING, **filters)


def ask_for_production(model, actor, comment: str = "offline eval passed") -> ApprovalRequest:
    request = services.lifecycle_move(model=model, actor=actor, to_stage=Stage.PRODUCTION, comment=comment)
    assert request is not None, "approvals are on: the owner's move should be a request"
    return request


def test_owner_asks_for_production_and_a_protected_alias_and_the_approver_carries_both_out(
    logged_in_page, approver_page, staged, console_errors, save_screenshot
):
    page = logged_in_page
    page.set_viewport_size(DESKTOP)
    accept_dialogs(page)
    page.goto(f"/models/{staged.pk}/")
    mark_as_not_reloaded(page)

    # The owner asks for production, in place.
    expect(page.locator("#lifecycle-approval-note")).to_contain_text("needs an approver")
    page.locator("#lifecycle-to").select_option("production")
    expect(page.locator("#lifecycle-to option:checked")).to_have_text("Production (asks an approver)")
    page.locator("#lifecycle-comment").fill("offline eval passed")
    page.locator("#lifecycle-move").click()

    notice = page.locator("#toasts .toast")
    expect(notice).to_contain_text(re.compile(r"Asked for approval \(request #\d+\)"))
    request = pending_request(staged)
    expect(notice).to_contain_text(f"Asked for approval (request #{request.pk})")
    pending = page.locator("#pending-requests")
    expect(pending.get_by_role("heading", name="Waiting for approval")).to_be_visible()
    expect(pending.locator(f"#approval-{request.pk}")).to_contain_text("move to production")
    expect(pending.locator(f"#approval-{request.pk}")).to_contain_text("offline eval passed")
    expect(page.locator("#lifecycle-stage")).to_have_text("Staging")
    expect(page.locator("#stage-badge")).to_have_text("Staging")
    assert_not_reloaded(page)
    assert MLModel.objects.get(pk=staged.pk).lifecycle == Stage.STAGING

    # The approver sees the count in the navigation, and decides in the inbox.
    other = approver_page
    other.goto("/")
    nav_link = other.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile("^Approvals"))
    expect(nav_link).to_be_visible()
    expect(nav_link.locator(".nav-count")).to_have_text("1")
    nav_link.click()
    expect(other).to_have_url(re.compile(r"/approvals/$"))
    waiting = other.locator("#waiting")
    expect(waiting.get_by_role("heading", name=re.compile("Waiting for your decision"))).to_be_visible()
    card = waiting.locator(f"#approval-{request.pk}")
    expect(card).to_contain_text("churn")
    expect(card).to_contain_text("move to production")
    expect(card).to_contain_text("Asked by owner")
    card.get_by_role("button", name="Approve").click()

    expect(other).to_have_url(re.compile(r"/approvals/$"))
    expect(messages(other)).to_contain_text(f"Request #{request.pk}")
    expect(messages(other)).to_contain_text("approved and carried out")
    expect(other.locator("#waiting")).to_contain_text("Nothing is waiting.")
    expect(other.locator("#decided").locator(f"#approval-{request.pk}")).to_contain_text("approved by reviewer")
    expect(other.get_by_role("navigation", name="Main").locator(".nav-count")).to_have_count(0)

    other.goto(f"/models/{staged.pk}/")
    expect(other.locator("#lifecycle-stage")).to_have_text("Production")
    timeline = other.locator("#timeline")
    expect(timeline).to_contain_text(f"request #{request.pk}")
    expect(timeline).to_contain_text("owner asked to move to production")
    expect(timeline.locator("li.history-decided")).to_contain_text(f"request #{request.pk} approved")
    expect(timeline.locator("li.history-decided")).to_contain_text("by reviewer")
    expect(timeline.locator("li.history-lifecycle").first).to_contain_text(
        f"by reviewer, approving request #{request.pk}"
    )
    assert MLModel.objects.get(pk=staged.pk).lifecycle == Stage.PRODUCTION

    # An ordinary alias: the owner sets it at once.
    page.goto(f"/models/{staged.pk}/")
    form = page.locator("#alias-form")
    form.locator("#alias-name").fill("challenger")
    form.locator("#alias-version").fill("1")
    form.get_by_role("button", name="Set alias").click()
    expect(messages(page)).to_contain_text("@challenger now points at version 1.")
    aliases = page.locator("#aliases-panel")
    expect(aliases.locator(".chip.alias")).to_have_text(["@challenger → v1"])

    # A protected one: the owner's attempt is a request.
    form.locator("#alias-name").fill("champion")
    form.locator("#alias-version").fill("1")
    form.locator("#alias-comment").fill("best offline AUC")
    form.get_by_role("button", name="Set alias").click()
    expect(messages(page)).to_contain_text("Asked for approval")
    alias_request = pending_request(staged, alias="champion")
    expect(messages(page)).to_contain_text(f"request #{alias_request.pk}")
    expect(messages(page)).to_contain_text("point @champion at version 1")
    expect(aliases.locator(".chip.alias")).to_have_text(["@challenger → v1"])
    expect(page.locator(f"#pending-requests #approval-{alias_request.pk}")).to_contain_text("Cancel my request")

    # The approver approves it on the model page itself.
    other.goto(f"/models/{staged.pk}/")
    alias_card = other.locator(f"#pending-requests #approval-{alias_request.pk}")
    expect(alias_card).to_contain_text("point @champion at version 1")
    alias_card.get_by_role("button", name="Approve").click()
    expect(other).to_have_url(re.compile(rf"/models/{staged.pk}/$"))
    expect(messages(other)).to_contain_text(f"Request #{alias_request.pk}")
    expect(messages(other)).to_contain_text("approved and carried out")
    expect(other.locator("#aliases-panel .chip.alias")).to_contain_text(["@challenger → v1", "@champion → v1"])
    expect(other.locator("#pending-requests")).to_have_count(0)
    expect(other.locator("#timeline li.history-alias").first).to_contain_text(f"approving request #{alias_request.pk}")

    page.reload()
    expect(page.locator("#aliases-panel .chip.alias", has_text="@champion")).to_have_text("@champion → v1")
    assert MLModel.objects.get(pk=staged.pk).aliases == {"challenger": 1, "champion": 1}
    save_screenshot(page, "approvals-journey-end-owner")
    console_errors.assert_none()


def test_rejecting_needs_a_reason_and_the_owner_reads_it_in_the_inbox(
    logged_in_page, approver_page, staged, user, console_errors
):
    request = ask_for_production(staged, user)
    other = approver_page
    other.goto(f"/models/{staged.pk}/")
    card = other.locator(f"#approval-{request.pk}")
    reason = card.get_by_label("Reason (required)")
    expect(reason).to_have_attribute("required", "")

    card.get_by_role("button", name="Reject").click()

    # The browser keeps the form: the empty reason is invalid, nothing was sent.
    assert reason.evaluate("input => input.validity.valueMissing") is True
    expect(other).to_have_url(re.compile(rf"/models/{staged.pk}/$"))
    expect(messages(other)).to_have_count(0)
    assert ApprovalRequest.objects.get(pk=request.pk).status == ApprovalStatus.PENDING

    reason.fill("the drift check has not run yet")
    card.get_by_role("button", name="Reject").click()

    expect(messages(other)).to_contain_text(f"Request #{request.pk} (churn: move to production) rejected.")
    expect(other.locator("#pending-requests")).to_have_count(0)
    expect(other.locator("#lifecycle-stage")).to_have_text("Staging")
    expect(other.locator("#timeline li.history-decided")).to_contain_text(f"request #{request.pk} rejected")
    expect(other.locator("#timeline li.history-decided")).to_contain_text("the drift check has not run yet")
    assert ApprovalRequest.objects.get(pk=request.pk).status == ApprovalStatus.REJECTED

    page = logged_in_page
    page.goto("/approvals/")
    expect(page.locator("#waiting")).to_contain_text("Nothing is waiting.")
    expect(page.locator("#mine")).to_contain_text("You have no pending requests.")
    decided = page.locator("#decided").locator(f"#approval-{request.pk}")
    expect(decided).to_contain_text("rejected")
    expect(decided).to_contain_text("rejected by reviewer")
    expect(decided.locator(".decision")).to_have_text("Decision: the drift check has not run yet")
    expect(decided.get_by_role("button")).to_have_count(0)
    assert MLModel.objects.get(pk=staged.pk).lifecycle == Stage.STAGING
    console_errors.assert_none()


def test_the_owner_cancels_their_own_pending_request_in_the_inbox(logged_in_page, staged, user, console_errors):
    request = ask_for_production(staged, user)
    page = logged_in_page
    page.goto("/approvals/")
    # The owner is no approver: the navigation has the link without a count, the request waits for
    # someone else, and they get no decision buttons.
    nav_link = page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile("^Approvals"))
    expect(nav_link).to_have_attribute("aria-current", "page")
    expect(nav_link.locator(".nav-count")).to_have_count(0)
    expect(page.locator("#waiting-title")).to_contain_text("Waiting for an approver")
    mine = page.locator("#mine")
    expect(mine.locator(".count")).to_have_text("1")
    card = mine.locator(f"#approval-{request.pk}")
    expect(card).to_contain_text("churn")
    expect(card.get_by_role("button", name="Approve")).to_have_count(0)
    expect(card.get_by_role("button", name="Reject")).to_have_count(0)

    card.get_by_role("button", name="Cancel my request").click()

    expect(page).to_have_url(re.compile(r"/approvals/$"))
    expect(messages(page)).to_contain_text(f"Request #{request.pk} cancelled.")
    expect(page.locator("#mine")).to_contain_text("You have no pending requests.")
    expect(page.locator("#decided").locator(f"#approval-{request.pk}")).to_contain_text("cancelled by owner")
    assert ApprovalRequest.objects.get(pk=request.pk).status == ApprovalStatus.CANCELLED
    page.goto(f"/models/{staged.pk}/")
    expect(page.locator("#pending-requests")).to_have_count(0)
    expect(page.locator("#lifecycle-stage")).to_have_text("Staging")
    console_errors.assert_none()


def test_the_owner_cancels_the_request_they_just_filed_from_the_lifecycle_panel(logged_in_page, staged, console_errors):
    page = logged_in_page
    accept_dialogs(page)
    page.goto(f"/models/{staged.pk}/")
    page.locator("#lifecycle-to").select_option("production")
    page.locator("#lifecycle-move").click()
    card = page.locator("#pending-requests .approval-card")
    expect(card).to_be_visible()

    card.get_by_role("button", name="Cancel my request").click()

    expect(page).to_have_url(re.compile(rf"/models/{staged.pk}/$"))
    expect(messages(page)).to_contain_text("cancelled")
    console_errors.assert_none()


def test_tags_are_added_and_removed_in_place_and_a_refused_key_says_why(
    logged_in_page, staged, browser_login, second_page, other_user, console_errors
):
    owner = logged_in_page
    owner.goto(f"/models/{staged.pk}/")
    mark_as_not_reloaded(owner)
    tags = owner.locator("#model-tags")
    expect(tags.locator(".chip")).to_have_count(0)

    tags.locator("summary", has_text="Add a tag").click()
    tags.get_by_label("Key").fill("team")
    tags.get_by_label("Value").fill("payments")
    tags.get_by_role("button", name="Add").click()

    chip = owner.locator("#model-tags .chip", has_text="team: payments")
    expect(chip).to_be_visible()
    expect(chip).to_have_attribute("href", "/models/?tag=team:payments")
    assert MLModel.objects.get(pk=staged.pk).tags == {"team": "payments"}

    owner.get_by_role("button", name="Remove the tag team").click()

    expect(owner.locator("#model-tags .chip")).to_have_count(0)
    expect(owner.get_by_role("button", name="Remove the tag team")).to_have_count(0)
    assert MLModel.objects.get(pk=staged.pk).tags == {}

    # A key the service refuses (an invisible character in it): the reason shows inside the tags.
    tags = owner.locator("#model-tags")
    tags.locator("summary", has_text="Add a tag").click()
    tags.get_by_label("Key").fill("team\u200b")
    tags.get_by_label("Value").fill("payments")
    tags.get_by_role("button", name="Add").click()

    error = owner.locator("#model-tags #tag-error")
    expect(error).to_contain_text("Contains control or invisible characters (U+200B)")
    expect(owner.locator("#model-tags details.tag-add")).to_have_attribute("open", "")
    expect(owner.locator("#model-tags #tag-value")).to_have_value("payments")
    expect(owner.locator("#model-tags .chip")).to_have_count(0)
    assert MLModel.objects.get(pk=staged.pk).tags == {}
    assert_not_reloaded(owner)

    # A fixed key goes in from the same form.
    owner.locator("#model-tags #tag-key").fill("team")
    owner.locator("#model-tags").get_by_role("button", name="Add").click()
    expect(owner.locator("#model-tags .chip")).to_have_text(["team: payments"])
    expect(owner.locator("#model-tags #tag-error")).to_have_count(0)
    assert_not_reloaded(owner)

    # Someone else reads the tags but gets no controls.
    someone = browser_login(second_page, other_user)
    someone.goto(f"/models/{staged.pk}/")
    expect(someone.locator("#model-tags .chip")).to_have_text(["team: payments"])
    expect(someone.locator("#model-tags summary")).to_have_count(0)
    expect(someone.locator("#model-tags form")).to_have_count(0)
    expect(someone.get_by_role("button", name="Remove the tag team")).to_have_count(0)
    console_errors.assert_none()


@pytest.fixture
def showcase(user, approver):
    """A model with a few aliases (champion among them), tags, a pending request and a decided one;
    and another owner's pending request, so the inbox shows one waiting and one decided for ``user``."""
    model = MLModelFactory(owner=user, name="churn-predictor-eu-west", accuracy=0.81)
    data = io.BytesIO(b"weights")
    data.name = "churn-predictor-eu-west-2024-05.onnx"
    services.model_attach_file(model=model, actor=user, file=data)
    services.version_record(model=model, actor=user, data={"accuracy": 0.86}, note="retrained on May data")
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)
    services.alias_set(model=model, actor=user, alias="challenger", version_number=3)
    services.alias_set(model=model, actor=user, alias="staging-eu", version_number=3)
    services.alias_set(model=model, actor=approver, alias="champion", version_number=2)
    services.tag_set(model=model, actor=user, key="team", value="payments")
    services.tag_set(model=model, actor=user, key="region", value="eu-west-1")
    services.tag_set(model=model, actor=user, key="owner-email", value="data-science-payments@example.com")
    rejected = services.alias_set(
        model=model, actor=user, alias="champion", version_number=3, comment="v3 beats v2 on recall"
    )
    approvals.approval_reject(approval=rejected, actor=approver, comment="Wait for the A/B test to finish first.")
    ask_for_production(
        model, user, comment="Offline evaluation passed on the May holdout; the drift report is attached to the run."
    )
    return model


@pytest.mark.parametrize("width", ["desktop", "375px"])
@pytest.mark.parametrize("viewer", ["owner", "approver"])
def test_the_model_page_with_aliases_tags_and_a_pending_request_looks_right(
    page, browser_login, user, approver, showcase, console_errors, save_screenshot, viewer, width
):
    page.set_viewport_size(DESKTOP if width == "desktop" else NARROW)
    browser_login(page, user if viewer == "owner" else approver)

    page.goto(f"/models/{showcase.pk}/")

    expect(page.locator("#aliases-panel .chip.alias")).to_have_text(
        ["@challenger → v3", "@staging-eu → v3", "@champion → v2"]
    )
    expect(page.locator("#model-tags .chip")).to_have_count(3)
    card = page.locator("#pending-requests .approval-card")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("move to production")
    buttons = ["Cancel my request"] if viewer == "owner" else ["Approve", "Reject"]
    for name in buttons:
        expect(card.get_by_role("button", name=name)).to_be_visible()
    expect(page.locator("#timeline li.history-decided")).to_contain_text("rejected")
    if viewer == "owner":
        page.locator("#model-tags summary", has_text="Add a tag").click()  # the form in the picture too
        expect(page.locator("#model-tags #tag-key")).to_be_visible()
    if width == "375px":
        assert_fits(page)
        for name in buttons:
            box = card.get_by_role("button", name=name).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 375, f"{name} is cut off"
    save_screenshot(page, f"approvals-model-page-{viewer}-{width}")
    console_errors.assert_none()


@pytest.mark.parametrize("width", ["desktop", "375px"])
def test_the_inbox_with_a_waiting_and_a_decided_request_looks_right(
    page, browser_login, approver, showcase, console_errors, save_screenshot, width
):
    page.set_viewport_size(DESKTOP if width == "desktop" else NARROW)
    browser_login(page, approver)

    page.goto("/approvals/")

    waiting = page.locator("#waiting .approval-card")
    expect(waiting).to_have_count(1)
    expect(waiting).to_contain_text("churn-predictor-eu-west")
    expect(waiting.get_by_role("button", name="Approve")).to_be_visible()
    expect(waiting.get_by_role("button", name="Reject")).to_be_visible()
    expect(page.locator("#decided .approval-card")).to_have_count(1)
    expect(page.locator("#decided .approval-card")).to_contain_text("Wait for the A/B test to finish first.")
    expect(page.get_by_role("navigation", name="Main").locator(".nav-count")).to_have_text("1")
    if width == "375px":
        assert_fits(page)
        for name in ("Approve", "Reject"):
            box = waiting.get_by_role("button", name=name).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 375, f"{name} is cut off"
    save_screenshot(page, f"approvals-inbox-{width}")
    console_errors.assert_none()


def test_each_tags_remove_button_sits_beside_its_chip(logged_in_page, showcase, console_errors):
    page = logged_in_page
    page.set_viewport_size(DESKTOP)
    page.goto(f"/models/{showcase.pk}/")

    items = page.locator("#model-tags .tags .tag-item")
    expect(items).to_have_count(3)
    for key, value in showcase.tags.items():
        item = items.filter(has=page.locator(".chip", has_text=f"{key}: {value}"))
        button = item.get_by_role("button", name=f"Remove the tag {key}")
        expect(button).to_have_count(1)
        chip, remove = item.locator(".chip").bounding_box(), button.bounding_box()
        assert remove["x"] >= chip["x"] + chip["width"] - 1, f"the remove button of {key} is not after its chip"
        middle = remove["y"] + remove["height"] / 2
        assert chip["y"] <= middle <= chip["y"] + chip["height"], f"the remove button of {key} is not beside its chip"
    console_errors.assert_none()


def test_an_approver_gets_remove_buttons_only_for_the_protected_aliases_of_a_model_they_do_not_own(
    page, browser_login, approver, showcase, console_errors
):
    browser_login(page, approver)
    page.goto(f"/models/{showcase.pk}/")

    rows = page.locator("#aliases-panel .alias-list li")
    expect(rows.filter(has_text="@champion").get_by_role("button", name="Remove")).to_have_count(1)
    expect(rows.filter(has_text="@challenger").get_by_role("button", name="Remove")).to_have_count(0)
    expect(rows.filter(has_text="@staging-eu").get_by_role("button", name="Remove")).to_have_count(0)
    console_errors.assert_none()
