"""The experiment page's table of the models it produced (sortable), and the comparison of the
current versions of models selected there."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments.tests.factories import ExperimentFactory
from mlmodels import services
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment(user):
    return ExperimentFactory(owner=user, name="churn-sweep")


def _model(experiment, name, accuracy, **extra):
    return MLModelFactory(owner=experiment.owner, experiment=experiment, name=name, accuracy=accuracy, **extra)


def _names_in_table(html: str) -> list[str]:
    table = html[html.index('id="experiment-models"') :]
    return re.findall(r'<td><a href="/models/\d+/">([^<]+)</a></td>', table)


def test_the_models_table_shows_each_models_stage_versions_metrics_and_scan(owner_client, experiment):
    model = _model(experiment, "churn-gbm", 0.91)
    MLModelFactory(owner=experiment.owner, name="elsewhere")

    html = owner_client.get(f"/experiments/{experiment.pk}/").content.decode()

    table = html[html.index('id="experiment-models"') :]
    assert _names_in_table(html) == ["churn-gbm"]
    assert 'class="badge stage-development"' in table
    assert 'title="1 version, the current one v1"' in table
    assert ">0.9100<" in table
    assert f'name="model" value="{model.pk}"' in table
    assert "elsewhere" not in table


def test_the_models_sort_by_a_metric_either_way_with_missing_values_last(owner_client, experiment):
    _model(experiment, "middle", 0.8)
    _model(experiment, "best", 0.95)
    _model(experiment, "unmeasured", None)
    url = f"/experiments/{experiment.pk}/"

    assert _names_in_table(owner_client.get(url).content.decode()) == ["best", "middle", "unmeasured"]
    assert _names_in_table(owner_client.get(url + "?models_sort=-accuracy").content.decode()) == [
        "best",
        "middle",
        "unmeasured",
    ]
    ascending = owner_client.get(url + "?models_sort=accuracy").content.decode()
    assert _names_in_table(ascending) == ["middle", "best", "unmeasured"]
    assert 'aria-sort="ascending"' in ascending


def test_a_sort_header_keeps_the_runs_sort_and_swaps_only_the_models_table(owner_client, experiment):
    _model(experiment, "a", 0.8)
    _model(experiment, "b", 0.9)
    url = f"/experiments/{experiment.pk}/"

    html = owner_client.get(url + "?sort=-name").content.decode()
    fragment = owner_client.get(
        url + "?models_sort=-accuracy", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="experiment-models"
    ).content.decode()

    assert f'href="/experiments/{experiment.pk}/?sort=-name&amp;models_sort=accuracy"' in html
    assert 'hx-target="#experiment-models"' in html
    assert "<html" not in fragment and 'id="experiment-models"' in fragment and 'id="runs-inner"' not in fragment
    assert _names_in_table(fragment) == ["b", "a"]


def test_an_unknown_models_sort_says_which_terms_exist_and_sorts_by_name(owner_client, experiment):
    _model(experiment, "b", 0.8)
    _model(experiment, "a", 0.9)

    html = owner_client.get(f"/experiments/{experiment.pk}/?models_sort=file;drop").content.decode()

    assert "Sort the models by one of: name, stage, versions, accuracy" in html
    assert _names_in_table(html) == ["a", "b"]


def test_the_experiment_page_reads_its_models_in_one_query_however_many(owner_client, experiment):
    _model(experiment, "first", 0.8)
    url = f"/experiments/{experiment.pk}/"
    owner_client.get(url)
    with CaptureQueriesContext(connection) as one:
        owner_client.get(url)
    for n in range(5):
        _model(experiment, f"more-{n}", 0.5 + n / 10)
    with CaptureQueriesContext(connection) as six:
        response = owner_client.get(url)

    assert len(_names_in_table(response.content.decode())) == 6
    assert len(six) == len(one)


def test_compare_shows_the_current_versions_side_by_side_with_deltas_from_the_baseline(owner_client, experiment):
    first = _model(experiment, "churn-lr", 0.80, hyperparameters={"C": 1.0})
    second = _model(experiment, "churn-gbm", 0.85, hyperparameters={"C": 1.0, "depth": 6})
    services.model_update(model=second, actor=second.owner, data={"accuracy": 0.86})

    with CaptureQueriesContext(connection) as queries:
        response = owner_client.get(f"/experiments/{experiment.pk}/models/compare/?model={first.pk}&model={second.pk}")
    html = response.content.decode()

    assert response.status_code == 200
    assert "Comparing the current versions of <strong>2 models</strong>" in html
    assert html.index(">churn-lr</a>") < html.index(">churn-gbm</a>")
    assert '<span class="delta delta-better"' in html and "+0.06" in html
    assert "depth" in html and "+ added" in html
    assert f"?model={second.pk}&amp;model={first.pk}" in html
    # The session, the user, the experiment, and the versions with their models in one.
    assert len(queries) <= 5


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Select two or more models to compare."),
        ("model={a}", "Select two or more models to compare."),
        ("model={a}&model=abc", "“abc” is not a model id."),
        ("model={a}&model=99999999999999999999", "is not a model id."),
        ("model={a}&model=999999999999999999", "There is no model #999999999999999999 with a version"),
        ("model={a}&model={outsider}", "There is no model #{outsider} with a version to compare here."),
        ("model={a}&model={empty}", "There is no model #{empty} with a version to compare here."),
        ("&".join(f"model={n}" for n in range(1, 10)), "Select at most 8 models"),
    ],
)
def test_compare_says_what_is_wrong_with_the_selection(owner_client, experiment, query, message):
    a = _model(experiment, "a", 0.8)
    outsider = MLModelFactory(owner=experiment.owner, name="outsider")
    empty = services.model_create(owner=experiment.owner, name="empty", experiment=experiment, initial_version=False)
    ids = {"a": a.pk, "outsider": outsider.pk, "empty": empty.pk}

    response = owner_client.get(f"/experiments/{experiment.pk}/models/compare/?{query.format(**ids)}")

    assert response.status_code == 400
    assert message.format(**ids) in response.content.decode()
