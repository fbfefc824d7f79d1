"""The version compare and the dashboard in a real browser (Chromium through Playwright): the hash's
copy button copies, three selected versions are compared side by side, and neither page scrolls
sideways on a 375 px screen.

Run with `REQUIRE_BROWSER=1 .venv/bin/pytest -m browser mlmodels/tests/test_browser_compare_dashboard.py`.
"""

import hashlib
import io
import re

import pytest

from experiments.tests.factories import ExperimentFactory
from mlmodels import services
from mlmodels.models import Stage
from mlmodels.tests.factories import MLModelFactory

try:
    from playwright.sync_api import expect
except ImportError:  # without Playwright the `browser` marker skips (or, in CI, fails) these tests
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WEIGHTS = b"v2 weights"


def attach(model, content: bytes, name: str = "model.bin"):
    data = io.BytesIO(content)
    data.name = name
    return services.model_attach_file(model=model, actor=model.owner, file=data)


@pytest.fixture
def star(user):
    """A model with four versions (a file from v2 on, long hyperparameters), in production; and a
    few more models for the dashboard's panels."""
    experiment = ExperimentFactory(owner=user, name="a-rather-long-experiment-name-for-small-screens")
    model = MLModelFactory(
        owner=user,
        name="churn-star-with-a-long-name",
        accuracy=0.81,
        experiment=experiment,
        hyperparameters={"max_depth": 4, "optimizer": {"name": "adam", "betas": [0.9, 0.999]}},
    )
    attach(model, WEIGHTS)
    services.version_record(
        model=model,
        actor=user,
        data={"accuracy": 0.86, "recall": 0.74, "hyperparameters": {"max_depth": 6, "dropout": 0.25}},
        note="retrained on the whole of last quarter's data, with a note long enough to wrap",
    )
    services.version_record(model=model, actor=user, data={"accuracy": 0.79})
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.PRODUCTION)
    services.alias_set(model=model, actor=user, alias="champion", version_number=3)
    for index, framework in enumerate(("sklearn", "pytorch", "pytorch", "onnx", "xgboost", "huggingface")):
        MLModelFactory(owner=user, name=f"crowd-{index:02d}", framework=framework, accuracy=0.5 + index / 20)
    return model


def test_the_copy_button_copies_the_full_hash(logged_in_page, live_url, star, console_errors):
    page = logged_in_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_url)
    page.goto(f"/models/{star.pk}/compare/?v=2&v=3")

    button = page.get_by_role("button", name="Copy the SHA-256 of v2")
    expect(page.locator("table.compare code.sha").first).to_have_text(hashlib.sha256(WEIGHTS).hexdigest()[:12] + "…")
    button.focus()
    page.keyboard.press("Enter")  # a keyboard user copies too

    expect(button).to_have_text("Copied")
    expect(page.locator(".copy-status")).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == hashlib.sha256(WEIGHTS).hexdigest()
    console_errors.assert_none()


def test_select_three_versions_and_compare_them(logged_in_page, star, console_errors, save_screenshot):
    page = logged_in_page
    page.goto(f"/models/{star.pk}/")

    page.get_by_label("v1", exact=True).check()
    page.get_by_label("v2", exact=True).check()
    page.get_by_label("v3", exact=True).check()
    page.get_by_label("v4", exact=True).uncheck()
    page.get_by_role("button", name="Compare").click()

    expect(page).to_have_url(re.compile(r"/compare/\?v=1&v=2&v=3$"))
    expect(page.locator("table.compare thead th.compare-version")).to_have_count(3)
    expect(page.locator(".compare-summary")).to_contain_text("Comparing 3 versions")
    accuracy = page.locator("table.compare tr", has=page.get_by_role("rowheader", name="Accuracy", exact=True))
    expect(accuracy.locator(".delta-same")).to_contain_text("±0")  # v2 (its file only) against v1
    expect(accuracy.locator(".delta-better")).to_contain_text("+0.05")  # v3 against v1
    folder = save_screenshot(page, "model-compare-3-versions").parent
    page.locator("#compare-panel").screenshot(path=str(folder / "model-compare-3-versions-panel.png"))

    # Another baseline, in place.
    page.get_by_role("link", name="make baseline: v3").click()
    expect(page).to_have_url(re.compile(r"/compare/\?v=3&v=1&v=2$"))
    expect(page.locator("table.compare thead th.compare-version").first).to_contain_text("v3")
    console_errors.assert_none()


@pytest.mark.parametrize("path", ["/", "/models/{pk}/compare/?v=1&v=2&v=3&v=4"], ids=["dashboard", "compare"])
def test_no_horizontal_scroll_at_375px(page, browser_login, user, star, console_errors, save_screenshot, path):
    page.set_viewport_size({"width": 375, "height": 812})
    browser_login(page, user)

    page.goto(path.format(pk=star.pk))

    expect(page.locator("main")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, "the page scrolls sideways"
    if "compare" in path:
        # A hash stays on one line (12 characters and its button), whatever the table's width.
        heights = page.locator("table.compare code.sha").evaluate_all("codes => codes.map(c => c.offsetHeight)")
        line = page.locator("table.compare code.sha").first.evaluate(
            "c => parseFloat(getComputedStyle(c).lineHeight) || 24"
        )
        assert heights and max(heights) <= line * 1.5, heights
    else:
        expect(page.locator(".trend .trend-week")).to_have_count(12)
        expect(page.locator(".hbar")).to_have_count(5)
    name = "dashboard" if path == "/" else "model-compare"
    folder = save_screenshot(page, f"{name}-375px-redesign").parent
    if name == "model-compare":
        page.locator("#compare-panel").screenshot(path=str(folder / "model-compare-375px-panel.png"))
    console_errors.assert_none()


def test_the_dashboard_at_1280px(logged_in_page, star, console_errors, save_screenshot):
    page = logged_in_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/")

    expect(page.locator(".hbar").first).to_contain_text("scikit-learn")
    widths = page.locator(".hbar-fill").evaluate_all("bars => bars.map(b => b.getBoundingClientRect().width)")
    assert widths[0] == max(widths) and widths[-1] < widths[0], "bars are scaled to the largest count"
    expect(page.locator("#best-production-title + .ranking").get_by_role("link")).to_have_text(
        ["churn-star-with-a-long-name"]
    )
    expect(page.locator("#dashboard-activity")).to_contain_text("@champion set to v3")
    page.get_by_text("Counts per week").click()
    expect(page.locator(".trend-table tbody tr")).to_have_count(12)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    save_screenshot(page, "dashboard-desktop-redesign")
    console_errors.assert_none()
