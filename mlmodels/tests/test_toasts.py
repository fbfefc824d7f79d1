"""The model page's htmx actions that went through say so in a toast: a ``toast`` event in the
answer's HX-Trigger header (registry.pages.with_toast), shown by static/js/app.js in the page's one
#toasts region. A refusal sends none: it stays beside its form, as a role=alert."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from mlmodels import services
from mlmodels.models import MLModel, Stage
from mlmodels.tests.browser_steps import accept_dialogs, assert_not_reloaded, mark_as_not_reloaded
from mlmodels.tests.factories import MLModelFactory

try:
    from playwright.sync_api import expect
except ImportError:  # without Playwright the `browser` marker skips (or, in CI, fails) the browser test
    expect = None

HTMX = {"HTTP_HX_REQUEST": "true"}


def toast(response) -> dict | None:
    """The toast event's detail in ``response``'s HX-Trigger header; None when it sends no toast."""
    if "HX-Trigger" not in response:
        return None
    return json.loads(response["HX-Trigger"]).get("toast")


def success(message: str) -> dict:
    return {"message": message, "level": "success"}


@pytest.fixture
def model(user):
    return MLModelFactory(owner=user, name="churn", accuracy=0.8)


def with_file(model):
    services.model_attach_file(model=model, actor=model.owner, file=SimpleUploadedFile("w.bin", b"weights"))


# --- The lifecycle move -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_move_sends_a_toast_instead_of_a_notice_in_the_panel(owner_client, model):
    response = owner_client.post(reverse("model-lifecycle", args=[model.pk]), {"lifecycle": "staging"}, **HTMX)

    assert response.status_code == 200
    assert toast(response) == success("churn moved to staging.")
    content = response.content.decode()
    assert "moved to staging" not in content
    assert 'id="lifecycle-feedback"></div>' in content, "the panel's feedback stays empty"


@pytest.mark.django_db
def test_asking_for_approval_sends_a_toast_with_the_request(settings, owner_client, model, user):
    settings.PRODUCTION_NEEDS_APPROVAL = True
    with_file(model)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)

    response = owner_client.post(
        reverse("model-lifecycle", args=[model.pk]), {"lifecycle": "production", "comment": "please"}, **HTMX
    )

    request = model.approval_requests.get()
    message = toast(response)["message"]
    assert message.startswith(f"Asked for approval (request #{request.pk}): an approver will ")
    assert 'id="pending-requests"' in response.content.decode()


@pytest.mark.django_db
def test_a_refused_move_sends_no_toast_and_keeps_its_alert_and_comment(owner_client, user):
    model = MLModelFactory(owner=user, name="no-file")
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)

    response = owner_client.post(
        reverse("model-lifecycle", args=[model.pk]), {"lifecycle": "production", "comment": "ready"}, **HTMX
    )

    assert toast(response) is None
    content = response.content.decode()
    assert '<p class="error" role="alert" id="lifecycle-error">' in content
    assert ">ready</textarea>" in content
    assert MLModel.objects.get(pk=model.pk).lifecycle == Stage.STAGING


@pytest.mark.django_db
def test_a_whole_page_move_keeps_its_message_and_sends_no_toast(owner_client, model):
    response = owner_client.post(reverse("model-lifecycle", args=[model.pk]), {"lifecycle": "archived"})

    assert response.status_code == 302 and toast(response) is None
    assert "churn moved to archived." in owner_client.get(response["Location"]).content.decode()


# --- Rollback and upload --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_rollback_sends_a_toast_along_with_versions_changed(owner_client, model, user):
    services.version_record(model=model, actor=user, data={"accuracy": 0.1})

    response = owner_client.post(reverse("model-rollback", args=[model.pk, 1]), **HTMX)

    events = json.loads(response["HX-Trigger"])
    assert "versionsChanged" in events
    assert events["toast"] == success("Rolled back to version 1: recorded as version 3.")
    assert "Rolled back to version 1: recorded" not in response.content.decode()


@pytest.mark.django_db
def test_a_refused_rollback_sends_no_toast_and_says_why_above_the_table(owner_client, model, user):
    with_file(model)  # v2 has a file, v1 has none
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.PRODUCTION)

    response = owner_client.post(reverse("model-rollback", args=[model.pk, 1]), **HTMX)

    assert "HX-Trigger" not in response
    assert '<p class="message error" role="alert">Version 1 has no artifact file' in response.content.decode()


@pytest.mark.django_db
def test_an_upload_sends_a_toast_with_the_file_and_its_size(owner_client, model):
    response = owner_client.post(
        reverse("model-upload", args=[model.pk]),
        {"file": SimpleUploadedFile("weights.bin", b"abc"), "note": ""},
        **HTMX,
    )

    events = json.loads(response["HX-Trigger"])
    assert "versionsChanged" in events
    assert events["toast"] == success("Uploaded weights.bin as version 2 (3\xa0bytes).")
    assert 'id="upload-done"' not in response.content.decode()


@pytest.mark.django_db
def test_a_failed_upload_sends_no_toast(owner_client, model):
    response = owner_client.post(reverse("model-upload", args=[model.pk]), {}, **HTMX)

    assert "HX-Trigger" not in response
    assert b'role="alert"' in response.content


# --- Tags and aliases -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_adding_and_removing_a_tag_each_send_a_toast(owner_client, model):
    added = owner_client.post(reverse("model-tag-set", args=[model.pk]), {"key": "team", "value": "risk"}, **HTMX)
    removed = owner_client.post(reverse("model-tag-delete", args=[model.pk]), {"key": "team"}, **HTMX)

    assert toast(added) == success("Tag “team” set.")
    assert toast(removed) == success("Tag “team” removed.")
    # The header is ASCII (HTTP headers are Latin-1); the quotes arrive as JSON escapes.
    assert "\\u201cteam\\u201d" in added["HX-Trigger"]


@pytest.mark.django_db
def test_a_refused_tag_sends_no_toast_and_keeps_its_error_beside_the_form(owner_client, model):
    missing = owner_client.post(reverse("model-tag-delete", args=[model.pk]), {"key": "ghost"}, **HTMX)
    invalid = owner_client.post(reverse("model-tag-set", args=[model.pk]), {"key": "", "value": "x"}, **HTMX)

    for response in (missing, invalid):
        assert toast(response) is None
        assert 'role="alert" id="tag-error"' in response.content.decode()


@pytest.mark.django_db
def test_the_alias_forms_post_the_whole_page_and_keep_their_messages(owner_client, model):
    response = owner_client.post(reverse("model-alias-set", args=[model.pk]), {"alias": "champion", "version": 1})

    assert response.status_code == 302 and toast(response) is None
    assert "@champion now points at version 1." in owner_client.get(response["Location"]).content.decode()


# --- In the browser ---------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_move_shows_a_toast_in_the_status_region_and_its_button_dismisses_it(
    logged_in_page, model, console_errors, save_screenshot
):
    page = logged_in_page
    accept_dialogs(page)
    page.goto(f"/models/{model.pk}/")
    mark_as_not_reloaded(page)
    region = page.get_by_role("status").and_(page.locator("#toasts"))
    expect(region).to_have_attribute("aria-live", "polite")
    expect(region.locator(".toast")).to_have_count(0)

    page.locator("#lifecycle-to").select_option("staging")
    page.locator("#lifecycle-move").click()

    toast_ = region.locator(".toast.success")
    expect(toast_).to_have_count(1)
    expect(toast_.locator(".toast-message")).to_have_text("churn moved to staging.")
    expect(page.locator("#lifecycle-stage")).to_have_text("Staging")
    expect(page.locator("#lifecycle-feedback")).to_be_empty()
    save_screenshot(page, "model-toast-desktop", full_page=False)

    # Hovered, it stays past its time; the button takes it away at once.
    toast_.hover()
    page.wait_for_timeout(6500)
    expect(toast_).to_have_count(1)
    toast_.get_by_role("button", name="Dismiss").click()
    expect(region.locator(".toast")).to_have_count(0)
    assert_not_reloaded(page)
    console_errors.assert_none()
