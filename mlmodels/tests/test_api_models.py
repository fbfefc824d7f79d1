"""/api/v1/models/ as the owner, another signed-in user, a superuser and an anonymous client."""

import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.roles import APPROVERS_GROUP
from accounts.tests.factories import UserFactory
from experiments.tests.factories import ExperimentFactory
from mlmodels import services
from mlmodels.models import LifecycleEvent, MLModel, ProtectedAlias, Stage
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"
CONTRACT_FIELDS = {
    "id",
    "name",
    "description",
    "framework",
    "task_type",
    "lifecycle",
    "accuracy",
    "precision",
    "recall",
    "f1_score",
    "hyperparameters",
    "tags",
    "aliases",
    "file_path",
    "file_size",
    "file_sha256",
    "owner_id",
    "experiment_id",
    "latest_version",
    "created_at",
    "updated_at",
}


def detail(model, suffix: str = "") -> str:
    return f"{MODELS}{model.pk}/{suffix}"


def attach(model, content: bytes = b"weights", name: str = "model.bin"):
    data = io.BytesIO(content)
    data.name = name
    return services.model_attach_file(model=model, actor=model.owner, file=data)


@pytest.fixture
def super_api(client_for, superuser):
    return client_for(superuser)


@pytest.fixture
def model(user):
    return MLModelFactory(owner=user, name="churn")


# --- list ---------------------------------------------------------------------------------------


def test_anonymous_client_cannot_list_models(api_client):
    response = api_client.get(MODELS)

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_every_signed_in_user_lists_every_model(other_api, model):
    response = other_api.get(MODELS)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 1
    assert set(body["results"][0]) == CONTRACT_FIELDS
    assert body["results"][0]["owner_id"] == model.owner_id


def test_list_query_count_does_not_grow_with_rows(owner_api, user, django_assert_max_num_queries):
    for _ in range(100):
        MLModelFactory(owner=user)

    # user (from the token), count, page of rows
    with django_assert_max_num_queries(3):
        response = owner_api.get(f"{MODELS}?page_size=100")

    assert len(response.json()["results"]) == 100


def test_list_pages_with_page_size(owner_api, user):
    for _ in range(5):
        MLModelFactory(owner=user)

    body = owner_api.get(f"{MODELS}?page_size=2&page=2").json()

    assert body["count"] == 5
    assert len(body["results"]) == 2
    assert "page=3" in body["next"] and "page_size=2" in body["next"]


@pytest.mark.parametrize("page_size", ["0", "-1", "101", "100000", "abc"])
def test_bad_page_sizes_are_refused(owner_api, page_size):
    response = owner_api.get(f"{MODELS}?page_size={page_size}")

    assert response.status_code == 400
    assert "from 1 to 100" in response.json()["page_size"][0]


def names(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row["name"] for row in response.json()["results"]]


@pytest.fixture
def catalogue(user, other_user):
    experiment = ExperimentFactory(owner=user)
    a = MLModelFactory(owner=user, name="alpha", framework="sklearn", task_type="classification", accuracy=0.5)
    b = MLModelFactory(
        owner=user, name="beta", framework="pytorch", task_type="regression", accuracy=0.9, experiment=experiment
    )
    c = MLModelFactory(
        owner=other_user,
        name="gamma",
        framework="xgboost",
        task_type="classification",
        accuracy=0.7,
        description="fraud detector",
    )
    services.lifecycle_move(model=b, actor=user, to_stage=Stage.STAGING)
    return {"a": a, "b": b, "c": c, "experiment": experiment}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("framework=sklearn", ["alpha"]),
        ("framework=sklearn,xgboost", ["alpha", "gamma"]),
        ("task_type=classification", ["alpha", "gamma"]),
        ("lifecycle=staging", ["beta"]),
        ("lifecycle=development,staging", ["alpha", "beta", "gamma"]),
        ("owner=someone-else", ["gamma"]),
        ("search=fraud", ["gamma"]),
        ("search=ALP", ["alpha"]),
        ("min_accuracy=0.7", ["beta", "gamma"]),
        ("max_accuracy=0.7", ["alpha", "gamma"]),
        ("min_accuracy=0.6&max_accuracy=0.8", ["gamma"]),
        ("ordering=-accuracy", ["beta", "gamma", "alpha"]),
        ("ordering=name", ["alpha", "beta", "gamma"]),
    ],
)
def test_list_filters_search_and_ordering(owner_api, catalogue, query, expected):
    result = names(owner_api.get(f"{MODELS}?{query}"))

    assert (result if "ordering" in query else sorted(result)) == expected


def test_list_filters_by_owner_id_and_experiment(owner_api, catalogue, other_user):
    assert names(owner_api.get(f"{MODELS}?owner={other_user.pk}")) == ["gamma"]
    assert names(owner_api.get(f"{MODELS}?experiment={catalogue['experiment'].pk}")) == ["beta"]


def test_list_filters_by_creation_time(owner_api, catalogue):
    MLModel.objects.filter(pk=catalogue["a"].pk).update(created_at=timezone.now() - timedelta(days=10))
    cutoff = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")

    assert sorted(names(owner_api.get(f"{MODELS}?created_after={cutoff}"))) == ["beta", "gamma"]
    assert names(owner_api.get(f"{MODELS}?created_before={cutoff}")) == ["alpha"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("framework=caffe", "framework"),
        ("lifecycle=staging,heaven", "lifecycle"),
        ("task_type=dreaming", "task_type"),
        ("ordering=password", "ordering"),
        ("min_accuracy=high", "min_accuracy"),
        ("created_after=yesterday", "created_after"),
    ],
)
def test_invalid_filter_values_are_refused_with_the_field_named(owner_api, query, field):
    response = owner_api.get(f"{MODELS}?{query}")

    assert response.status_code == 400
    assert field in response.json()


# --- create -------------------------------------------------------------------------------------


def test_create_makes_the_caller_the_owner_in_development_at_version_one(owner_api, user):
    response = owner_api.post(
        MODELS,
        {"name": "new", "framework": "onnx", "task_type": "regression", "accuracy": 0.8, "hyperparameters": {"a": 1}},
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == CONTRACT_FIELDS
    assert (body["owner_id"], body["lifecycle"], body["latest_version"]) == (user.pk, "development", 1)
    assert MLModel.objects.get(pk=body["id"]).versions.get().accuracy == 0.8


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "m", "accuracy": 1.5}, "accuracy"),
        ({"name": "m", "recall": -0.2}, "recall"),
        ({"name": "m", "accuracy": "high"}, "accuracy"),
        ({"name": "m", "framework": "caffe"}, "framework"),
        ({"name": "m", "task_type": 7}, "task_type"),
        ({"name": "m", "hyperparameters": [1, 2]}, "hyperparameters"),
        ({"name": "m", "hyperparameters": "depth=3"}, "hyperparameters"),
        ({"name": "m", "experiment_id": 999999}, "experiment_id"),
        ({"name": "m", "lifecycle": "production"}, "lifecycle"),
        ({"name": "m", "owner_id": 1}, "owner_id"),
        ({"name": "m", "colour": "blue"}, "colour"),
    ],
)
def test_create_refuses_invalid_input_naming_the_field(owner_api, payload, field):
    response = owner_api.post(MODELS, payload)

    assert response.status_code == 400
    assert field in response.json()
    assert not MLModel.objects.exists()


def test_create_refuses_a_name_taken_in_any_letter_case_naming_its_owner(owner_api, other_api, model):
    mine = owner_api.post(MODELS, {"name": "churn"})
    theirs = other_api.post(MODELS, {"name": "CHURN"})

    for response in (mine, theirs):
        assert response.status_code == 400
        assert response.json() == {
            "name": [
                f"The name “churn” is taken by owner's model (#{model.pk}); model names are unique across the registry."
            ]
        }


def test_a_rename_to_a_taken_name_is_refused_and_to_a_new_letter_case_of_its_own_is_not(owner_api, model, user):
    other = MLModelFactory(owner=user, name="fraud")

    taken = owner_api.patch(f"{MODELS}{other.pk}/", {"name": "Churn"})
    own = owner_api.patch(f"{MODELS}{model.pk}/", {"name": "Churn"})

    assert taken.status_code == 400 and "is taken by owner's model" in taken.json()["name"][0]
    assert own.status_code == 200 and own.json()["name"] == "Churn"


@pytest.mark.parametrize("asked", ["churn", "CHURN", "\uff43\uff48\uff55\uff52\uff4e"])
def test_a_model_is_found_by_its_name_in_any_letter_case_or_unicode_form(other_api, model, asked):
    response = other_api.get(f"{MODELS}by-name/{asked}/")

    assert response.status_code == 200
    assert response.json()["id"] == model.pk


def test_an_unknown_name_is_a_404_and_anonymous_callers_are_refused(other_api, api_client, model):
    assert other_api.get(f"{MODELS}by-name/nope/").status_code == 404
    assert api_client.get(f"{MODELS}by-name/churn/").status_code == 401


def test_create_refuses_malformed_json(owner_api):
    response = owner_api.generic("POST", MODELS, '{"name": ', content_type="application/json")

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_anonymous_client_cannot_create(api_client):
    assert api_client.post(MODELS, {"name": "x"}).status_code == 401
    assert not MLModel.objects.exists()


# --- retrieve, update, delete -------------------------------------------------------------------


def test_any_signed_in_user_reads_a_model(other_api, model):
    response = other_api.get(detail(model))

    assert response.status_code == 200
    assert response.json()["name"] == "churn"


def test_reading_a_missing_model_is_404_json(owner_api):
    response = owner_api.get(f"{MODELS}999999/")

    assert response.status_code == 404
    assert response.json() == {"detail": "No MLModel matches the given query."}


def test_owner_patches_metrics_and_a_version_is_recorded(owner_api, model):
    response = owner_api.patch(detail(model), {"accuracy": 0.99})

    assert response.status_code == 200, response.json()
    assert (response.json()["accuracy"], response.json()["latest_version"]) == (0.99, 2)


def test_owner_patches_the_description_without_a_new_version(owner_api, model):
    response = owner_api.patch(detail(model), {"description": "better words"})

    assert response.status_code == 200
    assert (response.json()["description"], response.json()["latest_version"]) == ("better words", 1)


def test_put_replaces_fields_and_requires_the_name(owner_api, model):
    assert owner_api.put(detail(model), {"description": "no name"}).status_code == 400

    response = owner_api.put(detail(model), {"name": "renamed", "framework": "keras"})

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["framework"]) == ("renamed", "keras")


@pytest.mark.parametrize("field", ["lifecycle", "owner_id", "latest_version", "file_path"])
def test_patch_refuses_read_only_fields(owner_api, model, field):
    response = owner_api.patch(detail(model), {field: "production"})

    assert response.status_code == 400
    assert field in response.json()
    assert MLModel.objects.get(pk=model.pk).lifecycle == Stage.DEVELOPMENT


def test_other_user_cannot_update_or_delete(other_api, model):
    assert other_api.patch(detail(model), {"accuracy": 0.1}).status_code == 403
    assert other_api.put(detail(model), {"name": "mine"}).status_code == 403
    assert other_api.delete(detail(model)).status_code == 403

    model.refresh_from_db()
    assert (model.name, model.accuracy, model.latest_version) == ("churn", 0.9, 1)


def test_superuser_updates_and_deletes_any_model(super_api, model):
    assert super_api.patch(detail(model), {"accuracy": 0.1}).status_code == 200
    assert super_api.delete(detail(model)).status_code == 204
    assert not MLModel.objects.exists()


def test_owner_deletes_a_model(owner_api, model):
    response = owner_api.delete(detail(model))

    assert response.status_code == 204
    assert not MLModel.objects.exists()


def test_anonymous_client_cannot_read_update_or_delete(api_client, model):
    for method in ("get", "put", "patch", "delete"):
        assert getattr(api_client, method)(detail(model)).status_code == 401
    assert MLModel.objects.filter(pk=model.pk).exists()


# --- lifecycle ----------------------------------------------------------------------------------


def test_owner_promotes_and_the_move_is_audited(owner_api, model, user):
    response = owner_api.patch(detail(model, "lifecycle/"), {"lifecycle": "staging", "comment": "offline eval ok"})

    assert response.status_code == 200
    assert response.json()["lifecycle"] == "staging"
    event = LifecycleEvent.objects.get(model=model)
    assert (event.from_stage, event.to_stage, event.actor, event.comment) == (
        "development",
        "staging",
        user,
        "offline eval ok",
    )


def test_an_illegal_move_is_400_naming_the_allowed_moves(owner_api, model):
    response = owner_api.patch(detail(model, "lifecycle/"), {"lifecycle": "production"})

    assert response.status_code == 400
    assert response.json() == {
        "lifecycle": ["Cannot move from development to production. Allowed moves from development: staging, archived."]
    }


def test_production_needs_an_artifact_file(owner_api, model):
    owner_api.patch(detail(model, "lifecycle/"), {"lifecycle": "staging"})

    refused = owner_api.patch(detail(model, "lifecycle/"), {"lifecycle": "production"})
    attach(model)
    accepted = owner_api.patch(detail(model, "lifecycle/"), {"lifecycle": "production"})

    assert refused.status_code == 400
    assert "without an artifact file" in refused.json()["lifecycle"][0]
    assert accepted.status_code == 200
    assert accepted.json()["lifecycle"] == "production"


@pytest.mark.parametrize("payload", [{}, {"lifecycle": "heaven"}, {"lifecycle": "staging", "extra": 1}])
def test_lifecycle_move_refuses_bad_input(owner_api, model, payload):
    response = owner_api.patch(detail(model, "lifecycle/"), payload)

    assert response.status_code == 400
    assert not LifecycleEvent.objects.exists()


def test_other_user_cannot_move_the_lifecycle(other_api, model):
    response = other_api.patch(detail(model, "lifecycle/"), {"lifecycle": "staging"})

    assert response.status_code == 403
    assert MLModel.objects.get(pk=model.pk).lifecycle == Stage.DEVELOPMENT


def test_superuser_moves_any_model(super_api, model):
    assert super_api.patch(detail(model, "lifecycle/"), {"lifecycle": "archived"}).status_code == 200


def test_history_lists_every_move_newest_first(other_api, model, user):
    for stage in ("staging", "development", "archived"):
        services.lifecycle_move(model=model, actor=user, to_stage=stage)

    response = other_api.get(detail(model, "history/"))

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(r["from_stage"], r["to_stage"]) for r in rows] == [
        ("development", "archived"),
        ("staging", "development"),
        ("development", "staging"),
    ]
    assert rows[0]["actor"] == "owner" and rows[0]["actor_id"] == user.pk


# --- versions -----------------------------------------------------------------------------------


def test_owner_records_a_version_with_metrics(owner_api, model, user):
    response = owner_api.post(detail(model, "versions/"), {"accuracy": 0.95, "note": "nightly"})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["version_number"], body["accuracy"], body["note"], body["created_by_id"]) == (
        2,
        0.95,
        "nightly",
        user.pk,
    )
    assert MLModel.objects.get(pk=model.pk).accuracy == 0.95


@pytest.mark.parametrize("payload", [{"accuracy": 2}, {"hyperparameters": [1]}, {"lifecycle": "staging"}])
def test_version_create_refuses_bad_input(owner_api, model, payload):
    assert owner_api.post(detail(model, "versions/"), payload).status_code == 400
    assert model.versions.count() == 1


def test_other_user_cannot_record_a_version(other_api, model):
    assert other_api.post(detail(model, "versions/"), {"accuracy": 0.1}).status_code == 403
    assert model.versions.count() == 1


def test_versions_list_newest_first_for_any_user(other_api, model, user):
    services.version_record(model=model, actor=user, data={"accuracy": 0.1})

    response = other_api.get(detail(model, "versions/"))

    assert response.status_code == 200
    assert [v["version_number"] for v in response.json()["results"]] == [2, 1]


def test_versions_list_query_count_does_not_grow_with_versions(owner_api, model, user, django_assert_max_num_queries):
    for _ in range(30):
        services.version_record(model=model, actor=user)

    # user (from the token), model, count, page of versions
    with django_assert_max_num_queries(4):
        response = owner_api.get(detail(model, "versions/?page_size=100"))

    assert len(response.json()["results"]) == 31


def test_get_one_version_by_number(other_api, model):
    assert other_api.get(detail(model, "versions/1/")).json()["version_number"] == 1
    assert other_api.get(detail(model, "versions/7/")).status_code == 404


def test_a_missing_version_and_a_missing_model_are_told_apart(other_api, model):
    missing_version = other_api.get(detail(model, "versions/7/"))
    assert missing_version.json() == {"detail": "This model has no version with that number."}
    missing_model = other_api.get(f"/api/v1/models/{model.pk + 1000}/versions/1/")
    assert (missing_model.status_code, missing_model.json()) == (404, {"detail": "No MLModel matches the given query."})
    assert other_api.get("/api/v1/models/abc/versions/1/").status_code == 404


def test_getting_a_version_is_one_query_after_the_user(other_api, model, django_assert_num_queries):
    # user (from the token), the version (among the models the user may read)
    with django_assert_num_queries(2):
        assert other_api.get(detail(model, "versions/1/")).status_code == 200


def test_anonymous_clients_cannot_read_a_version(api_client, model):
    assert api_client.get(detail(model, "versions/1/")).status_code == 401


def test_owner_rolls_back_to_an_earlier_version(owner_api, model):
    owner_api.patch(detail(model), {"accuracy": 0.2})

    response = owner_api.post(detail(model, "versions/1/rollback/"), {})

    assert response.status_code == 201
    assert (response.json()["version_number"], response.json()["accuracy"]) == (3, 0.9)
    assert MLModel.objects.get(pk=model.pk).accuracy == 0.9


def test_rollback_to_a_missing_version_is_404(owner_api, model):
    assert owner_api.post(detail(model, "versions/9/rollback/"), {}).status_code == 404


def test_other_user_cannot_roll_back(other_api, model):
    assert other_api.post(detail(model, "versions/1/rollback/"), {}).status_code == 403
    assert model.versions.count() == 1


# --- download -----------------------------------------------------------------------------------


def test_download_of_a_model_without_a_file_is_404_json(owner_api, model):
    response = owner_api.get(detail(model, "download/"))

    assert response.status_code == 404
    assert response.json() == {"detail": "This model has no artifact file."}


def test_any_signed_in_user_downloads_the_current_artifact(other_api, model, settings):
    attach(model, b"current weights", "final.bin")

    response = other_api.get(detail(model, "download/"))

    if settings.USE_S3:
        assert response.status_code == 302
        assert "X-Amz-Signature=" in response["Location"]
    else:
        assert response.status_code == 200
        assert response["Content-Disposition"] == 'attachment; filename="final.bin"'
        assert b"".join(response.streaming_content) == b"current weights"


def test_anonymous_client_cannot_download(api_client, model):
    attach(model)

    assert api_client.get(detail(model, "download/")).status_code == 401


# --- tags -----------------------------------------------------------------------------------------


def test_the_owner_sets_changes_and_removes_a_models_tags(owner_api, model, captured_events):
    with captured_events("tag.set", "tag.deleted") as events:
        first = owner_api.put(detail(model, "tags/team/"), {"value": "payments"})
        second = owner_api.put(detail(model, "tags/team/"), {"value": "risk"})
        shown = owner_api.get(detail(model)).json()["tags"]
        removed = owner_api.delete(detail(model, "tags/team/"))

    assert (first.status_code, first.json()) == (200, {"key": "team", "value": "payments"})
    assert second.json() == {"key": "team", "value": "risk"}
    assert shown == {"team": "risk"}
    assert removed.status_code == 204
    assert owner_api.get(detail(model)).json()["tags"] == {}
    assert [(e.type, e.data["key"], e.data.get("value"), e.data["previous"]) for e in events] == [
        ("tag.set", "team", "payments", None),
        ("tag.set", "team", "risk", "payments"),
        ("tag.deleted", "team", None, "risk"),
    ]


def test_a_versions_tags_are_its_own(owner_api, model):
    response = owner_api.put(detail(model, "versions/1/tags/dataset/"), {"value": "2026-11"})

    assert response.status_code == 200
    assert owner_api.get(detail(model, "versions/1/")).json()["tags"] == {"dataset": "2026-11"}
    assert owner_api.get(detail(model)).json()["tags"] == {}
    assert owner_api.put(detail(model, "versions/9/tags/dataset/"), {"value": "x"}).status_code == 404


def test_only_the_owner_or_a_superuser_changes_tags(other_api, client_for, superuser, api_client, model):
    assert other_api.put(detail(model, "tags/team/"), {"value": "x"}).status_code == 403
    assert api_client.put(detail(model, "tags/team/"), {"value": "x"}).status_code == 401
    assert client_for(superuser).put(detail(model, "tags/team/"), {"value": "x"}).status_code == 200
    assert other_api.delete(detail(model, "tags/team/")).status_code == 403
    assert MLModel.objects.get(pk=model.pk).tags == {"team": "x"}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("tags/team/", {"value": "x" * 5001}, "value"),
        ("tags/team/", {"value": ["a"]}, "value"),
        ("tags/team/", {}, "value"),
        ("tags/" + "k" * 251 + "/", {"value": "x"}, "key"),
        ("tags/te%07am/", {"value": "x"}, "key"),
    ],
)
def test_a_bad_tag_is_refused_with_the_reason_and_changes_nothing(owner_api, model, path, body, field):
    response = owner_api.put(detail(model, path), body)

    assert response.status_code == 400
    assert field in response.json()
    assert MLModel.objects.get(pk=model.pk).tags == {}


def test_removing_a_tag_the_model_lacks_is_a_404(owner_api, model):
    assert owner_api.delete(detail(model, "tags/nope/")).status_code == 404


def test_the_list_filters_by_tag_key_and_value_and_all_given_tags_must_match(owner_api, user):
    both = MLModelFactory(owner=user, tags={"team": "payments", "tier": "gold"})
    MLModelFactory(owner=user, tags={"team": "payments"})
    MLModelFactory(owner=user, tags={"team": "risk", "tier": "gold"})
    MLModelFactory(owner=user)

    def ids(query: str) -> list[int]:
        return sorted(row["id"] for row in owner_api.get(f"{MODELS}?{query}").json()["results"])

    assert len(ids("tag=team:payments")) == 2
    assert len(ids("tag=tier")) == 2
    assert ids("tag=team:payments&tag=tier:gold") == [both.pk]
    assert ids("tag=team:nobody") == []
    assert owner_api.get(f"{MODELS}?tag=:x").status_code == 400
    nul = owner_api.get(f"{MODELS}?tag=team%00:x")  # PostgreSQL refuses a NUL in a query: never a 500
    assert nul.status_code == 400 and "NUL" in str(nul.json())


def test_a_tag_filter_takes_any_key_literally_and_splits_at_the_first_colon(owner_api, user):
    odd = MLModelFactory(owner=user, tags={'data.set "v2"__x': "s3://bucket:path"})

    response = owner_api.get(MODELS, {"tag": 'data.set "v2"__x:s3://bucket:path'})

    assert [row["id"] for row in response.json()["results"]] == [odd.pk]


# --- aliases --------------------------------------------------------------------------------------


@pytest.fixture
def three_versions(model, user):
    for accuracy in (0.81, 0.82):
        services.version_record(model=model, actor=user, data={"accuracy": accuracy})
    return model


def test_the_owner_sets_moves_resolves_and_deletes_an_alias_all_audited(owner_api, three_versions, captured_events):
    model = three_versions
    with captured_events("alias.set", "alias.deleted") as events:
        assert owner_api.put(detail(model, "aliases/challenger/"), {"version": 2}).json() == {
            "alias": "challenger",
            "version": 2,
        }
        assert owner_api.put(detail(model, "aliases/challenger/"), {"version": 3}).status_code == 200
        resolved = owner_api.get(detail(model, "aliases/challenger/"))
        shown = owner_api.get(detail(model)).json()["aliases"]
        assert owner_api.delete(detail(model, "aliases/challenger/")).status_code == 204

    assert (resolved.status_code, resolved.json()["version_number"]) == (200, 3)
    assert shown == {"challenger": 3}
    assert owner_api.get(detail(model, "aliases/challenger/")).status_code == 404
    trail = [(e.alias, e.from_version, e.to_version) for e in model.alias_events.order_by("id")]
    assert trail == [("challenger", None, 2), ("challenger", 2, 3), ("challenger", 3, None)]
    assert [(e.type, e.data.get("version"), e.data["previous"]) for e in events] == [
        ("alias.set", 2, None),
        ("alias.set", 3, 2),
        ("alias.deleted", None, 3),
    ]


@pytest.mark.parametrize("alias", ["Champion", "latest", "v3", "9lives", "a" * 65, "has space"])
def test_a_malformed_or_reserved_alias_is_refused(owner_api, model, alias):
    response = owner_api.put(detail(model, f"aliases/{alias}/"), {"version": 1})

    assert response.status_code == 400
    assert "alias" in response.json()


def test_an_alias_to_a_missing_version_is_a_404_and_others_cannot_set_aliases(owner_api, other_api, model):
    assert owner_api.put(detail(model, "aliases/challenger/"), {"version": 7}).status_code == 404
    assert other_api.put(detail(model, "aliases/challenger/"), {"version": 1}).status_code == 403
    assert MLModel.objects.get(pk=model.pk).aliases == {}


def test_a_protected_alias_is_set_by_approvers_and_superusers_only_naming_who_can(
    owner_api, client_for, superuser, model
):
    ProtectedAlias.objects.create(name="champion")
    approver = UserFactory(username="reviewer")
    approver.groups.add(Group.objects.get(name=APPROVERS_GROUP))

    refused = owner_api.put(detail(model, "aliases/champion/"), {"version": 1})
    by_approver = client_for(approver).put(detail(model, "aliases/champion/"), {"version": 1})
    owner_delete = owner_api.delete(detail(model, "aliases/champion/"))
    by_superuser = client_for(superuser).delete(detail(model, "aliases/champion/"))

    assert refused.status_code == 403
    assert "only approvers and superusers" in refused.json()["detail"]
    assert by_approver.status_code == 200
    assert owner_delete.status_code == 403
    assert by_superuser.status_code == 204


def test_the_list_filters_models_by_alias(owner_api, user):
    champion = MLModelFactory(owner=user)
    services.alias_set(model=champion, actor=user, alias="champion", version_number=1)
    MLModelFactory(owner=user)

    rows = owner_api.get(f"{MODELS}?alias=champion").json()["results"]

    assert [(row["id"], row["aliases"]) for row in rows] == [(champion.pk, {"champion": 1})]


def test_version_answers_list_the_aliases_pointing_at_them(owner_api, three_versions, user):
    model = three_versions
    services.alias_set(model=model, actor=user, alias="champion", version_number=2)
    services.alias_set(model=model, actor=user, alias="canary", version_number=2)

    listed = {
        row["version_number"]: row["aliases"] for row in owner_api.get(detail(model, "versions/")).json()["results"]
    }

    assert listed == {3: [], 2: ["canary", "champion"], 1: []}
    assert owner_api.get(detail(model, "versions/2/")).json()["aliases"] == ["canary", "champion"]
    assert owner_api.get(detail(model, "aliases/champion/")).json()["aliases"] == ["canary", "champion"]
