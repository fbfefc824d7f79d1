"""MLflow's experiment endpoints (mlflow_api/tracking.py) over our experiments."""

import pytest

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
