"""The experiment page's chart of one metric across its runs, and the selector behind it."""

import pytest

from experiments import runs, selectors
from experiments.tests.factories import ExperimentFactory

pytestmark = pytest.mark.django_db

START = 1_767_225_600_000


@pytest.fixture
def experiment(user):
    return ExperimentFactory(owner=user, name="fraud-sweep")


def logged(experiment, user, name, start, **metrics):
    run = runs.run_create(experiment=experiment, actor=user, name=name, start_time=start)
    points = []
    for key, value in metrics.items():
        # Two points: the chart draws the latest (step 2).
        points += [
            {"key": key, "value": value / 2, "step": 1, "timestamp": start + 1},
            {"key": key, "value": value, "step": 2, "timestamp": start + 2},
        ]
    runs.run_log_batch(run=run, actor=user, metrics=points, params=[], tags=[])
    return run


@pytest.fixture
def sweep(experiment, user):
    # Logged out of start order, and "run-b" logged no loss.
    return [
        logged(experiment, user, "run-c", START + 300, accuracy=0.7, loss=0.4),
        logged(experiment, user, "run-a", START + 100, accuracy=0.5, loss=0.9),
        logged(experiment, user, "run-b", START + 200, accuracy=0.9),
    ]


def test_the_selector_gives_a_metrics_latest_values_in_start_order_in_one_query(
    experiment, sweep, user, django_assert_num_queries
):
    with django_assert_num_queries(1):
        rows, truncated = selectors.metric_across_runs(experiment, "accuracy", user=user)
        names = [(row.run.name, row.value) for row in rows]

    assert names == [("run-a", 0.5), ("run-b", 0.9), ("run-c", 0.7)] and truncated is False
    loss, _ = selectors.metric_across_runs(experiment, "loss", user=user)
    assert [row.run.name for row in loss] == ["run-a", "run-c"]  # run-b never logged it


def test_the_selector_keeps_the_most_recent_runs_and_leaves_out_deleted_ones(experiment, sweep, user):
    runs.run_delete(run=sweep[0], actor=user)  # run-c

    rows, truncated = selectors.metric_across_runs(experiment, "accuracy", user=user, limit=1)

    assert [row.run.name for row in rows] == ["run-b"] and truncated is True


def test_the_experiment_page_charts_accuracy_across_its_runs_labelled_by_name(other_client, experiment, sweep):
    html = other_client.get(f"/experiments/{experiment.pk}/").content.decode()

    chart = html[html.index('id="run-chart"') :]
    chart = chart[: chart.index("</section>")]
    assert 'aria-label="accuracy across runs"' in chart
    labels = [part.split("</text>")[0] for part in chart.split('class="viz-xlabel"')[1:]]
    assert [label.rsplit(">", 1)[1] for label in labels] == ["run-a", "run-b", "run-c"]
    assert 'aria-label="run-b: 0.9"' in chart
    assert f'href="/experiments/{experiment.pk}/runs/{sweep[2].run_id}/"' in chart  # a point opens its run
    options = chart[chart.index("<select") : chart.index("</select>")]
    assert '<option value="accuracy" selected>' in options and '<option value="loss">' in options
    assert "/static/css/charts.css" in html and "/static/js/charts.js" in html


def test_a_chosen_metric_is_charted_and_htmx_gets_the_chart_alone(other_client, experiment, sweep):
    full = other_client.get(f"/experiments/{experiment.pk}/?metric=loss").content.decode()
    fragment = other_client.get(
        f"/experiments/{experiment.pk}/?metric=loss", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="run-chart"
    )

    assert 'aria-label="loss across runs"' in full and '<option value="loss" selected>' in full
    html = fragment.content.decode()
    assert html.lstrip().startswith('<section class="panel viz-panel" id="run-chart"')
    assert 'aria-label="loss across runs"' in html and "<html" not in html and 'id="runs-inner"' not in html
    assert "run-b" not in html.split("<svg", 1)[1]  # it logged no loss: no point, no label
    assert "HX-Target" in fragment["Vary"]


def test_an_unknown_metric_falls_back_and_says_so(other_client, experiment, sweep):
    html = other_client.get(f"/experiments/{experiment.pk}/?metric=nope").content.decode()

    assert "No run of this experiment logged “nope”: showing accuracy." in html
    assert 'aria-label="accuracy across runs"' in html


def test_an_experiment_whose_runs_logged_no_metric_has_no_chart(other_client, experiment, user):
    runs.run_create(experiment=experiment, actor=user, name="bare", start_time=START)

    html = other_client.get(f"/experiments/{experiment.pk}/").content.decode()

    assert 'id="run-chart"' not in html and "across runs" not in html


def test_the_chart_adds_one_query_to_the_experiment_page(
    other_client, experiment, sweep, django_assert_max_num_queries
):
    def queries(url: str) -> int:
        with django_assert_max_num_queries(11) as captured:
            assert other_client.get(url).status_code == 200
        return len(captured)

    with_chart = queries(f"/experiments/{experiment.pk}/")
    for run in sweep:
        runs.run_delete(run=run, actor=run.user)
    runs.run_create(experiment=experiment, actor=experiment.owner, name="bare", start_time=START)
    without_chart = queries(f"/experiments/{experiment.pk}/")

    assert with_chart == without_chart + 1
