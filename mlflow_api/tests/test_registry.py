"""MLflow's registry endpoints (mlflow_api/registry.py) through HTTP as its client calls them: the
JSON shapes, the search grammar and page tokens, MLflow's error codes, and our access rules."""

import pytest

from mlmodels import services
from mlmodels.models import MLModel, ModelVersion
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


def test_search_shows_each_models_current_version_in_the_pages_one_query(
    owner_api, user, django_assert_max_num_queries
):
    churn = MLModelFactory(owner=user, name="churn")
    services.version_record(model=churn, actor=user, data={"accuracy": 0.9}, note="retrained")
    services.alias_set(model=churn, actor=user, alias="champion", version_number=2)
    services.model_create(owner=user, name="empty", initial_version=False)

    def search(max_results: int) -> list[dict]:
        answer = owner_api.get(f"{API}/registered-models/search", {"max_results": max_results})
        assert answer.status_code == 200
        return answer.json()["registered_models"]

    found = {model["name"]: model for model in search(10)}
    for n in range(8):
        MLModelFactory(owner=user, name=f"more-{n}")
    # The user, then the page of models with their current versions, however many the page holds.
    with django_assert_max_num_queries(2):
        assert len(search(10)) == 10

    [latest] = found["churn"]["latest_versions"]
    assert latest["name"] == "churn" and latest["version"] == "2" and latest["description"] == "retrained"
    assert latest["current_stage"] == "None" and latest["aliases"] == ["champion"]
    assert latest["source"] == f"mlflow-artifacts:/registry/models/{churn.pk}/versions/2"
    # As in MLflow, and as registered-models/get answers: no versions, no latest_versions.
    assert "latest_versions" not in found["empty"]
    got = owner_api.get(f"{API}/registered-models/get", {"name": "churn"}).json()["registered_model"]
    assert got["latest_versions"] == found["churn"]["latest_versions"]


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


# --- the rest of MLflow's registry search grammar ------------------------------------------------------


def names_of(answer, key="registered_models") -> list[str]:
    assert answer.status_code == 200, answer.json()
    return [item["name"] for item in answer.json()[key]]


def versions_of(answer) -> list[tuple[str, str]]:
    assert answer.status_code == 200, answer.json()
    return [(item["name"], item["version"]) for item in answer.json()["model_versions"]]


@pytest.fixture
def teams(user):
    """Four models tagged team (and `my key`), the last two with a second version (v2 tagged too)."""
    for name, team in (("churn", "growth"), ("fraud", "Growth-EU"), ("ranker", "search"), ("spam", "grit")):
        model = MLModelFactory(owner=user, name=name, tags={"team": team, "my key": team.upper()})
        if name in ("ranker", "spam"):
            services.version_record(model=model, actor=user, data={"accuracy": 0.5})
            services.tag_set(model=model, actor=user, key="team", value=f"{team}-v2", version_number=2)


@pytest.mark.parametrize(
    ("filter", "names"),
    [
        ("tags.team LIKE 'gr%'", ["churn", "spam"]),
        ("tags.team ILIKE 'gr%'", ["churn", "fraud", "spam"]),
        ("tags.team LIKE 'gr_wth'", ["churn"]),
        ("tags.team LIKE '%EU'", ["fraud"]),
        ("tags.team != 'growth'", ["fraud", "ranker", "spam"]),
        ("tags.`my key` LIKE 'GR%' AND tags.team ILIKE '%T%'", ["churn", "fraud", "spam"]),
        ("tags.`my key` = 'SEARCH'", ["ranker"]),
        ("name IN ('churn', 'spam', 'nope')", ["churn", "spam"]),
        ("name NOT IN ('churn', 'spam')", ["fraud", "ranker"]),
        ("name != 'churn' AND name LIKE '%r%'", ["fraud", "ranker"]),
    ],
)
def test_registered_models_search_takes_tag_like_and_name_lists(owner_api, teams, filter, names):
    assert names_of(owner_api.get(f"{API}/registered-models/search", {"filter": filter})) == names


@pytest.mark.parametrize(
    ("filter", "versions"),
    [
        ("tags.team LIKE '%-v2'", [("ranker", "2"), ("spam", "2")]),
        ("tags.team ILIKE 'GRIT%'", [("spam", "2")]),
        ("version_number > 1", [("ranker", "2"), ("spam", "2")]),
        ("version_number <= 1 AND name IN ('ranker', 'spam')", [("ranker", "1"), ("spam", "1")]),
        ("version_number = '2' AND name = 'spam'", [("spam", "2")]),
        ("name NOT IN ('churn', 'fraud', 'spam')", [("ranker", "2"), ("ranker", "1")]),
        ("source_path LIKE 'mlflow-artifacts:/registry/models/%/versions/2'", [("ranker", "2"), ("spam", "2")]),
        ("run_id = 'abc'", []),
    ],
)
def test_model_versions_search_takes_tags_numbers_sources_and_lists(owner_api, teams, filter, versions):
    answer = owner_api.get(
        f"{API}/model-versions/search", {"filter": filter, "order_by": ["name", "version_number DESC"]}
    )

    assert versions_of(answer) == versions


def test_model_versions_search_finds_a_version_by_its_run(owner_api, user):
    from experiments.tests.factories import ExperimentFactory, RunFactory

    run = RunFactory(experiment=ExperimentFactory(owner=user))
    model = MLModelFactory(owner=user, name="from-a-run")
    services.version_record(model=model, actor=user, data={"accuracy": 0.5})
    model.versions.filter(version_number=2).update(run=run)

    found = owner_api.get(f"{API}/model-versions/search", {"filter": f"run_id = '{run.run_id}'"})
    listed = owner_api.get(f"{API}/model-versions/search", {"filter": f"run_id IN ('{run.run_id}', 'other')"})
    others = owner_api.get(f"{API}/model-versions/search", {"filter": f"run_id != '{run.run_id}'"})

    assert versions_of(found) == versions_of(listed) == [("from-a-run", "2")]
    assert found.json()["model_versions"][0]["run_id"] == run.run_id
    # Version 1 has no run: it meets no run_id comparison, != included, as in MLflow's SQL store.
    assert versions_of(others) == []


def test_model_versions_search_orders_newest_first_by_default_ties_by_name_and_number(owner_api, teams):
    newest_first = versions_of(owner_api.get(f"{API}/model-versions/search"))
    ModelVersion.objects.update(created_at=ModelVersion.objects.first().created_at)
    tied = versions_of(owner_api.get(f"{API}/model-versions/search"))
    by_number = versions_of(owner_api.get(f"{API}/model-versions/search", {"order_by": ["version_number"]}))

    assert newest_first == [
        ("spam", "2"),
        ("spam", "1"),
        ("ranker", "2"),
        ("ranker", "1"),
        ("fraud", "1"),
        ("churn", "1"),
    ]
    assert tied == [("churn", "1"), ("fraud", "1"), ("ranker", "2"), ("ranker", "1"), ("spam", "2"), ("spam", "1")]
    assert by_number == [("churn", "1"), ("fraud", "1"), ("ranker", "1"), ("spam", "1"), ("ranker", "2"), ("spam", "2")]


def test_registered_models_ordered_by_time_break_ties_by_name(owner_api, teams):
    MLModel.objects.update(updated_at=MLModel.objects.get(name="churn").updated_at)

    answer = owner_api.get(f"{API}/registered-models/search", {"order_by": ["last_updated_timestamp DESC"]})

    assert names_of(answer) == ["churn", "fraud", "ranker", "spam"]


def test_prompts_are_left_out_unless_the_filter_asks_for_them(owner_api, user):
    MLModelFactory(owner=user, name="model")
    MLModelFactory(owner=user, name="prompt", tags={"mlflow.prompt.is_prompt": "true"})

    default = owner_api.get(f"{API}/registered-models/search")
    not_prompts = owner_api.get(
        f"{API}/registered-models/search", {"filter": "tags.`mlflow.prompt.is_prompt` = 'false'"}
    )
    prompts = owner_api.get(f"{API}/registered-models/search", {"filter": "tags.`mlflow.prompt.is_prompt` = 'true'"})

    assert names_of(default) == names_of(not_prompts) == ["model"]
    assert names_of(prompts) == ["prompt"]


def test_search_page_tokens_are_mlflow_s(owner_api, teams):
    import base64
    import json

    answer = owner_api.get(f"{API}/registered-models/search", {"max_results": 3})

    assert json.loads(base64.b64decode(answer.json()["next_page_token"])) == {"offset": 3}


@pytest.mark.parametrize(
    ("endpoint", "params", "message"),
    [
        ("registered-models/search", {"filter": "tags.team > 'a'"}, "Invalid comparator '>' for 'tags.team'"),
        ("registered-models/search", {"filter": "metrics.acc = '1'"}, "Invalid entity type 'metrics'"),
        ("registered-models/search", {"filter": "tags.team IN ('a')"}, "Invalid comparator 'IN'"),
        ("registered-models/search", {"order_by": ["name", "name DESC"]}, "duplicate fields"),
        ("model-versions/search", {"filter": "version_number > 1.5"}, "An integer is expected"),
        ("model-versions/search", {"filter": "version_number LIKE '1%'"}, "Invalid comparator 'LIKE'"),
        ("model-versions/search", {"filter": "source_path IN ('a')"}, "Invalid comparator 'IN'"),
        ("model-versions/search", {"filter": "name = 'a' AND"}, "ends with AND"),
    ],
)
def test_bad_registry_filters_are_invalid_parameter_value(owner_api, endpoint, params, message):
    answer = owner_api.get(f"{API}/{endpoint}", params)

    assert answer.status_code == 400
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in answer.json()["message"]


# --- model-versions/update ----------------------------------------------------------------------------


def test_update_model_version_sets_its_description_and_publishes_the_change(owner_api, user, captured_events):
    model = MLModelFactory(owner=user, name="noted")
    services.version_record(model=model, actor=user, data={"accuracy": 0.5}, note="first note")

    with captured_events("version.updated", "version.created") as events:
        updated = owner_api.patch(
            f"{API}/model-versions/update", {"name": "noted", "version": "2", "description": "better"}, format="json"
        )
    untouched = owner_api.patch(f"{API}/model-versions/update", {"name": "noted", "version": "2"}, format="json")

    assert updated.status_code == 200, updated.json()
    shown = updated.json()["model_version"]
    assert (shown["name"], shown["version"], shown["description"]) == ("noted", "2", "better")
    assert untouched.json()["model_version"]["description"] == "better"
    assert model.versions.get(version_number=2).note == "better"
    assert model.versions.count() == 2  # a description is no new version
    assert [(event.type, event.data["version"], event.data["note"]) for event in events] == [
        ("version.updated", 2, "better")
    ]


def test_update_model_version_is_the_owner_s_and_names_a_version_that_exists(owner_api, other_api, user):
    MLModelFactory(owner=user, name="noted")

    not_theirs = other_api.patch(
        f"{API}/model-versions/update", {"name": "noted", "version": "1", "description": "x"}, format="json"
    )
    missing = owner_api.patch(
        f"{API}/model-versions/update", {"name": "noted", "version": "7", "description": "x"}, format="json"
    )
    not_text = owner_api.patch(
        f"{API}/model-versions/update", {"name": "noted", "version": "1", "description": 5}, format="json"
    )

    assert not_theirs.status_code == 403 and not_theirs.json()["error_code"] == "PERMISSION_DENIED"
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert not_text.status_code == 400 and not_text.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert MLModel.objects.get(name="noted").versions.get().note != "x"


# --- query budget: a page costs the same number of queries whatever its size --------------------------


@pytest.mark.parametrize("endpoint", ["registered-models/search", "model-versions/search"])
def test_a_search_page_costs_a_fixed_number_of_queries(owner_api, user, endpoint):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(count: int) -> int:
        for n in range(MLModel.objects.count(), count):
            model = MLModelFactory(owner=user, name=f"budget-{n}", tags={"team": "t"})
            services.alias_set(model=model, actor=user, alias="champion", version_number=1)
            services.tag_set(model=model, actor=user, key="k", value="v", version_number=1)
        with CaptureQueriesContext(connection) as captured:
            answer = owner_api.get(f"{API}/{endpoint}", {"max_results": 100})
        assert answer.status_code == 200
        assert len(next(iter(answer.json().values()))) == count
        return len(captured)

    small, large = queries(2), queries(30)

    # The caller (its token's user), then the page itself (models with their current versions).
    assert small == large <= 2


@pytest.mark.parametrize(
    ("endpoint", "budget"),
    [
        # The caller (its token's user), then the version with its model, author and run.
        ("model-versions/get?name=budget&version=2", 2),
        # The caller, then the model with its current version.
        ("registered-models/get?name=budget", 2),
    ],
)
def test_reading_a_model_or_a_version_costs_a_fixed_number_of_queries(owner_api, user, endpoint, budget):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    model = MLModelFactory(owner=user, name="budget", tags={"team": "t"})
    services.version_record(model=model, actor=user, data={"accuracy": 0.5})
    services.alias_set(model=model, actor=user, alias="champion", version_number=2)

    with CaptureQueriesContext(connection) as captured:
        answer = owner_api.get(f"{API}/{endpoint}")

    assert answer.status_code == 200, answer.json()
    shown = answer.json().get("model_version") or answer.json()["registered_model"]["latest_versions"][0]
    assert (shown["version"], shown["aliases"], shown["user_id"]) == ("2", ["champion"], user.username)
    assert len(captured) <= budget
