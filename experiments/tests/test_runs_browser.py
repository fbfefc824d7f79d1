"""The runs of an experiment in a real browser (Chromium through Playwright): sort, select, compare.

Run with `REQUIRE_BROWSER=1 .venv/bin/pytest -m browser`; screenshots land in test-artifacts/screenshots/.
"""

import re

import pytest

from experiments import runs
from experiments.tests.factories import ExperimentFactory
from mlmodels.tests.factories import MLModelFactory

try:
    from playwright.sync_api import expect
except ImportError:  # without Playwright the `browser` marker skips (or, in CI, fails) these tests
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def experiment(user):
    experiment = ExperimentFactory(owner=user, name="fraud-sweep")
    for n, (lr, accuracy) in enumerate([("0.1", 0.71), ("0.01", 0.93), ("0.001", 0.82)]):
        run = runs.run_create(experiment=experiment, actor=user, name=f"lr-{lr}", start_time=1_767_225_600_000 + n)
        runs.run_log_batch(
            run=run,
            actor=user,
            metrics=[
                {"key": "accuracy", "value": accuracy * s / 3, "step": s, "timestamp": 1_767_225_600_000 + s}
                for s in (1, 2, 3)
            ],
            params=[{"key": "lr", "value": lr}, {"key": "seed", "value": "42"}],
        )
    return experiment


def test_sort_the_runs_by_a_metric_then_compare_two(logged_in_page, experiment, console_errors, save_screenshot):
    page = logged_in_page
    page.goto(f"/experiments/{experiment.pk}/")
    names = page.locator("table.runs tbody tr td:nth-child(2) a")
    expect(names).to_have_text(["lr-0.001", "lr-0.01", "lr-0.1"])

    page.locator("table.runs thead").get_by_role("link", name="accuracy").click()
    expect(names).to_have_text(["lr-0.1", "lr-0.001", "lr-0.01"])
    expect(page).to_have_url(re.compile(r"\?sort=metrics\.accuracy$"))
    page.locator("table.runs thead").get_by_role("link", name="accuracy ▲").click()
    expect(names).to_have_text(["lr-0.01", "lr-0.001", "lr-0.1"])
    expect(page).to_have_url(re.compile(r"\?sort=-metrics\.accuracy$"))
    save_screenshot(page, "experiment-runs-sorted")

    page.get_by_label("Compare lr-0.01").check()
    page.get_by_label("Compare lr-0.1").check()
    page.get_by_role("button", name="Compare selected runs").click()

    expect(page.get_by_role("heading", name="Compare runs")).to_be_visible()
    expect(page.locator("tr.differs th")).to_contain_text(["lr", "accuracy"])
    expect(page.locator("tr:not(.differs) th", has_text="seed")).to_be_visible()
    save_screenshot(page, "experiment-runs-compare")

    page.get_by_role("link", name="lr-0.01").click()
    expect(page.get_by_role("heading", name=re.compile("lr-0.01"))).to_be_visible()
    page.get_by_text("accuracy (3 points)").click()
    expect(page.locator(".metric-history table tbody tr")).to_have_count(3)
    save_screenshot(page, "run-detail")
    console_errors.assert_none()


def test_sort_the_models_by_accuracy_then_compare_their_current_versions(
    logged_in_page, experiment, console_errors, save_screenshot
):
    for name, accuracy in [("fraud-lr", 0.81), ("fraud-gbm", 0.93), ("fraud-rf", 0.88)]:
        MLModelFactory(owner=experiment.owner, experiment=experiment, name=name, accuracy=accuracy)
    page = logged_in_page
    page.goto(f"/experiments/{experiment.pk}/")
    names = page.locator("table.experiment-models tbody tr td:nth-child(2) a")
    expect(names).to_have_text(["fraud-gbm", "fraud-lr", "fraud-rf"])

    page.locator("table.experiment-models thead").get_by_role("link", name="Accuracy").click()
    expect(names).to_have_text(["fraud-lr", "fraud-rf", "fraud-gbm"])
    expect(page).to_have_url(re.compile(r"\?models_sort=accuracy$"))
    page.locator("table.experiment-models thead").get_by_role("link", name="Accuracy ▲").click()
    expect(names).to_have_text(["fraud-gbm", "fraud-rf", "fraud-lr"])

    page.get_by_label("Compare fraud-lr").check()
    page.get_by_label("Compare fraud-gbm").check()
    page.get_by_role("button", name="Compare selected models").click()

    expect(page.get_by_role("heading", name="Compare models")).to_be_visible()
    # The page's order, not the click order: fraud-gbm comes first in the sorted table.
    expect(page.locator("th.compare-version")).to_contain_text(["fraud-gbm", "fraud-lr"])
    expect(page.locator("tr.differs", has_text="Accuracy")).to_contain_text("\N{MINUS SIGN}0.12")
    page.get_by_role("link", name="make baseline: fraud-lr").click()
    expect(page.locator("tr.differs", has_text="Accuracy")).to_contain_text("+0.12")
    save_screenshot(page, "experiment-models-compare")
    console_errors.assert_none()
