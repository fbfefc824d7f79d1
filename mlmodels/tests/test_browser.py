"""The dashboard in a real browser (Chromium through Playwright): what a person does all day.

Run with `REQUIRE_BROWSER=1 .venv/bin/pytest -m browser`; screenshots land in test-artifacts/screenshots/.
"""

import io
import re

import pytest

from accounts.tests.factories import TEST_PASSWORD
from experiments.tests.factories import ExperimentFactory
from mlmodels import services
from mlmodels.models import MLModel, Stage
from mlmodels.tests.browser_steps import accept_dialogs, assert_not_reloaded, mark_as_not_reloaded
from mlmodels.tests.factories import MLModelFactory

try:
    from playwright.sync_api import expect
except ImportError:  # without Playwright the `browser` marker skips (or, in CI, fails) these tests
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def attach(model, content: bytes = b"weights", name: str = "model.bin"):
    data = io.BytesIO(content)
    data.name = name
    return services.model_attach_file(model=model, actor=model.owner, file=data)


@pytest.fixture
def registry(user, other_user):
    """A small registry: a model with three versions and a file, and a crowd for the list."""
    experiment = ExperimentFactory(owner=user, name="churn-study")
    star = MLModelFactory(owner=user, name="churn-star", accuracy=0.81, experiment=experiment)
    attach(star, b"v2 weights")
    services.version_record(model=star, actor=user, data={"accuracy": 0.86, "recall": 0.74}, note="retrained")
    for index in range(24):
        MLModelFactory(
            owner=user if index % 2 else other_user,
            name=f"crowd-{index:02d}",
            framework="sklearn" if index % 3 == 0 else "pytorch",
            accuracy=round(0.5 + index / 100, 2),
        )
    return star


def test_log_in_through_the_form_and_land_on_the_dashboard(page, user, registry, console_errors, save_screenshot):
    page.goto("/")

    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    page.get_by_label("Username or email").fill(user.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator(".stat.stage-development .stat-number")).to_have_text("25")
    save_screenshot(page, "dashboard-desktop")
    console_errors.assert_none()


def test_filter_search_sort_and_paginate_keep_the_url_and_history(
    logged_in_page, registry, console_errors, save_screenshot
):
    page = logged_in_page
    page.goto("/models/")
    expect(page.locator(".results")).to_contain_text("25 models")

    page.get_by_label("Framework").select_option("sklearn")
    expect(page).to_have_url(re.compile(r"framework=sklearn"))
    expect(page.locator(".results")).to_contain_text("9 models")

    page.get_by_label("Search").fill("crowd-1")
    expect(page).to_have_url(re.compile(r"search=crowd-1"))
    expect(page.locator(".results")).to_contain_text("3 models")
    save_screenshot(page, "models-filtered-desktop")

    page.get_by_role("link", name="Accuracy").click()
    expect(page).to_have_url(re.compile(r"ordering=accuracy"))
    expect(page.locator("table.models tbody tr").first).to_contain_text("crowd-12")
    page.get_by_role("link", name=re.compile("Accuracy")).click()
    expect(page).to_have_url(re.compile(r"ordering=-accuracy"))
    expect(page.locator("table.models tbody tr").first).to_contain_text("crowd-18")

    page.go_back()
    expect(page).to_have_url(re.compile(r"ordering=accuracy(&|$)"))
    expect(page.locator("table.models tbody tr").first).to_contain_text("crowd-12")
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"ordering="))
    page.go_forward()
    expect(page).to_have_url(re.compile(r"ordering=accuracy(&|$)"))

    page.goto("/models/?ordering=name")
    page.get_by_role("link", name="Next →").click()
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(page.locator(".pagination")).to_contain_text("Page 2 of 2")
    page.go_back()
    expect(page.locator(".pagination")).to_contain_text("Page 1 of 2")
    page.reload()
    expect(page.locator(".pagination")).to_contain_text("Page 1 of 2")
    expect(page.locator("html")).to_have_count(1)  # a full page after reload, not a bare fragment
    console_errors.assert_none()


def test_promote_development_to_staging_to_production_in_place(logged_in_page, registry, console_errors):
    page = logged_in_page
    accept_dialogs(page)
    page.goto(f"/models/{registry.pk}/")
    mark_as_not_reloaded(page)

    page.locator("#lifecycle-to").select_option("staging")
    page.locator("#lifecycle-move").click()
    expect(page.locator("#lifecycle-stage")).to_have_text("Staging")
    expect(page.locator("#stage-badge")).to_have_text("Staging")
    page.locator("#lifecycle-to").select_option("production")
    page.locator("#lifecycle-comment").fill("beats the baseline")
    page.locator("#lifecycle-move").click()

    expect(page.locator("#lifecycle-stage")).to_have_text("Production")
    expect(page.locator("#model-head #stage-badge")).to_have_text("Production")
    expect(page.locator("#timeline li").first).to_contain_text("beats the baseline")
    assert_not_reloaded(page)
    assert MLModel.objects.get(pk=registry.pk).lifecycle == Stage.PRODUCTION
    console_errors.assert_none()


def test_production_is_refused_inline_for_a_model_without_a_file(logged_in_page, user, console_errors):
    model = MLModelFactory(owner=user, name="no-artifact")
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)
    page = logged_in_page
    accept_dialogs(page)
    page.goto(f"/models/{model.pk}/")

    page.locator("#lifecycle-to").select_option("production")
    page.locator("#lifecycle-comment").fill("ready for traffic")
    page.locator("#lifecycle-move").click()

    expect(page.locator("#lifecycle-error")).to_contain_text("without an artifact file cannot go to production")
    expect(page.locator("#lifecycle-stage")).to_have_text("Staging")
    # The one comment field keeps what was typed, and the move chosen, for the next try.
    expect(page.locator("#lifecycle-comment")).to_have_value("ready for traffic")
    expect(page.locator("#lifecycle-to")).to_have_value("production")
    console_errors.assert_none()


def test_upload_shows_progress_to_100_and_the_new_version(logged_in_page, registry, console_errors, tmp_path):
    artifact = tmp_path / "big-model.onnx"
    artifact.write_bytes(b"\x01" * (3 * 1024 * 1024))
    page = logged_in_page
    page.goto(f"/models/{registry.pk}/")

    page.get_by_label("New artifact file").set_input_files(str(artifact))
    page.get_by_role("button", name="Upload").click()

    toast = page.locator("#toasts .toast")
    expect(toast).to_contain_text("big-model.onnx as version 4")
    expect(toast).to_contain_text("3.0 MB")
    assert page.locator("#upload-progress").evaluate("bar => bar.value") == 100
    expect(page.locator("#upload-percent")).to_have_text("100%")
    expect(page.locator("#version-4")).to_contain_text("big-model.onnx")
    console_errors.assert_none()


def test_compare_two_versions_marks_the_differences(logged_in_page, registry, console_errors, save_screenshot):
    page = logged_in_page
    page.goto(f"/models/{registry.pk}/")

    page.get_by_label("v1", exact=True).check()
    page.get_by_label("v2", exact=True).uncheck()
    page.get_by_role("button", name="Compare").click()

    expect(page).to_have_url(re.compile(r"/compare/\?v=1&v=3"))
    differing = page.locator("table.compare tr.differs th")
    expect(differing).to_contain_text(["Accuracy", "Recall", "File"])
    save_screenshot(page, "model-compare-desktop")
    page.reload()
    expect(page.locator("table.compare tr.differs").first).to_be_visible()
    console_errors.assert_none()


def test_roll_back_to_the_first_version_in_place(logged_in_page, registry, console_errors, save_screenshot):
    page = logged_in_page
    accept_dialogs(page)
    page.goto(f"/models/{registry.pk}/")
    save_screenshot(page, "model-detail-desktop")
    mark_as_not_reloaded(page)

    page.locator("#version-1").get_by_role("button", name="Roll back").click()

    expect(page.locator("#toasts .toast")).to_contain_text("recorded as version 4")
    expect(page.locator("#version-4")).to_contain_text("Rolled back to version 1")
    expect(page.locator("#model-head")).to_contain_text("version 4")
    expect(page.locator("#metric-cards .stat").first).to_contain_text("0.81")
    expect(page.locator("#artifact-panel")).to_contain_text("No artifact file yet")  # v1 had none
    expect(page.get_by_role("link", name="Download artifact")).to_have_count(0)
    expect(page.locator("#compare-v4")).to_have_count(1)
    assert_not_reloaded(page)
    assert MLModel.objects.get(pk=registry.pk).accuracy == 0.81
    console_errors.assert_none()


def test_an_upload_refreshes_the_model_page_in_place(
    logged_in_page, registry, console_errors, save_screenshot, tmp_path
):
    artifact = tmp_path / "retrained.onnx"
    artifact.write_bytes(b"\x02" * 2048)
    page = logged_in_page
    page.goto(f"/models/{registry.pk}/")
    expect(page.locator("#model-head")).to_contain_text("version 3")
    mark_as_not_reloaded(page)

    page.get_by_label("New artifact file").set_input_files(str(artifact))
    page.get_by_label("Note (optional)").fill("retrained on May data")
    page.get_by_role("button", name="Upload").click()

    expect(page.locator("#toasts .toast")).to_contain_text("as version 4")
    expect(page.locator("#model-head")).to_contain_text("version 4")
    panel = page.locator("#artifact-panel")
    expect(panel).to_contain_text("retrained.onnx")
    expect(panel.get_by_role("link", name="Download")).to_have_attribute(
        "href", f"/api/v1/models/{registry.pk}/download/"
    )
    expect(page.locator("#versions h2")).to_contain_text("(4)")
    expect(page.locator("#version-4")).to_contain_text("retrained.onnx")
    expect(page.locator("svg[aria-label='Accuracy by version'] circle")).to_have_count(4)
    expect(page.locator("#compare-v4")).to_be_checked()
    expect(page.locator("#compare-v3")).to_be_checked()
    assert page.locator("#id_file").evaluate("input => input.files.length") == 0, "the file input kept its file"
    expect(page.get_by_label("Note (optional)")).to_have_value("")
    assert_not_reloaded(page)
    save_screenshot(page, "model-detail-after-upload")

    # The swapped-in compare form is live: htmx processed it (v3 and v4 are checked).
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("table.compare tr.differs th")).to_contain_text(["File"])
    console_errors.assert_none()


def test_a_first_upload_shows_the_download_button_and_clears_the_production_refusal(
    logged_in_page, user, console_errors, tmp_path
):
    model = MLModelFactory(owner=user, name="no-file-yet")
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)
    artifact = tmp_path / "first.bin"
    artifact.write_bytes(b"first weights")
    page = logged_in_page
    accept_dialogs(page)
    page.goto(f"/models/{model.pk}/")
    expect(page.locator("#artifact-panel")).to_contain_text("No artifact file yet")
    expect(page.get_by_role("link", name="Download artifact")).to_have_count(0)
    page.locator("#lifecycle-to").select_option("production")
    page.locator("#lifecycle-move").click()
    expect(page.locator("#lifecycle-error")).to_contain_text("Upload a file first")
    mark_as_not_reloaded(page)

    page.get_by_label("New artifact file").set_input_files(str(artifact))
    page.get_by_role("button", name="Upload").click()

    expect(page.get_by_role("link", name="Download artifact")).to_be_visible()
    expect(page.locator("#artifact-panel")).not_to_contain_text("No artifact file yet")
    expect(page.locator("#artifact-panel")).to_contain_text("first.bin")
    expect(page.locator("#lifecycle-error")).to_have_count(0)
    page.locator("#lifecycle-to").select_option("production")
    page.locator("#lifecycle-move").click()
    expect(page.locator("#stage-badge")).to_have_text("Production")
    assert_not_reloaded(page)
    console_errors.assert_none()


def test_another_user_is_told_why_and_gets_a_403_page_with_a_way_back(
    page, browser_login, other_user, registry, console_errors, save_screenshot
):
    browser_login(page, other_user)
    page.goto(f"/models/{registry.pk}/")
    expect(page.locator("#model-head")).to_contain_text("Read-only: owned by owner")
    save_screenshot(page, "model-detail-read-only")

    response = page.goto(f"/models/{registry.pk}/edit/")

    assert response.status == 403
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Only the model's owner or a superuser can change it.")
    save_screenshot(page, "403-edit-model")
    # Chromium logs the 403 answer itself as a console error; nothing else may show up.
    assert [message for message in console_errors if "status of 403" not in message] == []
    console_errors.clear()
    page.get_by_role("link", name="Back to the model").click()
    expect(page).to_have_url(re.compile(rf"/models/{registry.pk}/$"))
    console_errors.assert_none()


def test_a_write_refused_after_the_page_loaded_shows_the_servers_reason_in_place(
    logged_in_page, registry, other_user, console_errors
):
    page = logged_in_page
    accept_dialogs(page)
    page.goto(f"/models/{registry.pk}/")
    MLModel.objects.filter(pk=registry.pk).update(owner=other_user)  # handed over in another tab

    page.locator("#lifecycle-move").click()  # the first move offered: staging

    expect(page.locator("#lifecycle-panel [role=alert]")).to_have_text(
        "Only the model's owner or a superuser can change it."
    )
    # The refused request itself is logged, by Chromium and by htmx; nothing else may be.
    assert [m for m in console_errors if "403" not in m and "htmx:responseError" not in m] == []


def test_a_missing_model_gets_a_404_page_with_a_way_back(logged_in_page, settings, console_errors, save_screenshot):
    settings.DEBUG = False  # DEBUG shows Django's technical 404 page instead
    page = logged_in_page

    response = page.goto("/models/999999/")

    assert response.status == 404
    expect(page.locator("main")).to_contain_text("There is no such model")
    save_screenshot(page, "404-missing-model")
    assert [message for message in console_errors if "status of 404" not in message] == []
    console_errors.clear()
    page.get_by_role("link", name="All models").click()
    expect(page).to_have_url(re.compile(r"/models/$"))
    console_errors.assert_none()


def test_a_page_past_the_last_shows_the_last_page_at_its_own_url(logged_in_page, registry, console_errors):
    page = logged_in_page

    page.goto("/models/?ordering=name&page=99")

    expect(page).to_have_url(re.compile(r"/models/\?ordering=name&page=2$"))
    expect(page.locator("main")).to_contain_text("There is no page 99: showing page 2, the last.")
    expect(page.locator(".pagination")).to_contain_text("Page 2 of 2")
    console_errors.assert_none()


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("dashboard", "/"),
        ("models-filtered", "/models/?framework=pytorch&ordering=-accuracy"),
        ("model-detail", "/models/{pk}/"),
        ("model-compare", "/models/{pk}/compare/?a=1&b=3"),
        ("experiments", "/experiments/"),
        ("model-new", "/models/new/"),
    ],
)
def test_main_pages_fit_a_375px_screen(page, browser_login, user, registry, console_errors, save_screenshot, name, url):
    page.set_viewport_size({"width": 375, "height": 812})
    browser_login(page, user)

    page.goto(url.format(pk=registry.pk))

    expect(page.locator("main")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, "the page scrolls sideways"
    save_screenshot(page, f"{name}-375px")
    console_errors.assert_none()
