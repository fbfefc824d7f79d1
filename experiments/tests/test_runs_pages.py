"""The runs table of the experiment page, the run page, comparing runs, and the runs admin."""

import re

import pytest
from django.urls import reverse

from experiments import runs
from experiments.tests.factories import ExperimentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment(user):
    return ExperimentFactory(owner=user, name="fraud-sweep")


def logged_run(experiment, user, name, *, accuracy, lr, start_time=1_767_225_600_000):
    run = runs.run_create(experiment=experiment, actor=user, name=name, start_time=start_time)
    runs.run_log_batch(
        run=run,
        actor=user,
        metrics=[
            {"key": "accuracy", "value": accuracy * s / 2, "step": s, "timestamp": start_time + s} for s in (1, 2)
        ],
        params=[{"key": "lr", "value": lr}, {"key": "seed", "value": "42"}],
        tags=[{"key": "team", "value": "fraud"}],
    )
    return run


@pytest.fixture
def sweep(experiment, user):
    return [
        logged_run(experiment, user, "run-low", accuracy=0.5, lr="0.1", start_time=1_767_225_600_000),
        logged_run(experiment, user, "run-high", accuracy=0.9, lr="0.01", start_time=1_767_225_700_000),
        logged_run(experiment, user, "run-mid", accuracy=0.7, lr="0.001", start_time=1_767_225_800_000),
    ]


def run_names(html: str) -> list[str]:
    return re.findall(r">(run-[a-z]+)</a></td>", html)


def test_the_experiment_page_shows_its_runs_with_param_and_metric_columns(other_client, experiment, sweep):
    html = other_client.get(f"/experiments/{experiment.pk}/").content.decode()

    assert run_names(html) == ["run-mid", "run-high", "run-low"]  # newest first
    assert ">lr" in html and ">accuracy" in html and ">0.9<" in html
    assert 'class="badge run-running"' in html
    assert f'href="/experiments/{experiment.pk}/runs/{sweep[0].run_id}/"' in html


def test_the_runs_table_sorts_by_a_metric_column_in_place_with_the_address_kept_in_step(
    other_client, experiment, sweep
):
    url = f"/experiments/{experiment.pk}/?sort=-metrics.accuracy"

    fragment = other_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    full = other_client.get(url).content.decode()

    assert "<html" not in fragment and "<html" in full
    assert run_names(fragment) == run_names(full) == ["run-high", "run-mid", "run-low"]
    header = re.search(
        r'<th scope="col" aria-sort="descending"><a href="([^"]+)" hx-get="[^"]+" hx-target="#runs" '
        r'hx-push-url="true">accuracy ▼',
        fragment,
    )
    assert header and "sort=metrics.accuracy" in header.group(1)  # the next click sorts the other way


def test_an_unknown_sort_key_says_so_and_shows_the_default_order(other_client, experiment, sweep):
    html = other_client.get(f"/experiments/{experiment.pk}/?sort=colour").content.decode()

    assert "Cannot sort runs by" in html
    assert run_names(html) == ["run-mid", "run-high", "run-low"]


def test_comparing_two_runs_marks_the_params_and_metrics_that_differ(other_client, experiment, sweep):
    low, high, _ = sweep

    response = other_client.get(f"/experiments/{experiment.pk}/runs/compare/?run={low.run_id}&run={high.run_id}")

    assert response.status_code == 200
    rows = {
        re.sub(r"<[^>]+>|≠", "", match.group(2)).strip(): match.group(1)
        for match in re.finditer(r'<tr class="([a-z]*)">\s*<th scope="row">(.*?)</th>', response.content.decode(), re.S)
    }
    assert rows["param lr"] == "differs" and rows["metric accuracy"] == "differs"
    assert rows["param seed"] == "" and rows["Status"] == ""


def test_comparing_runs_shows_each_metrics_change_from_the_first_run_without_a_direction(
    other_client, experiment, sweep, user
):
    low, high, mid = sweep
    runs.run_log_batch(run=mid, actor=user, metrics=[{"key": "loss", "value": "NaN", "step": 3}])
    runs.run_log_batch(run=low, actor=user, metrics=[{"key": "loss", "value": 0.25, "step": 3}])

    html = other_client.get(
        f"/experiments/{experiment.pk}/runs/compare/?run={low.run_id}&run={high.run_id}&run={mid.run_id}"
    ).content.decode()

    accuracy = re.search(r"metric accuracy.*?</tr>", html, re.S).group(0)
    assert re.findall(r'class="delta delta-(\w+)"[^>]*>([^<]+)<', accuracy) == [
        ("change", "+0.4"),
        ("change", "+0.2"),
    ]
    assert "from run-low" in accuracy
    # No change against a NaN, and none for the first run itself.
    loss = re.search(r"metric loss.*?</tr>", html, re.S).group(0)
    assert "delta" not in loss


@pytest.mark.parametrize("query", ["", "run={first}", "run={first}&run={first}", "run={first}&run=nonsense"])
def test_compare_needs_two_runs_of_the_experiment(other_client, experiment, sweep, query):
    response = other_client.get(f"/experiments/{experiment.pk}/runs/compare/?{query.format(first=sweep[0].run_id)}")

    assert response.status_code == 400
    assert b"Select at least two runs" in response.content


def test_the_run_page_shows_params_latest_metrics_their_history_tags_and_artifacts(
    other_client, experiment, sweep, user
):
    run = sweep[1]
    runs.run_log_batch(run=run, actor=user, metrics=[{"key": "loss", "value": "NaN", "step": 3}])

    html = other_client.get(f"/experiments/{experiment.pk}/runs/{run.run_id}/").content.decode()

    assert "run-high" in html and run.run_id in html
    assert "<dt>lr</dt><dd><code>0.01</code></dd>" in html
    assert "accuracy (2 points)" in html and ">0.45<" in html and ">0.9<" in html
    assert ">NaN<" in html
    assert "<dt>team</dt><dd><code>fraud</code></dd>" in html
    assert run.artifact_uri in html


def test_a_run_is_404_under_another_experiment_and_anonymous_visitors_go_to_login(client, other_client, user, sweep):
    elsewhere = ExperimentFactory(owner=user)
    run = sweep[0]

    assert other_client.get(f"/experiments/{elsewhere.pk}/runs/{run.run_id}/").status_code == 404
    assert other_client.get(f"/experiments/{run.experiment_id}/runs/not-a-run/").status_code == 404
    for url in (
        f"/experiments/{run.experiment_id}/runs/{run.run_id}/",
        f"/experiments/{run.experiment_id}/runs/compare/",
    ):
        assert client.get(url)["Location"].startswith("/accounts/login/")


def test_the_experiment_page_takes_as_many_queries_for_3_runs_as_for_30(
    other_client, experiment, user, django_assert_max_num_queries
):
    def queries(**headers) -> int:
        # The user, the experiment (+ the ids of its models), the models it produced (not for htmx),
        # the runs' count, the param and metric columns, the page of runs (+ users), their params and
        # latest metrics.
        with django_assert_max_num_queries(10) as captured:
            response = other_client.get(f"/experiments/{experiment.pk}/?sort=-metrics.accuracy", **headers)
        assert response.status_code == 200
        return len(captured)

    for n in range(3):
        logged_run(experiment, user, f"run-{'abc'[n]}", accuracy=0.5, lr=str(n))
    few, few_fragment = queries(), queries(HTTP_HX_REQUEST="true")
    for n in range(27):
        logged_run(experiment, user, f"run-x{n}", accuracy=0.6, lr=str(n))
    assert (queries(), queries(HTTP_HX_REQUEST="true")) == (few, few_fragment)


def test_the_admin_shows_a_run_read_only_with_its_params_metrics_and_tags(superuser_client, sweep):
    run = sweep[0]

    page = superuser_client.get(reverse("admin:experiments_run_change", args=[run.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "run-low" in html and "lr" in html and "accuracy" in html and "fraud" in html
    assert 'name="_save"' not in html
    assert superuser_client.get(reverse("admin:experiments_run_add")).status_code == 403


def test_deleting_a_run_in_the_admin_is_the_soft_delete_of_the_service(superuser_client, sweep):
    run = sweep[0]

    response = superuser_client.post(reverse("admin:experiments_run_delete", args=[run.pk]), {"post": "yes"})

    assert response.status_code == 302
    run.refresh_from_db()
    assert run.lifecycle_stage == "deleted" and run.params.count() == 2


def test_deleting_an_experiment_in_the_admin_removes_its_runs(superuser_client, experiment, sweep):
    response = superuser_client.post(
        reverse("admin:experiments_experiment_delete", args=[experiment.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not experiment.runs.exists() and not type(sweep[0]).objects.exists()
