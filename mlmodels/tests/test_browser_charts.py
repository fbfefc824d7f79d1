"""The charts in a real browser: hover shows the values, the current version and aliases are marked,
metrics never recorded draw nothing, and the experiment's runs chart switches metric in place.

Run with `REQUIRE_BROWSER=1 .venv/bin/pytest -m browser mlmodels/tests/test_browser_charts.py`;
screenshots land in /tmp/charts-*.png (and test-artifacts/screenshots/).
"""

import pytest

from experiments import runs
from experiments.tests.factories import ExperimentFactory
from mlmodels import services
from mlmodels.tests.browser_steps import assert_not_reloaded, mark_as_not_reloaded
from mlmodels.tests.factories import MLModelFactory

try:
    from playwright.sync_api import expect
except ImportError:  # without Playwright the `browser` marker skips (or, in CI, fails) these tests
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

START = 1_767_225_600_000


@pytest.fixture
def charted(user):
    """A model with four versions (accuracy and recall, never precision or F1), v2 @challenger."""
    model = MLModelFactory(owner=user, name="churn-charts", accuracy=0.81, precision=None, recall=None, f1_score=None)
    services.version_record(model=model, actor=user, data={"accuracy": 0.83, "recall": 0.7})
    services.version_record(model=model, actor=user, data={"accuracy": 0.86, "recall": 0.74})
    services.version_record(model=model, actor=user, data={"accuracy": 0.85, "recall": 0.75})
    services.alias_set(model=model, actor=user, alias="challenger", version_number=2)
    return model


@pytest.fixture
def swept(user):
    """An experiment with five runs logging accuracy and loss (one of them loss only)."""
    experiment = ExperimentFactory(owner=user, name="lr-sweep")
    for n, (accuracy, loss) in enumerate([(0.61, 0.9), (0.72, 0.6), (None, 0.5), (0.8, 0.45), (0.78, 0.47)]):
        run = runs.run_create(experiment=experiment, actor=user, name=f"lr-{n}", start_time=START + n * 1000)
        metrics = [{"key": "loss", "value": loss, "step": 1, "timestamp": START + n * 1000}]
        if accuracy is not None:
            metrics.append({"key": "accuracy", "value": accuracy, "step": 1, "timestamp": START + n * 1000})
        runs.run_log_batch(run=run, actor=user, metrics=metrics, params=[], tags=[])
    return experiment


def screenshot(page, save_screenshot, name: str, selector: str) -> None:
    page.locator(selector).screenshot(path=f"/tmp/charts-{name}.png")  # noqa: S108 (asked for there)
    save_screenshot(page, f"charts-{name}")


@pytest.mark.parametrize("width", [1280, 375])
def test_the_model_charts_show_values_on_hover_and_mark_the_current_version_and_aliases(
    logged_in_page, charted, console_errors, save_screenshot, width
):
    page = logged_in_page
    page.set_viewport_size({"width": width, "height": 1400})
    page.goto(f"/models/{charted.pk}/")
    panel = page.locator("#charts-panel")
    overlay = panel.locator("svg[aria-label='Metrics by version']")
    expect(overlay).to_be_visible()

    # Only the recorded metrics: in the legend, as small multiples; the others named once.
    expect(panel.locator(".viz-legend")).to_contain_text("Accuracy")
    expect(panel.locator(".viz-legend")).to_contain_text("Recall")
    expect(panel.locator(".viz-legend")).not_to_contain_text("Precision")
    expect(panel.locator("svg[aria-label='Accuracy by version'] circle")).to_have_count(4)
    expect(panel.locator("svg[aria-label='Recall by version'] circle")).to_have_count(3)
    expect(panel.locator("svg[aria-label='Precision by version']")).to_have_count(0)
    expect(panel.locator("svg[aria-label='F1 score by version']")).to_have_count(0)
    expect(panel).to_contain_text("Not recorded by any version: Precision, F1 score.")

    # The x axis names the versions and marks the current one and the alias.
    expect(overlay.locator(".viz-xlabel")).to_have_text(["v1", "v2", "v3", "v4"])
    expect(overlay.locator(".viz-current .viz-xlabel")).to_have_text("v4")
    expect(overlay.locator(".viz-mark-current")).to_have_text("current")
    expect(overlay.locator(".viz-mark-alias")).to_have_text("@challenger")
    expect(overlay.locator(".viz-rule-current")).to_have_count(1)
    expect(overlay.locator(".viz-rule-alias")).to_have_count(1)
    # Tick labels are drawn at a readable size whatever the width (the SVG does not scale).
    size = overlay.locator(".viz-ytick").first.evaluate("t => parseFloat(getComputedStyle(t).fontSize)")
    height = overlay.locator(".viz-xlabel").first.evaluate("t => t.getBoundingClientRect().height")
    assert size >= 12 and height >= 12, (size, height)

    # Hover over v3's column: its tooltip shows both values.
    panel.scroll_into_view_if_needed()
    v3 = overlay.locator(".viz-col").nth(2)
    tip = v3.locator(".viz-tip")
    expect(tip).to_be_hidden()
    v3.locator(".viz-hit").hover()
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("v3")
    expect(tip).to_contain_text("0.86")
    expect(tip).to_contain_text("0.74")
    # The same values are text for screen readers.
    expect(v3).to_have_attribute("aria-label", "v3: Accuracy 0.86, Recall 0.74")
    screenshot(page, save_screenshot, f"model-{width}", "#charts-panel")

    # Keyboard: one tab stop, arrow keys move between versions and show their values.
    overlay.locator(".viz-col").first.focus()
    page.keyboard.press("ArrowRight")
    second = overlay.locator(".viz-col").nth(1)
    expect(second).to_be_focused()
    expect(second.locator(".viz-tip")).to_be_visible()
    expect(second.locator(".viz-tip")).to_contain_text("@challenger")

    # A small multiple's hover names the version and the value.
    small = panel.locator("svg[aria-label='Accuracy by version'] .viz-col").nth(1)
    small.locator(".viz-hit").hover()
    expect(small.locator(".viz-tip")).to_contain_text("v2: 0.83")

    # Page-level: nothing overflows sideways at this width.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    console_errors.assert_none()


def test_the_chart_reads_without_javascript_as_a_table(browser, live_server, user, charted, browser_login):
    context = browser.new_context(java_script_enabled=False, base_url=live_server.url)
    page = context.new_page()
    browser_login(page, user)
    page.goto(f"/models/{charted.pk}/")

    table = page.locator("#chart-metrics details.viz-table")
    table.locator("summary").click()
    expect(table.locator("tbody tr")).to_have_count(4)
    expect(table.locator("tbody tr").nth(1)).to_contain_text("v2")
    expect(table.locator("tbody tr").nth(1)).to_contain_text("@challenger")
    # Hover needs no script.
    v3 = page.locator("#chart-metrics .viz-col").nth(2)
    v3.locator(".viz-hit").hover()
    expect(v3.locator(".viz-tip")).to_be_visible()
    context.close()


def test_a_model_with_no_metric_draws_no_chart(logged_in_page, user, console_errors):
    model = MLModelFactory(owner=user, name="bare", accuracy=None, precision=None, recall=None, f1_score=None)

    logged_in_page.goto(f"/models/{model.pk}/")

    panel = logged_in_page.locator("#charts-panel")
    expect(panel).to_contain_text("No version recorded a metric yet")
    expect(panel.locator("svg")).to_have_count(0)
    console_errors.assert_none()


def test_the_experiment_chart_switches_metric_in_place(logged_in_page, swept, console_errors, save_screenshot):
    page = logged_in_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/experiments/{swept.pk}/")
    chart = page.locator("#run-chart")
    expect(chart.locator("h2")).to_have_text("accuracy across runs")
    expect(chart.locator("svg[aria-label='accuracy across runs'] .viz-xlabel")).to_have_text(
        ["lr-0", "lr-1", "lr-3", "lr-4"]  # lr-2 logged no accuracy
    )
    point = chart.locator(".viz-col").nth(2)
    point.locator(".viz-hit").hover()
    expect(point.locator(".viz-tip")).to_contain_text("lr-3: 0.8")
    screenshot(page, save_screenshot, "experiment-accuracy", "#run-chart")
    mark_as_not_reloaded(page)

    chart.get_by_label("Metric").select_option("loss")

    expect(page.locator("#run-chart h2")).to_have_text("loss across runs")
    expect(page.locator("#run-chart svg[aria-label='loss across runs'] .viz-xlabel")).to_have_text(
        ["lr-0", "lr-1", "lr-2", "lr-3", "lr-4"]
    )
    expect(page).to_have_url(f"{page.url.split('?')[0]}?metric=loss")
    assert_not_reloaded(page)
    page.locator("#run-chart .viz-col").nth(2).locator(".viz-hit").hover()
    expect(page.locator("#run-chart .viz-col").nth(2).locator(".viz-tip")).to_contain_text("lr-2: 0.5")
    # A point opens its run.
    page.locator("#run-chart .viz-col").nth(2).locator(".viz-hit").click()
    expect(page.get_by_role("heading", name="lr-2")).to_be_visible()
    page.go_back()
    expect(page.locator("#run-chart h2")).to_have_text("loss across runs")
    screenshot(page, save_screenshot, "experiment-loss", "#run-chart")
    console_errors.assert_none()


# Vendored axe-core (static/vendor/README.md), injected by URL: the pages' CSP refuses inline scripts.
AXE = "/static/vendor/axe-core-4.14.1.min.js"
RUN_AXE = """async (selector) => {
  const result = await axe.run(selector, { resultTypes: ["violations"] });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => v.id + ": " + v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", "));
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_charts_pass_axe_in_light_and_dark(logged_in_page, charted, swept, console_errors, save_screenshot, scheme):
    page = logged_in_page
    page.emulate_media(color_scheme=scheme)
    page.set_viewport_size({"width": 1280, "height": 1400})
    for url, selector in ((f"/models/{charted.pk}/", "#charts-panel"), (f"/experiments/{swept.pk}/", "#run-chart")):
        page.goto(url)
        page.add_script_tag(url=AXE)
        assert page.evaluate(RUN_AXE, selector) == [], (url, scheme)
        name = "model" if selector == "#charts-panel" else "experiment"
        screenshot(page, save_screenshot, f"{name}-{scheme}", selector)
    console_errors.assert_none()


@pytest.mark.parametrize("width", [1280, 375])
def test_a_sweep_of_many_runs_slants_and_thins_its_labels_and_fits_the_screen(
    logged_in_page, user, console_errors, save_screenshot, width
):
    experiment = ExperimentFactory(owner=user, name="big-sweep")
    for n in range(30):
        run = runs.run_create(
            experiment=experiment, actor=user, name=f"sweep-lr-{n:02d}-batch-64", start_time=START + n
        )
        loss = [{"key": "val_loss", "value": 1 / (n + 2), "step": 1, "timestamp": START + n}]
        runs.run_log_batch(run=run, actor=user, metrics=loss, params=[], tags=[])
    page = logged_in_page
    page.set_viewport_size({"width": width, "height": 1000})

    page.goto(f"/experiments/{experiment.pk}/")

    chart = page.locator("#run-chart svg[aria-label='val_loss across runs']")
    expect(chart).to_be_visible()
    assert chart.locator(".viz-xlabel[transform]").count() > 0, "long names are slanted"
    labels = chart.locator(".viz-xtick:visible .viz-xlabel")
    assert 2 <= labels.count() <= 16
    expect(chart.locator(".viz-col")).to_have_count(30)
    last = chart.locator(".viz-col").last
    last.locator(".viz-hit").hover()
    expect(last.locator(".viz-tip")).to_contain_text("sweep-lr-29-batch-64: 0.03226")
    box, tip = chart.bounding_box(), last.locator(".viz-tip rect").bounding_box()
    assert tip["x"] >= box["x"] - 1 and tip["x"] + tip["width"] <= box["x"] + box["width"] + 1, "the tip fits"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, save_screenshot, f"experiment-many-{width}", "#run-chart")
    console_errors.assert_none()
