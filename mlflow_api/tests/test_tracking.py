"""MLflow's experiment endpoints (mlflow_api/tracking.py) over our experiments."""

import base64
import json

import pytest

from experiments import runs as run_services
from experiments.models import Experiment
from experiments.tests.factories import ExperimentFactory

pytestmark = pytest.mark.django_db
API = "/api/2.0/mlflow"


def test_create_get_by_name_and_by_id(owner_api, user):
    made = owner_api.post(
        f"{API}/experiments/create",
        {
            "name": "churn-training",
            "tags": [{"key": "team", "value": "growth"}, {"key": "mlflow.note.content", "value": "notes"}],
        },
        format="json",
    )
    experiment_id = made.json()["experiment_id"]
    by_name = owner_api.get(f"{API}/experiments/get-by-name", {"experiment_name": "churn-training"})
    by_id = owner_api.get(f"{API}/experiments/get", {"experiment_id": experiment_id})

    assert made.status_code == 200
    shown = by_name.json()["experiment"]
    assert shown == by_id.json()["experiment"]
    assert (shown["experiment_id"], shown["name"], shown["lifecycle_stage"]) == (
        experiment_id,
        "churn-training",
        "active",
    )
    assert {"key": "team", "value": "growth"} in shown["tags"]
    assert Experiment.objects.get(pk=int(experiment_id)).description == "notes"


def test_the_default_experiment_is_the_caller_s_own_made_on_first_use(owner_api, user):
    first = owner_api.get(f"{API}/experiments/get", {"experiment_id": "0"})
    again = owner_api.get(f"{API}/experiments/get-by-name", {"experiment_name": "Default"})

    assert first.json()["experiment"]["name"] == "Default"
    assert first.json()["experiment"]["experiment_id"] == again.json()["experiment"]["experiment_id"]
    assert Experiment.objects.filter(owner=user, name="Default").count() == 1


def test_missing_and_duplicate_experiments_use_mlflow_s_codes(owner_api, user):
    ExperimentFactory(owner=user, name="taken")

    duplicate = owner_api.post(f"{API}/experiments/create", {"name": "taken"}, format="json")
    missing = owner_api.get(f"{API}/experiments/get-by-name", {"experiment_name": "nope"})
    bad_id = owner_api.get(f"{API}/experiments/get", {"experiment_id": "abc"})
    elsewhere = owner_api.post(
        f"{API}/experiments/create", {"name": "x", "artifact_location": "file:///etc"}, format="json"
    )

    assert duplicate.status_code == 400 and duplicate.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert bad_id.status_code == 404
    assert elsewhere.status_code == 400 and "artifact_location" in elsewhere.json()["message"]
    assert not Experiment.objects.filter(name="x").exists()


def test_search_update_tag_and_delete(owner_api, other_api, user):
    mine = ExperimentFactory(owner=user, name="alpha")
    ExperimentFactory(owner=user, name="beta")

    found = owner_api.post(f"{API}/experiments/search", {"filter": "name LIKE 'al%'"}, format="json")
    renamed = owner_api.post(
        f"{API}/experiments/update", {"experiment_id": str(mine.pk), "new_name": "alpha-2"}, format="json"
    )
    tagged = owner_api.post(
        f"{API}/experiments/set-experiment-tag",
        {"experiment_id": str(mine.pk), "key": "k", "value": "v"},
        format="json",
    )
    not_theirs = other_api.post(f"{API}/experiments/delete", {"experiment_id": str(mine.pk)}, format="json")
    deleted = owner_api.post(f"{API}/experiments/delete", {"experiment_id": str(mine.pk)}, format="json")

    assert [e["name"] for e in found.json()["experiments"]] == ["alpha"]
    assert renamed.status_code == tagged.status_code == deleted.status_code == 200
    assert not_theirs.status_code == 403 and not_theirs.json()["error_code"] == "PERMISSION_DENIED"
    assert not Experiment.objects.filter(pk=mine.pk).exists()


# --- runs/search: MLflow's filter grammar, order_by and page tokens -----------------------------------


def point(key, value):
    return {"key": key, "value": value, "timestamp": 1_000, "step": 0}


@pytest.fixture
def board(user):
    """Four runs of one experiment, started 1000 … 4000 ms (the newest last):

    alpha: acc 0.95, `my metric` 3, lr "0.1", team "x", tags.x "banana", FINISHED at 9000
    beta:  acc 0.80,               lr "0.2", team "x", tags.x "BANANA", FINISHED at 9000
    gamma: acc NaN,                lr "0.1", team "y",                   RUNNING
    delta: no metric, no param,              team "y", tags.x "cherry",  FAILED at 8000
    """
    experiment = ExperimentFactory(owner=user, name="board")
    specs = [
        ("alpha", {"acc": 0.95, "my metric": 3}, {"lr": "0.1"}, {"team": "x", "x": "banana"}, ("FINISHED", 9000)),
        ("beta", {"acc": 0.8}, {"lr": "0.2"}, {"team": "x", "x": "BANANA"}, ("FINISHED", 9000)),
        ("gamma", {"acc": "NaN"}, {"lr": "0.1"}, {"team": "y"}, None),
        ("delta", {}, {}, {"team": "y", "x": "cherry"}, ("FAILED", 8000)),
    ]
    made = {}
    for n, (name, metrics, params, tags, end) in enumerate(specs, start=1):
        run = run_services.run_create(experiment=experiment, actor=user, name=name, start_time=n * 1000)
        run_services.run_log_batch(
            run=run,
            actor=user,
            metrics=[point(key, value) for key, value in metrics.items()],
            params=[{"key": key, "value": value} for key, value in params.items()],
            tags=[{"key": key, "value": value} for key, value in tags.items()],
        )
        if end is not None:
            run_services.run_update(run=run, actor=user, status=end[0], end_time=end[1])
        made[name] = run
    return experiment, made


def searched(api, experiment, **body) -> list[str]:
    answer = api.post(f"{API}/runs/search", {"experiment_ids": [str(experiment.pk)], **body}, format="json")
    assert answer.status_code == 200, answer.json()
    return [run["info"]["run_name"] for run in answer.json()["runs"]]


@pytest.mark.parametrize(
    ("filter", "names"),
    [
        ("metrics.acc > 0.9", ["alpha"]),
        ("metrics.acc >= 0.8 and metrics.acc <= 0.95", ["beta", "alpha"]),
        # A NaN meets != only; a run without the metric meets nothing, != included.
        ("metrics.acc != 0.8", ["gamma", "alpha"]),
        ("metrics.acc < 1", ["beta", "alpha"]),
        ("metrics.`my metric` = 3", ["alpha"]),
        ("params.lr = '0.1' and tags.team = 'x'", ["alpha"]),
        ("params.lr != '0.1'", ["beta"]),
        ("params.lr IS NULL", ["delta"]),
        ("tags.x IS NOT NULL", ["delta", "beta", "alpha"]),
        ("tags.x LIKE '%an%'", ["alpha"]),
        ("tags.x ILIKE '%an%'", ["beta", "alpha"]),
        ("tags.x LIKE 'b_n%'", ["alpha"]),
        ("attributes.status = 'FINISHED' and attributes.run_name ILIKE 'B%'", ["beta"]),
        ("status != 'RUNNING'", ["delta", "beta", "alpha"]),
        ("attributes.start_time >= 2000 and start_time < 4000", ["gamma", "beta"]),
        # An unfinished run has no end_time: it meets no comparison of it.
        ("attributes.end_time != 8000", ["beta", "alpha"]),
        ("created > 3000", ["delta"]),
        ("attributes.`Run name` = 'gamma'", ["gamma"]),
    ],
)
def test_runs_search_applies_mlflow_s_filter_grammar(owner_api, board, filter, names):
    experiment, _ = board

    assert searched(owner_api, experiment, filter=filter) == names


def test_runs_search_filters_run_ids_in_and_not_in_a_list(owner_api, board):
    experiment, runs = board
    pair = f"('{runs['alpha'].run_id}', '{runs['delta'].run_id}')"

    assert searched(owner_api, experiment, filter=f"run_id IN {pair}") == ["delta", "alpha"]
    assert searched(owner_api, experiment, filter=f"attributes.run_id NOT IN {pair}") == ["gamma", "beta"]


@pytest.mark.parametrize(
    ("order_by", "names"),
    [
        # Missing last and NaN after the numbers, in either direction (MLflow's SQL store).
        (["metrics.acc DESC"], ["alpha", "beta", "gamma", "delta"]),
        (["metrics.acc"], ["beta", "alpha", "gamma", "delta"]),
        (["params.lr DESC"], ["beta", "gamma", "alpha", "delta"]),
        (["tags.team ASC", "attributes.run_name DESC"], ["beta", "alpha", "gamma", "delta"]),
        (["attributes.end_time DESC"], ["beta", "alpha", "delta", "gamma"]),
        (["start_time ASC"], ["alpha", "beta", "gamma", "delta"]),
        (["metrics.`my metric` DESC"], ["alpha", "delta", "gamma", "beta"]),
        # No order: newest first.
        ([], ["delta", "gamma", "beta", "alpha"]),
    ],
)
def test_runs_search_orders_as_mlflow_with_ties_newest_first(owner_api, board, order_by, names):
    experiment, _ = board

    assert searched(owner_api, experiment, order_by=order_by) == names


def test_runs_search_pages_with_mlflow_s_page_tokens(owner_api, board):
    experiment, _ = board
    body = {"experiment_ids": [str(experiment.pk)], "max_results": 3, "order_by": ["attributes.run_name"]}

    first = owner_api.post(f"{API}/runs/search", body, format="json").json()
    rest = owner_api.post(f"{API}/runs/search", {**body, "page_token": first["next_page_token"]}, format="json").json()

    assert [run["info"]["run_name"] for run in first["runs"]] == ["alpha", "beta", "delta"]
    assert json.loads(base64.b64decode(first["next_page_token"])) == {"offset": 3}
    assert [run["info"]["run_name"] for run in rest["runs"]] == ["gamma"]
    assert "next_page_token" not in rest


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"filter": "metrics.acc > '0.9'"}, "Expected a numeric value for 'metrics.acc'"),
        ({"filter": "params.lr > '0.1'"}, "Cannot compare params.lr with '>'"),
        ({"filter": "tags.team = 3"}, "Expected a quoted string value"),
        ({"filter": "metrics.acc LIKE 1"}, "Cannot compare metrics.acc with 'LIKE'"),
        ({"filter": "run_name IN ('a', 'b')"}, "Only ['run_id'] attributes support"),
        ({"filter": "start_time = 'yesterday'"}, "Expected a numeric value for 'start_time'"),
        ({"filter": "attributes.colour = 'red'"}, "Invalid attribute key 'colour'"),
        ({"filter": "fields.x = 'y'"}, "Invalid entity type 'fields'"),
        ({"filter": "datasets.name = 'iris'"}, "by datasets is not supported"),
        ({"filter": "metrics.acc > 0.9 OR metrics.acc < 0.1"}, "joined with AND only"),
        ({"filter": "metrics.acc >"}, "has no value"),
        ({"filter": "run_id IN ()"}, "non-empty list"),
        ({"filter": ["metrics.acc > 1"]}, "a string is expected"),
        ({"order_by": ["metrics.acc UPWARDS"]}, "Invalid ordering key in order_by clause"),
        ({"order_by": ["metrics.acc", "metrics.acc DESC"]}, "duplicate fields"),
        ({"order_by": ["attributes.colour"]}, "Invalid attribute key 'colour'"),
        ({"page_token": "not base64!"}, "Invalid page token"),
        ({"page_token": 12}, "Invalid page token"),
        ({"order_by": [12]}, "Invalid order_by clause"),
        ({"filter": "start_time > 99999999999999999999"}, "out of range"),
        ({"filter": "end_time < 1e400"}, "a time in epoch milliseconds"),
        ({"filter": "tags.team = 'x\x00'"}, "NUL character"),
    ],
)
def test_bad_run_searches_are_invalid_parameter_value_naming_the_problem(owner_api, board, body, message):
    experiment, _ = board

    answer = owner_api.post(f"{API}/runs/search", {"experiment_ids": [str(experiment.pk)], **body}, format="json")

    assert answer.status_code == 400
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in answer.json()["message"]
