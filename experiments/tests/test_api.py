"""/api/v1/experiments/ as the owner, another signed-in user, a superuser and an anonymous client."""

import pytest

from experiments.models import Experiment
from experiments.tests.factories import ExperimentFactory
from mlmodels.models import MLModel
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db

EXPERIMENTS = "/api/v1/experiments/"
FIELDS = {"id", "name", "description", "parameters", "tags", "owner_id", "model_ids", "created_at", "updated_at"}


@pytest.fixture
def experiment(user):
    return ExperimentFactory(owner=user, name="sweep", tags=["fraud", "gbdt"], description="card fraud sweep")


def test_anonymous_client_gets_401_everywhere(api_client, experiment):
    assert api_client.get(EXPERIMENTS).status_code == 401
    assert api_client.post(EXPERIMENTS, {"name": "x"}).status_code == 401
    for method in ("get", "put", "patch", "delete"):
        assert getattr(api_client, method)(f"{EXPERIMENTS}{experiment.pk}/").status_code == 401


def test_any_signed_in_user_reads_experiments_with_the_models_they_produced(client_for, other_user, experiment, user):
    first = MLModelFactory(owner=user, experiment=experiment)
    second = MLModelFactory(owner=user, experiment=experiment)
    MLModelFactory(owner=user)

    response = client_for(other_user).get(f"{EXPERIMENTS}{experiment.pk}/")

    assert response.status_code == 200
    assert set(response.json()) == FIELDS
    assert response.json()["model_ids"] == [first.pk, second.pk]


def test_list_query_count_does_not_grow_with_rows(owner_api, user, django_assert_max_num_queries):
    for _ in range(40):
        MLModelFactory(owner=user, experiment=ExperimentFactory(owner=user))

    # user (from the token), count, page of experiments, the ids of their models (one prefetch)
    with django_assert_max_num_queries(4):
        response = owner_api.get(f"{EXPERIMENTS}?page_size=100")

    assert len(response.json()["results"]) == 40


@pytest.mark.parametrize(
    ("query", "expected"),
    [("tag=fraud", ["sweep"]), ("tag=fra", []), ("tag=vision", ["vision-run"]), ("search=card", ["sweep"])],
)
def test_list_filters_on_tag_and_search(client_for, user, experiment, query, expected):
    ExperimentFactory(owner=user, name="vision-run", tags=["vision"], description="images")

    response = client_for(user).get(f"{EXPERIMENTS}?{query}")

    assert [row["name"] for row in response.json()["results"]] == expected


def test_owner_creates_an_experiment(client_for, user):
    response = client_for(user).post(EXPERIMENTS, {"name": "new", "parameters": {"lr": 0.1}, "tags": ["a"]})

    assert response.status_code == 201, response.json()
    assert response.json()["owner_id"] == user.pk
    assert response.json()["model_ids"] == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": "x", "parameters": [1]}, "parameters"),
        ({"name": "x", "tags": "fraud"}, "tags"),
        ({"name": "x", "tags": [{"a": 1}]}, "tags"),
        ({"name": "x", "owner_id": 3}, "owner_id"),
        ({"name": "sweep"}, "name"),
    ],
)
def test_create_refuses_invalid_input(client_for, user, experiment, payload, field):
    response = client_for(user).post(EXPERIMENTS, payload)

    assert response.status_code == 400
    assert field in response.json()
    assert Experiment.objects.count() == 1


def test_owner_and_superuser_update_others_cannot(client_for, user, other_user, superuser, experiment):
    url = f"{EXPERIMENTS}{experiment.pk}/"

    assert client_for(other_user).patch(url, {"description": "mine"}).status_code == 403
    assert client_for(user).patch(url, {"description": "owner"}).json()["description"] == "owner"
    assert client_for(superuser).put(url, {"name": "renamed"}).json()["name"] == "renamed"


def test_other_user_cannot_delete_owner_can_and_models_stay(client_for, user, other_user, experiment):
    model = MLModelFactory(owner=user, experiment=experiment)
    url = f"{EXPERIMENTS}{experiment.pk}/"

    assert client_for(other_user).delete(url).status_code == 403
    assert client_for(user).delete(url).status_code == 204

    assert not Experiment.objects.exists()
    assert MLModel.objects.get(pk=model.pk).experiment_id is None
