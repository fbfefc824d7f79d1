"""MLflow's registry endpoints (mlflow_api/registry.py) through HTTP as its client calls them: the
JSON shapes, the search grammar and page tokens, MLflow's error codes, and our access rules."""

import pytest

from mlmodels import services
from mlmodels.models import MLModel
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db
API = "/api/2.0/mlflow"


def test_create_get_and_the_registered_model_shape(owner_api, user):
    made = owner_api.post(
        f"{API}/registered-models/create",
        {"name": "churn", "description": "predicts churn", "tags": [{"key": "team", "value": "growth"}]},
        format="json",
    )
    got = owner_api.get(f"{API}/registered-models/get", {"name": "churn"})

    assert made.status_code == 200, made.json()
    model = got.json()["registered_model"]
    assert model["name"] == "churn" and model["description"] == "predicts churn"
    assert model["tags"] == [{"key": "team", "value": "growth"}]
    assert model["user_id"] == user.username and model["creation_timestamp"] > 1_700_000_000_000
    # As in MLflow, a registered model has no versions until one is registered.
    assert "latest_versions" not in model
    assert MLModel.objects.get(name="churn").owner == user


def test_a_taken_name_is_resource_already_exists(owner_api, user):
    MLModelFactory(owner=user, name="churn")

    answer = owner_api.post(f"{API}/registered-models/create", {"name": "CHURN"}, format="json")

    assert answer.status_code == 400
    assert answer.json() == {
        "error_code": "RESOURCE_ALREADY_EXISTS",
        "message": "Registered Model (name=CHURN) already exists.",
    }


def test_a_missing_model_is_resource_does_not_exist(owner_api):
    answer = owner_api.get(f"{API}/registered-models/get", {"name": "nope"})

    assert answer.status_code == 404
    assert answer.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "Registered Model with name=nope not found",
    }


def test_search_filters_orders_and_pages(owner_api, user):
    for name in ("alpha-churn", "beta-churn", "gamma-fraud", "delta-churn"):
        model = MLModelFactory(owner=user, name=name)
        services.tag_set(model=model, actor=user, key="team", value="growth" if "churn" in name else "risk")

    first = owner_api.get(f"{API}/registered-models/search", {"filter": "name LIKE '%churn'", "max_results": 2})
    rest = owner_api.get(
        f"{API}/registered-models/search",
        {"filter": "name LIKE '%churn'", "max_results": 2, "page_token": first.json()["next_page_token"]},
    )
    by_tag = owner_api.get(f"{API}/registered-models/search", {"filter": "tags.team = 'risk'"})
    # What MLflow 3's client adds to every search: its prompts are registered models with this tag.
    not_prompts = owner_api.get(
        f"{API}/registered-models/search", {"filter": "name = 'beta-churn' AND tag.`mlflow.prompt.is_prompt` != 'true'"}
    )
    ordered = owner_api.get(f"{API}/registered-models/search", {"order_by": "name DESC", "filter": "name ILIKE 'A%'"})

    assert [m["name"] for m in first.json()["registered_models"]] == ["alpha-churn", "beta-churn"]
    assert [m["name"] for m in rest.json()["registered_models"]] == ["delta-churn"]
    assert "next_page_token" not in rest.json()
    assert [m["name"] for m in by_tag.json()["registered_models"]] == ["gamma-fraud"]
    assert [m["name"] for m in not_prompts.json()["registered_models"]] == ["beta-churn"]
    assert [m["name"] for m in ordered.json()["registered_models"]] == ["alpha-churn"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"filter": "owner = 'x'"}, "Invalid attribute key 'owner'"),
        ({"filter": "name = churn"}, "must be a quoted string"),
        ({"filter": "name = 'a' OR name = 'b'"}, "joined with AND only"),
        ({"filter": "name > 'a'"}, "Invalid comparator '>'"),
        ({"max_results": 5000}, "at most 1000"),
        ({"max_results": "many"}, "an integer is expected"),
        ({"page_token": "%%%"}, "Invalid page token"),
        ({"order_by": "owner ASC"}, "Invalid order_by clause 'owner ASC'"),
    ],
)
def test_bad_searches_are_invalid_parameter_value(owner_api, params, message):
    answer = owner_api.get(f"{API}/registered-models/search", params)

    assert answer.status_code == 400
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in answer.json()["message"]


def test_rename_update_tags_and_delete(owner_api, user):
    MLModelFactory(owner=user, name="old-name")

    renamed = owner_api.post(
        f"{API}/registered-models/rename", {"name": "old-name", "new_name": "new-name"}, format="json"
    )
    updated = owner_api.patch(
        f"{API}/registered-models/update", {"name": "new-name", "description": "d"}, format="json"
    )
    tagged = owner_api.post(
        f"{API}/registered-models/set-tag", {"name": "new-name", "key": "k", "value": "v"}, format="json"
    )
    untagged = owner_api.delete(f"{API}/registered-models/delete-tag", {"name": "new-name", "key": "k"}, format="json")
    missing_tag = owner_api.delete(
        f"{API}/registered-models/delete-tag", {"name": "new-name", "key": "k"}, format="json"
    )
    deleted = owner_api.delete(f"{API}/registered-models/delete", {"name": "new-name"}, format="json")

    assert renamed.json()["registered_model"]["name"] == "new-name"
    assert updated.json()["registered_model"]["description"] == "d"
    assert tagged.status_code == untagged.status_code == deleted.status_code == 200
    assert missing_tag.status_code == 404 and missing_tag.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert not MLModel.objects.filter(name="new-name").exists()


def test_another_user_s_model_is_readable_not_writable(other_api, user):
    MLModelFactory(owner=user, name="theirs")

    read = other_api.get(f"{API}/registered-models/get", {"name": "theirs"})
    write = other_api.post(
        f"{API}/registered-models/set-tag", {"name": "theirs", "key": "k", "value": "v"}, format="json"
    )
    delete = other_api.delete(f"{API}/registered-models/delete", {"name": "theirs"}, format="json")

    assert read.status_code == 200
    assert write.status_code == delete.status_code == 403
    assert write.json()["error_code"] == "PERMISSION_DENIED"
    assert MLModel.objects.filter(name="theirs").exists()


def test_versions_aliases_stages_and_version_tags(owner_api, user):
    model = MLModelFactory(owner=user, name="ranker")
    services.version_record(model=model, actor=user, data={"accuracy": 0.9})

    aliased = owner_api.post(
        f"{API}/registered-models/alias", {"name": "ranker", "alias": "champion", "version": "1"}, format="json"
    )
    by_alias = owner_api.get(f"{API}/registered-models/alias", {"name": "ranker", "alias": "champion"})
    staged = owner_api.post(
        f"{API}/model-versions/transition-stage", {"name": "ranker", "version": "2", "stage": "Staging"}, format="json"
    )
    old = owner_api.post(
        f"{API}/model-versions/transition-stage", {"name": "ranker", "version": "1", "stage": "Staging"}, format="json"
    )
    latest = owner_api.post(
        f"{API}/registered-models/get-latest-versions", {"name": "ranker", "stages": ["Staging"]}, format="json"
    )
    tagged = owner_api.post(
        f"{API}/model-versions/set-tag", {"name": "ranker", "version": "1", "key": "k", "value": "v"}, format="json"
    )
    one = owner_api.get(f"{API}/model-versions/get", {"name": "ranker", "version": "1"})
    searched = owner_api.get(f"{API}/model-versions/search", {"filter": "name = 'ranker'"})
    unaliased = owner_api.delete(
        f"{API}/registered-models/alias", {"name": "ranker", "alias": "champion"}, format="json"
    )
    gone = owner_api.get(f"{API}/registered-models/alias", {"name": "ranker", "alias": "champion"})

    assert aliased.status_code == 200
    assert by_alias.json()["model_version"]["version"] == "1"
    assert staged.json()["model_version"]["current_stage"] == "Staging"
    assert old.status_code == 400 and "Only the current version (version 2)" in old.json()["message"]
    assert [v["version"] for v in latest.json()["model_versions"]] == ["2"]
    assert tagged.status_code == 200
    assert one.json()["model_version"]["tags"] == [{"key": "k", "value": "v"}]
    assert one.json()["model_version"]["aliases"] == ["champion"]
    assert [v["version"] for v in searched.json()["model_versions"]] == ["2", "1"]
    assert unaliased.status_code == 200 and gone.status_code == 404


def test_an_unknown_endpoint_is_endpoint_not_found_and_a_wrong_method_too(owner_api):
    unknown = owner_api.get(f"{API}/registered-models/explode")
    wrong = owner_api.get(f"{API}/registered-models/create")

    assert unknown.status_code == wrong.status_code == 404
    assert unknown.json()["error_code"] == wrong.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_anonymous_calls_are_unauthenticated(api_client):
    answer = api_client.get(f"{API}/registered-models/search")

    assert answer.status_code == 401
    assert answer.json()["error_code"] == "UNAUTHENTICATED"


def test_a_basic_user_name_and_password_sign_in(api_client, user):
    import base64

    from accounts.tests.factories import TEST_PASSWORD

    credentials = base64.b64encode(f"{user.username}:{TEST_PASSWORD}".encode()).decode()
    answer = api_client.get(f"{API}/registered-models/search", HTTP_AUTHORIZATION=f"Basic {credentials}")
    wrong = api_client.get(
        f"{API}/registered-models/search",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{user.username}:wrong".encode()).decode(),
    )

    assert answer.status_code == 200
    assert wrong.status_code == 401 and wrong.json()["error_code"] == "UNAUTHENTICATED"
