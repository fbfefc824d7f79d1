"""Hostile and malformed input: refused with a clear 400, shown escaped, never a way around the rules."""

import io
import posixpath

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.tests.factories import ExperimentFactory
from mlmodels import services
from mlmodels.models import MLModel
from mlmodels.paths import parse_artifact_path
from mlmodels.tests.factories import MLModelFactory

MODELS = "/api/v1/models/"


# --- the artifact path validator, for any input ----------------------------------------------------

PATH_PIECES = st.sampled_from(
    ["users", "models", "v1", "1", "42", "..", ".", "", "/", "\\", "%2e", "%00", "\x00", "a.bin", "~", "//", "v0"]
)


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(PATH_PIECES, max_size=12).map("/".join)))
def test_no_path_the_validator_accepts_escapes_the_users_namespace(raw):
    try:
        parsed = parse_artifact_path(raw)
    except ValidationError:
        return
    assert parsed.key == raw
    assert raw.startswith("users/")
    assert posixpath.normpath(raw) == raw  # nothing to collapse: no '..', '.', '//' or trailing '/'
    assert posixpath.normpath(posixpath.join("/srv/media", raw)).startswith("/srv/media/users/")
    assert "\\" not in raw and "\x00" not in raw and "%" not in raw


# --- names -----------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    ["x" * 5000, "bell\x07model", "zero\u200bwidth", "rtl\u202emodel", "nul\x00model", "tab\tmodel"],
)
def test_unprintable_or_huge_names_are_refused_with_a_400(client_for, user, name):
    response = client_for(user).post(MODELS, {"name": name})

    assert response.status_code == 400
    assert "name" in response.json()
    assert not MLModel.objects.exists()


@pytest.mark.django_db
def test_names_that_differ_only_by_unicode_normalization_are_one_name(client_for, user):
    api = client_for(user)
    first = api.post(MODELS, {"name": "\ufb01t-model"})  # the "fi" ligature
    second = api.post(MODELS, {"name": "fit-model"})
    third = api.post(MODELS, {"name": "\uff46\uff49\uff54-model"})  # full-width letters

    assert first.status_code == 201
    assert first.json()["name"] == "fit-model"
    assert second.status_code == third.status_code == 400
    assert "model names are unique across the registry" in second.json()["name"][0]


@pytest.mark.django_db
def test_experiment_names_are_normalized_too(client_for, user):
    api = client_for(user)

    assert api.post("/api/v1/experiments/", {"name": "\ufb01t-sweep"}).status_code == 201
    assert api.post("/api/v1/experiments/", {"name": "fit-sweep"}).status_code == 400


# --- JSON documents --------------------------------------------------------------------------------


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("hyperparameters", "message"),
    [(nested(50), "Nested more than 20 levels"), ({"k": "x" * 100_000}, "Larger than 64 KB")],
)
def test_huge_or_deeply_nested_json_is_refused(client_for, user, hyperparameters, message):
    response = client_for(user).post(MODELS, {"name": "m", "hyperparameters": hyperparameters})

    assert response.status_code == 400
    assert message in response.json()["hyperparameters"][0]
    assert not MLModel.objects.exists()


# --- stored XSS ------------------------------------------------------------------------------------

PAYLOAD = '<script>alert("xss")</script><img src=x onerror=alert(1)>'


@pytest.mark.django_db
def test_payloads_in_every_text_field_are_shown_escaped_on_every_page(owner_client, user, superuser, client):
    experiment = ExperimentFactory(owner=user, name="exp" + PAYLOAD[:60], description=PAYLOAD, tags=[PAYLOAD])
    model = MLModelFactory(
        owner=user,
        name="m" + PAYLOAD[:60],
        description=PAYLOAD,
        experiment=experiment,
        hyperparameters={PAYLOAD: PAYLOAD},
    )
    data = io.BytesIO(b"x")
    data.name = "<svg onload=alert(1)>.bin"
    services.model_attach_file(model=model, actor=user, file=data, note=PAYLOAD)
    services.lifecycle_move(model=model, actor=user, to_stage="staging", comment=PAYLOAD)

    client.force_login(superuser)
    pages = [
        (owner_client, "/"),
        (owner_client, "/models/"),
        (owner_client, f"/models/{model.pk}/"),
        (owner_client, f"/models/{model.pk}/compare/?a=1&b=2"),
        (owner_client, "/experiments/"),
        (owner_client, f"/experiments/{experiment.pk}/"),
        (client, f"/admin/mlmodels/mlmodel/{model.pk}/change/"),
        (client, "/admin/mlmodels/lifecycleevent/"),
        (client, f"/admin/experiments/experiment/{experiment.pk}/change/"),
    ]
    for page_client, url in pages:
        content = page_client.get(url).content.decode()
        assert "<script>alert" not in content, url
        assert "<img src=x onerror" not in content, url
        assert "<svg onload" not in content, url


# --- methods ---------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["HTTP_X_HTTP_METHOD_OVERRIDE", "HTTP_X_METHOD_OVERRIDE", "HTTP_X_HTTP_METHOD"])
def test_method_override_headers_cannot_turn_a_read_into_a_delete(client_for, other_user, user, header):
    model = MLModelFactory(owner=user)
    api = client_for(other_user)

    api.get(f"{MODELS}{model.pk}/", **{header: "DELETE"})
    api.post(f"{MODELS}{model.pk}/", {}, **{header: "DELETE"})
    api.post(f"{MODELS}{model.pk}/lifecycle/", {"lifecycle": "archived"}, **{header: "PATCH"})

    model.refresh_from_db()
    assert model.lifecycle == "development"


@pytest.mark.django_db
def test_a_model_cannot_be_linked_to_a_missing_experiment(client_for, user):
    response = client_for(user).post(MODELS, {"name": "m", "experiment_id": 10**12})

    assert response.status_code == 400
    assert "experiment_id" in response.json()


@pytest.mark.django_db
def test_services_refuse_names_with_control_characters_for_every_caller(user):
    with pytest.raises(ValidationError) as error:
        services.model_create(owner=user, name="bad\x1bname")

    assert "name" in error.value.message_dict


# --- stored locations: only the keys the registry writes -------------------------------------------

FOREIGN_LOCATIONS = [
    "file:///etc/passwd",
    "//evil.example/model.bin",
    "s3://someone-elses-bucket/model.bin",
    "https://evil.example/model.bin",
    "/users/1/models/1/v1/model.bin",
    "users/1/models/1/v1/../../../../etc/passwd",
    "users/1/models/1/v1/model.bin?versionId=1",
    "users/1/models/1/v1/model.bin#fragment",
    "users/1/models/1/v1/%2e%2e/model.bin",
    "users\\1\\models\\1\\v1\\model.bin",
    "users//1/models/1/v1/model.bin",
]


@pytest.mark.django_db
@pytest.mark.parametrize("location", FOREIGN_LOCATIONS)
def test_the_database_refuses_a_file_key_the_registry_would_not_write(user, location):
    model = MLModelFactory(owner=user)
    services.version_record(model=model, actor=user, data={"accuracy": 0.5})
    for queryset in (MLModel.objects.filter(pk=model.pk), model.versions.all()):
        with pytest.raises(IntegrityError), transaction.atomic():
            queryset.update(file=location)
    model.refresh_from_db()
    assert model.file is None
    assert not model.versions.exclude(file=None).exists()


@pytest.mark.django_db
def test_the_database_accepts_the_keys_the_storage_service_writes(user):
    model = MLModelFactory(owner=user)
    version = services.model_attach_file(model=model, actor=user, file=_named_file(b"weights", "model.bin"))
    assert version.file == f"users/{user.pk}/models/{model.pk}/v{version.version_number}/model.bin"
    MLModel.objects.filter(pk=model.pk).update(file=version.file)  # the same key written again: allowed


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["file", "file_path"])
def test_no_api_write_sets_a_stored_location(client_for, user, field):
    model = MLModelFactory(owner=user)
    client = client_for(user)
    for method in (client.patch, client.put):
        response = method(f"{MODELS}{model.pk}/", {"name": "renamed", field: "file:///etc/passwd"}, format="json")
        assert response.status_code == 400, response.content
        assert field in str(response.json())
    created = client.post(MODELS, {"name": "new-one", field: "//evil.example/x"}, format="json")
    assert created.status_code == 400
    version = client.post(f"{MODELS}{model.pk}/versions/", {field: "s3://elsewhere/x"}, format="json")
    assert version.status_code == 400
    model.refresh_from_db()
    assert model.file is None and model.name != "renamed"
    assert not MLModel.objects.filter(file__isnull=False).exists()


def _named_file(content: bytes, name: str):
    file = io.BytesIO(content)
    file.name = name
    return file
