import hashlib
import io
import itertools

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from experiments.tests.factories import ExperimentFactory
from mlmodels import services, uploads
from mlmodels.models import ALLOWED_MOVES, LifecycleEvent, MLModel, ModelVersion, Stage
from mlmodels.storage import artifact_keys, artifact_storage
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db


def upload(content: bytes = b"weights", name: str = "model.pkl") -> io.BytesIO:
    data = io.BytesIO(content)
    data.name = name
    return data


def stored_bytes(key: str) -> bytes:
    with artifact_storage().open(key, "rb") as stored:
        return stored.read()


def model_in_stage(owner, stage: str, *, with_file: bool = True) -> MLModel:
    model = MLModelFactory(owner=owner)
    if with_file:
        services.model_attach_file(model=model, actor=owner, file=upload())
    # Test set-up only: put the model straight into the stage under test.
    MLModel.objects.filter(pk=model.pk).update(lifecycle=stage)
    model.refresh_from_db()
    return model


# --- create -------------------------------------------------------------------------------------


def test_create_records_version_one_with_the_snapshot(user):
    experiment = ExperimentFactory(owner=user)
    model = services.model_create(
        owner=user, name="churn", accuracy=0.91, hyperparameters={"depth": 3}, experiment=experiment
    )

    assert model.lifecycle == Stage.DEVELOPMENT
    assert model.latest_version == 1
    version = model.versions.get()
    assert version.version_number == 1
    assert version.accuracy == 0.91
    assert version.hyperparameters == {"depth": 3}
    assert version.experiment == experiment
    assert version.created_by == user
    assert version.file is None


def test_create_with_a_file_stores_it_under_version_one(user):
    model = services.model_create(owner=user, name="churn", file=upload(b"abc", "weights.pt"))

    assert model.file == f"users/{user.pk}/models/{model.pk}/v1/weights.pt"
    assert stored_bytes(model.file) == b"abc"
    assert model.versions.get().file == model.file


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"accuracy": 1.2}, "accuracy"),
        ({"recall": -0.1}, "recall"),
        ({"framework": "caffe"}, "framework"),
        ({"task_type": "dreaming"}, "task_type"),
        ({"hyperparameters": ["not", "an", "object"]}, "hyperparameters"),
        ({"name": "   "}, "name"),
    ],
)
def test_create_refuses_invalid_fields_and_writes_nothing(user, fields, error_field):
    with pytest.raises(ValidationError) as error:
        services.model_create(owner=user, **{"name": "m", **fields})

    assert error_field in error.value.message_dict
    assert not MLModel.objects.exists()
    assert not ModelVersion.objects.exists()


def test_names_are_unique_across_the_registry_whoever_owns_them(user, other_user):
    services.model_create(owner=user, name="churn")

    for owner, name in ((user, "churn"), (other_user, "Churn"), (other_user, " CHURN ")):
        with pytest.raises(ValidationError, match=f"taken by {user.username}'s model"):
            services.model_create(owner=owner, name=name)
    assert MLModel.objects.count() == 1


def test_create_for_another_user_needs_a_superuser(user, other_user, superuser):
    with pytest.raises(PermissionDenied):
        services.model_create(owner=other_user, actor=user, name="theirs")

    model = services.model_create(owner=other_user, actor=superuser, name="theirs")
    assert model.owner == other_user
    assert model.versions.get().created_by == superuser


# --- update and versions ------------------------------------------------------------------------


def test_changing_metrics_records_a_new_version(user):
    model = MLModelFactory(owner=user, accuracy=0.8)

    services.model_update(model=model, actor=user, data={"accuracy": 0.85}, note="retrained")

    assert model.latest_version == 2
    assert model.accuracy == 0.85
    newest = model.versions.get(version_number=2)
    assert (newest.accuracy, newest.note, newest.created_by) == (0.85, "retrained", user)
    assert model.versions.get(version_number=1).accuracy == 0.8


def test_changing_hyperparameters_records_a_new_version(user):
    model = MLModelFactory(owner=user, hyperparameters={"depth": 3})

    services.model_update(model=model, actor=user, data={"hyperparameters": {"depth": 4}})

    assert model.versions.count() == 2
    assert model.versions.get(version_number=2).hyperparameters == {"depth": 4}


def test_changing_only_descriptive_fields_records_no_version(user):
    model = MLModelFactory(owner=user)

    services.model_update(model=model, actor=user, data={"description": "better words", "name": "renamed"})

    model.refresh_from_db()
    assert (model.name, model.description) == ("renamed", "better words")
    assert model.versions.count() == 1


def test_setting_a_metric_to_its_current_value_records_no_version(user):
    model = MLModelFactory(owner=user, accuracy=0.8)

    services.model_update(model=model, actor=user, data={"accuracy": 0.8})

    assert model.versions.count() == 1


@pytest.mark.parametrize("field", ["lifecycle", "owner", "latest_version", "file", "created_at"])
def test_update_refuses_read_only_fields(user, field):
    model = MLModelFactory(owner=user)

    with pytest.raises(ValidationError) as error:
        services.model_update(model=model, actor=user, data={field: "x"})

    assert field in error.value.message_dict


def test_update_refuses_a_metric_outside_zero_to_one_and_keeps_the_model(user):
    model = MLModelFactory(owner=user, accuracy=0.8)

    with pytest.raises(ValidationError) as error:
        services.model_update(model=model, actor=user, data={"accuracy": 7})

    assert "accuracy" in error.value.message_dict
    assert MLModel.objects.get(pk=model.pk).accuracy == 0.8
    assert model.versions.count() == 1


def test_other_user_cannot_update_a_model(user, other_user):
    model = MLModelFactory(owner=user)

    with pytest.raises(PermissionDenied):
        services.model_update(model=model, actor=other_user, data={"accuracy": 0.1})

    assert model.versions.count() == 1


def test_superuser_can_update_any_model(user, superuser):
    model = MLModelFactory(owner=user)

    services.model_update(model=model, actor=superuser, data={"accuracy": 0.5})

    assert model.versions.get(version_number=2).created_by == superuser


def test_version_record_applies_the_given_metrics_and_the_model_follows(user):
    model = MLModelFactory(owner=user, accuracy=0.8, recall=0.6)

    version = services.version_record(model=model, actor=user, data={"accuracy": 0.9}, note="nightly")

    assert version.version_number == 2
    assert (version.accuracy, version.recall) == (0.9, 0.6)
    model.refresh_from_db()
    assert (model.accuracy, model.latest_version) == (0.9, 2)


def test_version_record_records_a_version_even_without_changes(user):
    model = MLModelFactory(owner=user)

    services.version_record(model=model, actor=user)
    services.version_record(model=model, actor=user)

    assert list(model.versions.values_list("version_number", flat=True)) == [3, 2, 1]


def test_other_user_cannot_record_a_version(user, other_user):
    model = MLModelFactory(owner=user)

    with pytest.raises(PermissionDenied):
        services.version_record(model=model, actor=other_user, data={"accuracy": 0.1})


# --- files --------------------------------------------------------------------------------------


def test_attaching_a_file_streams_it_under_the_version_key_with_size_and_sha256(user):
    model = MLModelFactory(owner=user)
    content = b"x" * 300_000 + b"end"

    version = services.model_attach_file(model=model, actor=user, file=upload(content, "model.onnx"))

    expected_key = f"users/{user.pk}/models/{model.pk}/v2/model.onnx"
    assert version.version_number == 2
    assert (version.file, version.file_size, version.file_sha256) == (
        expected_key,
        len(content),
        hashlib.sha256(content).hexdigest(),
    )
    assert stored_bytes(expected_key) == content
    model.refresh_from_db()
    assert (model.file, model.file_size, model.file_sha256) == (version.file, version.file_size, version.file_sha256)


@pytest.mark.parametrize(
    ("given", "stored_as"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("my model (final).pkl", "my_model_final.pkl"),
        ("/absolute/path/model.bin", "model.bin"),
        ("", "artifact"),
    ],
)
def test_uploaded_file_names_are_reduced_to_a_safe_base_name(user, given, stored_as):
    model = MLModelFactory(owner=user)

    version = services.model_attach_file(model=model, actor=user, file=upload(name=given))

    assert version.file == f"users/{user.pk}/models/{model.pk}/v2/{stored_as}"


@pytest.mark.parametrize("name", ["..", "???", "/"])
def test_a_file_name_with_nothing_usable_is_refused(user, name):
    model = MLModelFactory(owner=user)

    with pytest.raises(ValidationError) as error:
        services.model_attach_file(model=model, actor=user, file=upload(name=name))

    assert "file" in error.value.message_dict
    assert model.versions.count() == 1


def objects_under(model) -> list[str]:
    return sorted(artifact_keys(f"users/{model.owner_id}/models/{model.pk}"))


def test_a_file_lands_under_the_version_really_recorded_even_if_another_writer_came_first(user, monkeypatch):
    """The upload streams before the row lock is taken; a version recorded meanwhile by someone
    else must not make the file land under (or overwrite) the wrong version."""
    model = MLModelFactory(owner=user)
    original_store = uploads.artifact_store

    def store_then_race(**kwargs):
        stored = original_store(**kwargs)
        services.version_record(model=MLModel.objects.get(pk=model.pk), actor=user, note="concurrent")
        return stored

    monkeypatch.setattr(uploads, "artifact_store", store_then_race)
    version = services.model_attach_file(model=model, actor=user, file=upload(b"payload"))

    assert version.version_number == 3
    assert version.file == f"users/{user.pk}/models/{model.pk}/v3/model.pkl"
    assert stored_bytes(version.file) == b"payload"
    assert objects_under(model) == [version.file]  # the staging copy is gone


def test_a_failed_database_write_removes_the_object_just_stored(user, monkeypatch):
    model = MLModelFactory(owner=user)

    def failing_create(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(ModelVersion.objects, "create", failing_create)
    with pytest.raises(RuntimeError):
        services.model_attach_file(model=model, actor=user, file=upload())

    assert objects_under(model) == []  # neither the staged nor the final copy is left
    model.refresh_from_db()
    assert (model.latest_version, model.file) == (1, None)


def test_other_user_cannot_attach_a_file_and_nothing_is_stored(user, other_user):
    model = MLModelFactory(owner=user)

    with pytest.raises(PermissionDenied):
        services.model_attach_file(model=model, actor=other_user, file=upload())

    assert not artifact_storage().exists(f"users/{user.pk}/models/{model.pk}/v2/model.pkl")


def test_model_delete_removes_its_files_only_after_commit(user, django_capture_on_commit_callbacks):
    model = MLModelFactory(owner=user)
    first = services.model_attach_file(model=model, actor=user, file=upload(b"1", "a.bin")).file
    second = services.model_attach_file(model=model, actor=user, file=upload(b"2", "b.bin")).file

    with django_capture_on_commit_callbacks() as callbacks:
        services.model_delete(model=model, actor=user)
        assert artifact_storage().exists(first) and artifact_storage().exists(second)
    for callback in callbacks:
        callback()

    assert not artifact_storage().exists(first)
    assert not artifact_storage().exists(second)
    assert not ModelVersion.objects.filter(model_id=model.pk).exists()


def test_a_rolled_back_model_delete_keeps_its_files(user, django_capture_on_commit_callbacks):
    model = MLModelFactory(owner=user)
    key = services.model_attach_file(model=model, actor=user, file=upload()).file
    model_id = model.pk

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        services.model_delete(model=model, actor=user)
        raise RuntimeError("something later in the request failed")

    assert MLModel.objects.filter(pk=model_id).exists()
    assert artifact_storage().exists(key)


def test_other_user_cannot_delete_a_model(user, other_user):
    model = MLModelFactory(owner=user)

    with pytest.raises(PermissionDenied):
        services.model_delete(model=model, actor=other_user)

    assert MLModel.objects.filter(pk=model.pk).exists()


# --- rollback -----------------------------------------------------------------------------------


def test_rollback_records_a_new_version_equal_to_the_old_one(user):
    model = MLModelFactory(owner=user, accuracy=0.7, hyperparameters={"depth": 2})
    services.model_attach_file(model=model, actor=user, file=upload(b"v2 weights"))
    services.model_update(model=model, actor=user, data={"accuracy": 0.9, "hyperparameters": {"depth": 9}})
    services.model_attach_file(model=model, actor=user, file=upload(b"v4 weights", "new.pkl"))
    target = model.versions.get(version_number=2)

    new_version = services.model_rollback(version=target, actor=user)

    assert new_version.version_number == 5
    assert new_version.note == "Rolled back to version 2"
    for field in services.SNAPSHOT_FIELDS:
        assert getattr(new_version, field) == getattr(target, field), field
    model.refresh_from_db()
    assert (model.accuracy, model.hyperparameters, model.file) == (0.7, {"depth": 2}, target.file)
    assert stored_bytes(model.file) == b"v2 weights"


def test_rollback_in_production_to_a_version_without_a_file_is_refused(user):
    model = model_in_stage(user, Stage.PRODUCTION)
    first = model.versions.get(version_number=1)

    with pytest.raises(ValidationError, match="no artifact file"):
        services.model_rollback(version=first, actor=user)

    assert model.versions.count() == 2


def test_other_user_cannot_roll_back(user, other_user):
    model = MLModelFactory(owner=user)
    services.version_record(model=model, actor=user, data={"accuracy": 0.1})

    with pytest.raises(PermissionDenied):
        services.model_rollback(version=model.versions.get(version_number=1), actor=other_user)


def test_rolled_back_file_shared_by_two_versions_survives_deleting_one_of_them(
    user, django_capture_on_commit_callbacks
):
    model = MLModelFactory(owner=user)
    original = services.model_attach_file(model=model, actor=user, file=upload(b"keep me"))
    services.version_record(model=model, actor=user)
    services.model_rollback(version=original, actor=user)

    with django_capture_on_commit_callbacks(execute=True):
        original.delete()

    assert artifact_storage().exists(original.file)


# --- lifecycle ----------------------------------------------------------------------------------

ALL_MOVES = list(itertools.product(Stage.values, Stage.values))
ALLOWED = [(a, b) for a, b in ALL_MOVES if b in ALLOWED_MOVES[a]]
REFUSED = [(a, b) for a, b in ALL_MOVES if b not in ALLOWED_MOVES[a]]


def test_the_lifecycle_graph_is_the_designed_one():
    assert sorted(ALLOWED) == sorted(
        [
            ("development", "staging"),
            ("development", "archived"),
            ("staging", "production"),
            ("staging", "development"),
            ("staging", "archived"),
            ("production", "staging"),
            ("production", "archived"),
            ("archived", "development"),
        ]
    )


@pytest.mark.parametrize(("from_stage", "to_stage"), ALLOWED)
def test_allowed_move_changes_the_stage_and_writes_the_audit_event(user, from_stage, to_stage):
    model = model_in_stage(user, from_stage)

    services.lifecycle_move(model=model, actor=user, to_stage=to_stage, comment="  ready  ")

    assert model.lifecycle == to_stage
    assert MLModel.objects.get(pk=model.pk).lifecycle == to_stage
    event = LifecycleEvent.objects.get(model=model)
    assert (event.from_stage, event.to_stage, event.actor, event.comment) == (from_stage, to_stage, user, "ready")


@pytest.mark.parametrize(("from_stage", "to_stage"), REFUSED)
def test_refused_move_names_the_allowed_moves_and_changes_nothing(user, from_stage, to_stage):
    model = model_in_stage(user, from_stage)

    with pytest.raises(ValidationError) as error:
        services.lifecycle_move(model=model, actor=user, to_stage=to_stage)

    message = error.value.message_dict["lifecycle"][0]
    assert f"Cannot move from {from_stage} to {to_stage}" in message
    assert ", ".join(ALLOWED_MOVES[from_stage]) in message
    assert MLModel.objects.get(pk=model.pk).lifecycle == from_stage
    assert not LifecycleEvent.objects.exists()


def test_unknown_stage_is_refused_with_the_list_of_stages(user):
    model = MLModelFactory(owner=user)

    with pytest.raises(ValidationError, match="stages are: development, staging, production, archived"):
        services.lifecycle_move(model=model, actor=user, to_stage="heaven")


def test_model_without_a_file_cannot_go_to_production(user):
    model = model_in_stage(user, Stage.STAGING, with_file=False)

    with pytest.raises(ValidationError, match="without an artifact file cannot go to production"):
        services.lifecycle_move(model=model, actor=user, to_stage=Stage.PRODUCTION)

    assert MLModel.objects.get(pk=model.pk).lifecycle == Stage.STAGING
    assert not LifecycleEvent.objects.exists()


def test_other_user_cannot_move_a_model(user, other_user):
    model = MLModelFactory(owner=user)

    with pytest.raises(PermissionDenied):
        services.lifecycle_move(model=model, actor=other_user, to_stage=Stage.STAGING)

    assert MLModel.objects.get(pk=model.pk).lifecycle == Stage.DEVELOPMENT
    assert not LifecycleEvent.objects.exists()


def test_superuser_can_move_any_model_and_is_recorded_as_the_actor(user, superuser):
    model = MLModelFactory(owner=user)

    services.lifecycle_move(model=model, actor=superuser, to_stage=Stage.STAGING)

    assert LifecycleEvent.objects.get().actor == superuser


def test_stage_change_and_its_event_commit_together_or_not_at_all(user, monkeypatch):
    model = MLModelFactory(owner=user)

    def failing_create(**kwargs):
        raise RuntimeError("audit write failed")

    monkeypatch.setattr(LifecycleEvent.objects, "create", failing_create)
    with pytest.raises(RuntimeError):
        services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)

    assert MLModel.objects.get(pk=model.pk).lifecycle == Stage.DEVELOPMENT


def test_the_audit_trail_lists_every_move_in_order(user):
    model = model_in_stage(user, Stage.DEVELOPMENT)
    for stage in (Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED, Stage.DEVELOPMENT):
        services.lifecycle_move(model=model, actor=user, to_stage=stage)

    trail = list(model.events.order_by("created_at", "id").values_list("from_stage", "to_stage"))
    assert trail == [
        ("development", "staging"),
        ("staging", "production"),
        ("production", "archived"),
        ("archived", "development"),
    ]


def test_a_file_over_the_upload_limit_is_refused_before_anything_is_stored(user, settings):
    settings.MAX_UPLOAD_BYTES = 3
    model = MLModelFactory(owner=user)
    data = SimpleUploadedFile("big.bin", b"four")

    with pytest.raises(services.FileTooLarge):
        services.model_attach_file(model=model, actor=user, file=data)

    assert objects_under(model) == []
    assert model.versions.count() == 1


# --- domain events ------------------------------------------------------------------------------
# Each service publishes its events once its transaction commits (``captured_events`` delivers them
# at the end of its block, as the test's own transaction never commits); a refused or rolled-back
# change publishes none.


def published(events) -> list[tuple]:
    """(type, model id, actor id) of each event, in order."""
    return [(event.type, event.model and event.model["id"], event.actor and event.actor["id"]) for event in events]


def test_create_publishes_model_created_then_version_one(user, captured_events):
    with captured_events() as events:
        model = services.model_create(owner=user, name="churn", framework="pytorch", note="first cut")

    assert published(events) == [("model.created", model.pk, user.pk), ("version.created", model.pk, user.pk)]
    created, version = events
    assert created.model == {"id": model.pk, "name": "churn"}
    assert created.actor == {"id": user.pk, "username": user.username}
    assert created.data["owner_id"] == user.pk
    assert (created.data["framework"], created.data["lifecycle"]) == ("pytorch", Stage.DEVELOPMENT)
    assert dict(version.data) == {"version": 1, "file": None, "note": "first cut"}


def test_create_with_a_file_names_the_stored_file_in_its_version_event(user, captured_events):
    with captured_events("version.created") as events:
        model = services.model_create(owner=user, name="churn", file=upload(b"abc"))

    assert events[0].data["file"] == {"key": model.file, "size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}


def test_a_model_created_for_another_user_names_the_superuser_as_actor(other_user, superuser, captured_events):
    with captured_events("model.created") as events:
        services.model_create(owner=other_user, actor=superuser, name="theirs")

    assert events[0].actor["id"] == superuser.pk
    assert events[0].data["owner_id"] == other_user.pk


def test_a_refused_create_publishes_nothing(user, other_user, captured_events):
    services.model_create(owner=user, name="churn")

    with captured_events() as events:
        with pytest.raises(ValidationError):
            services.model_create(owner=user, name="churn")  # refused by the database: rolled back
        with pytest.raises(ValidationError):
            services.model_create(owner=user, name="m", accuracy=2)
        with pytest.raises(PermissionDenied):
            services.model_create(owner=other_user, actor=user, name="theirs")

    assert events == []


def test_update_publishes_the_fields_it_wrote_and_the_version_it_recorded(user, captured_events):
    model = MLModelFactory(owner=user, accuracy=0.8)

    with captured_events() as events:
        services.model_update(model=model, actor=user, data={"accuracy": 0.85, "description": "x"}, note="retrained")

    assert published(events) == [("model.updated", model.pk, user.pk), ("version.created", model.pk, user.pk)]
    assert events[0].data["fields"] == ["accuracy", "description"]
    assert (events[1].data["version"], events[1].data["note"]) == (2, "retrained")


def test_update_of_descriptive_fields_publishes_no_version(user, captured_events):
    model = MLModelFactory(owner=user)

    with captured_events() as events:
        services.model_update(model=model, actor=user, data={"framework": "pytorch", "name": "renamed"})

    assert published(events) == [("model.updated", model.pk, user.pk)]
    assert events[0].data["fields"] == ["framework", "name"]
    assert events[0].model["name"] == "renamed"


def test_update_with_a_file_publishes_the_new_file_version(user, captured_events):
    model = MLModelFactory(owner=user)

    with captured_events("version.created") as events:
        services.model_update(model=model, actor=user, file=upload(b"new"))

    assert published(events) == [("version.created", model.pk, user.pk)]
    assert events[0].data["file"]["key"] == model.file
    assert events[0].data["version"] == 2


def test_a_refused_update_publishes_nothing(user, other_user, captured_events):
    model = MLModelFactory(owner=user, accuracy=0.8)

    with captured_events() as events:
        with pytest.raises(PermissionDenied):
            services.model_update(model=model, actor=other_user, data={"accuracy": 0.1})
        with pytest.raises(ValidationError):
            services.model_update(model=model, actor=user, data={"accuracy": 7})
        with pytest.raises(ValidationError):
            services.model_update(model=model, actor=user, data={"lifecycle": "production"})

    assert events == []


def test_version_record_publishes_version_created(user, captured_events):
    model = MLModelFactory(owner=user)

    with captured_events() as events:
        version = services.version_record(model=model, actor=user, data={"accuracy": 0.9}, note="nightly")

    assert published(events) == [("version.created", model.pk, user.pk)]
    assert dict(events[0].data) == {"version": version.version_number, "file": None, "note": "nightly"}


def test_attach_file_publishes_version_created_with_the_file(user, captured_events):
    model = MLModelFactory(owner=user)

    with captured_events("version.created") as events:
        version = services.model_attach_file(model=model, actor=user, file=upload(b"weights", "model.onnx"))

    assert published(events) == [("version.created", model.pk, user.pk)]
    assert events[0].data["version"] == 2
    assert events[0].data["file"] == {
        "key": version.file,
        "size": len(b"weights"),
        "sha256": hashlib.sha256(b"weights").hexdigest(),
    }


def test_attach_file_in_a_callers_transaction_publishes_only_if_that_one_commits(user, captured_events):
    """The admin wraps the upload in its own transaction: the event waits for that commit."""
    model = MLModelFactory(owner=user)

    with captured_events() as events, pytest.raises(RuntimeError), transaction.atomic():
        services.model_attach_file(model=model, actor=user, file=upload())
        raise RuntimeError("the admin's save failed afterwards")

    assert events == []


def test_a_failed_attach_publishes_nothing(user, other_user, monkeypatch, captured_events):
    model = MLModelFactory(owner=user)

    def failing_create(**kwargs):
        raise RuntimeError("database went away")

    with captured_events() as events:
        with pytest.raises(PermissionDenied):
            services.model_attach_file(model=model, actor=other_user, file=upload())
        monkeypatch.setattr(ModelVersion.objects, "create", failing_create)
        with pytest.raises(RuntimeError):
            services.model_attach_file(model=model, actor=user, file=upload())

    assert events == []


def test_rollback_publishes_the_new_version_and_where_it_came_from(user, captured_events):
    model = MLModelFactory(owner=user)
    services.version_record(model=model, actor=user, data={"accuracy": 0.1})

    with captured_events() as events:
        services.model_rollback(version=model.versions.get(version_number=1), actor=user)

    assert published(events) == [("version.created", model.pk, user.pk)]
    assert dict(events[0].data) == {
        "version": 3,
        "file": None,
        "note": "Rolled back to version 1",
        "rolled_back_from": 1,
    }


def test_a_refused_rollback_publishes_nothing(user, other_user, captured_events):
    model = model_in_stage(user, Stage.PRODUCTION)
    first = model.versions.get(version_number=1)

    with captured_events() as events:
        with pytest.raises(ValidationError):
            services.model_rollback(version=first, actor=user)
        with pytest.raises(PermissionDenied):
            services.model_rollback(version=first, actor=other_user)

    assert events == []


def test_lifecycle_move_publishes_lifecycle_changed(user, superuser, captured_events):
    model = MLModelFactory(owner=user)

    with captured_events() as events:
        services.lifecycle_move(model=model, actor=superuser, to_stage=Stage.STAGING, comment="  eval ok  ")

    assert published(events) == [("lifecycle.changed", model.pk, superuser.pk)]
    assert dict(events[0].data) == {"from_stage": "development", "to_stage": "staging", "comment": "eval ok"}


def test_a_refused_or_failed_move_publishes_nothing(user, other_user, monkeypatch, captured_events):
    model = model_in_stage(user, Stage.STAGING, with_file=False)

    def failing_create(**kwargs):
        raise RuntimeError("audit write failed")

    with captured_events() as events:
        with pytest.raises(ValidationError):
            services.lifecycle_move(model=model, actor=user, to_stage=Stage.PRODUCTION)
        with pytest.raises(ValidationError):
            services.lifecycle_move(model=model, actor=user, to_stage="heaven")
        with pytest.raises(PermissionDenied):
            services.lifecycle_move(model=model, actor=other_user, to_stage=Stage.DEVELOPMENT)
        monkeypatch.setattr(LifecycleEvent.objects, "create", failing_create)
        with pytest.raises(RuntimeError):
            services.lifecycle_move(model=model, actor=user, to_stage=Stage.DEVELOPMENT)

    assert events == []


def test_delete_publishes_model_deleted_with_what_the_row_was(user, captured_events):
    model = MLModelFactory(owner=user, name="churn")
    model_id = model.pk

    with captured_events() as events:
        services.model_delete(model=model, actor=user)

    assert published(events) == [("model.deleted", model_id, user.pk)]
    assert dict(events[0].data) == {"id": model_id, "name": "churn", "owner_id": user.pk}


def test_a_rolled_back_or_refused_delete_publishes_nothing(user, other_user, captured_events):
    model = MLModelFactory(owner=user)
    model_id = model.pk

    with captured_events() as events:
        with pytest.raises(PermissionDenied):
            services.model_delete(model=model, actor=other_user)
        with pytest.raises(RuntimeError), transaction.atomic():
            services.model_delete(model=model, actor=user)
            raise RuntimeError("something later in the request failed")

    assert events == []
    assert MLModel.objects.filter(pk=model_id).exists()
