"""The artifact files of runs and logged models (experiments.artifacts): rows, stored objects, and
what happens to them when their owners go."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from experiments import artifacts, services
from experiments.models import ArtifactFile, LifecycleStage, LoggedModel
from experiments.tests.factories import ExperimentFactory, RunFactory
from mlmodels import references
from mlmodels import services as model_services
from mlmodels.storage import artifact_keys, artifact_open_stream

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment(user):
    return ExperimentFactory(owner=user)


@pytest.fixture
def run(experiment):
    return RunFactory(experiment=experiment)


@pytest.fixture
def logged_model(experiment):
    return LoggedModel.objects.create(
        experiment=experiment, user=experiment.owner, name="model", creation_time=1, last_updated_time=1
    )


def store(owner, path: str, content: bytes, actor=None) -> ArtifactFile:
    actor = actor or owner.experiment.owner
    return artifacts.file_store(owner=owner, actor=actor, path=path, body=io.BytesIO(content), length=len(content))


def stored(user) -> set[str]:
    return set(artifact_keys(f"users/{user.pk}"))


def no_orphans(user) -> bool:
    """The audit of ``user``'s prefix (a shared S3 test bucket holds other tests' objects)."""
    audit = model_services.storage_audit(min_age=timedelta(0), prefix=f"users/{user.pk}")
    return audit.orphans == [] and audit.missing == []


def test_a_stored_file_has_its_row_key_size_and_digest(run, user):
    row = store(run, "model/MLmodel", b"flavors: {}\n")

    assert row.key == f"users/{user.pk}/runs/{run.run_id}/artifacts/model/MLmodel"
    assert (row.path, row.size, row.sha256) == ("model/MLmodel", 12, hashlib.sha256(b"flavors: {}\n").hexdigest())
    assert stored(user) == {row.key}
    with artifact_open_stream(row.key) as stream:
        assert stream.read() == b"flavors: {}\n"


def test_an_overwrite_keeps_one_row_and_one_object(run, user, django_capture_on_commit_callbacks):
    store(run, "a.bin", b"first")
    with django_capture_on_commit_callbacks(execute=True):
        row = store(run, "a.bin", b"second upload")

    assert ArtifactFile.objects.get() == row
    assert (row.size, row.sha256) == (13, hashlib.sha256(b"second upload").hexdigest())
    assert stored(user) == {row.key}
    assert no_orphans(user)


@pytest.mark.django_db(transaction=True)
def test_an_overwrite_whose_commit_fails_keeps_the_earlier_bytes_with_their_row(run, user, monkeypatch):
    from django.db import connections

    first = store(run, "model/model.pkl", b"the first weights")
    database = connections["default"]
    real_commit, failed = database.commit, []

    def commit_fails_once():
        if failed:
            return real_commit()
        failed.append(True)
        raise IntegrityError("the database refused the commit")

    monkeypatch.setattr(database, "commit", commit_fails_once)
    with pytest.raises(IntegrityError):
        store(run, "model/model.pkl", b"the second weights, never committed")

    row = ArtifactFile.objects.get()
    assert (row.size, row.sha256) == (first.size, first.sha256)
    with artifact_open_stream(row.key) as stream:
        assert stream.read() == b"the first weights"
    # Neither the staged upload nor the copy set aside is left behind.
    assert stored(user) == {row.key}
    assert no_orphans(user)


def test_a_listing_is_one_level_with_derived_folders_by_name(run):
    for path in ("b.txt", "a/x.txt", "a/y/z.txt", "A.txt", "c/d/e/f.txt"):
        store(run, path, path.encode())
    files = artifacts.files_of(run)

    assert artifacts.list_folder(files) == [
        artifacts.Entry("A.txt", False, 5),
        artifacts.Entry("a", True),
        artifacts.Entry("b.txt", False, 5),
        artifacts.Entry("c", True),
    ]
    assert artifacts.list_folder(files, "a") == [artifacts.Entry("x.txt", False, 7), artifacts.Entry("y", True)]
    assert artifacts.list_folder(files, "b.txt") == []
    assert artifacts.list_folder(files, "nothing") == []


def test_a_folder_name_does_not_match_a_longer_sibling(run):
    store(run, "ab/c.txt", b"1")
    store(run, "a/d.txt", b"2")

    assert artifacts.list_folder(artifacts.files_of(run), "a") == [artifacts.Entry("d.txt", False, 1)]
    artifacts.files_delete(owner=run, actor=run.experiment.owner, path="a")
    assert list(ArtifactFile.objects.values_list("path", flat=True)) == ["ab/c.txt"]


def test_only_those_who_may_change_the_run_write(run, other_user, superuser):
    with pytest.raises(PermissionDenied):
        store(run, "a.txt", b"x", actor=other_user)
    store(run, "a.txt", b"x", actor=superuser)
    with pytest.raises(PermissionDenied):
        artifacts.files_delete(owner=run, actor=other_user, path="a.txt")
    assert ArtifactFile.objects.count() == 1


def test_a_deleted_owner_refuses_writes(run, logged_model):
    for owner in (run, logged_model):
        owner.lifecycle_stage = LifecycleStage.DELETED
        owner.save()
        with pytest.raises(ValidationError, match="must be in the 'active' state"):
            store(owner, "a.txt", b"x")
    assert not ArtifactFile.objects.exists()


@pytest.mark.parametrize("path", ["", "../x", "/abs", "a//b", "a\\b", "a%2e", "a\x00b", "a/", "./a"])
def test_bad_paths_are_refused_before_anything_is_stored(run, user, path):
    with pytest.raises(ValidationError):
        store(run, path, b"x")
    assert stored(user) == set()


def test_a_short_body_stores_nothing(run, user):
    with pytest.raises(artifacts.BodyIncomplete):
        artifacts.file_store(owner=run, actor=user, path="a.bin", body=io.BytesIO(b"abc"), length=10)
    assert not ArtifactFile.objects.exists()
    assert stored(user) == set()


def test_a_body_over_the_limit_stores_nothing(run, user, settings):
    settings.MAX_UPLOAD_BYTES = 4
    with pytest.raises(artifacts.ArtifactTooLarge):
        store(run, "a.bin", b"12345")
    assert stored(user) == set()


def test_deleting_the_experiment_removes_its_files_after_the_commit(
    experiment, run, logged_model, user, django_capture_on_commit_callbacks
):
    store(run, "a.txt", b"run's")
    store(logged_model, "MLmodel", b"model's")
    other = store(RunFactory(experiment=ExperimentFactory(owner=user)), "kept.txt", b"kept")

    with django_capture_on_commit_callbacks() as callbacks:
        services.experiment_delete(experiment=experiment, actor=user)
        # Not before the commit: a rolled-back delete keeps every file.
        assert len(stored(user)) == 3
    for callback in callbacks:
        callback()

    assert list(ArtifactFile.objects.all()) == [other]
    assert stored(user) == {other.key}
    assert no_orphans(user)


def test_a_rolled_back_delete_keeps_the_files(run, user, django_capture_on_commit_callbacks):
    row = store(run, "a.txt", b"x")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        run.experiment.delete()
        raise RuntimeError("rolled back")

    assert ArtifactFile.objects.get() == row
    assert stored(user) == {row.key}


def test_deleting_a_user_removes_their_experiments_files(run, user, django_capture_on_commit_callbacks):
    store(run, "a.txt", b"x")

    with django_capture_on_commit_callbacks(execute=True):
        user.delete()

    assert not ArtifactFile.objects.exists()
    assert stored(user) == set()


def test_the_storage_audit_counts_artifact_keys_as_referenced(run, user):
    row = store(run, "a.txt", b"x")

    assert artifacts.referenced_keys in references._sources
    assert set(references.referenced_keys(f"users/{user.pk}")) == {row.key}
    assert no_orphans(user)
    # And a file whose object is gone is reported missing.
    from mlmodels.storage import artifact_delete

    artifact_delete(row.key)
    assert model_services.storage_audit(min_age=timedelta(0), prefix=f"users/{user.pk}").missing == [row.key]


def test_the_database_keeps_one_owner_and_registry_written_keys(run, logged_model):
    prefix = run.artifact_prefix
    bad_rows = [
        ArtifactFile(run=run, logged_model=logged_model, path="a", key=f"{prefix}/a", size=1, sha256=""),
        ArtifactFile(path="b", key=f"{prefix}/b", size=1, sha256=""),
        ArtifactFile(run=run, path="c", key="s3://bucket/c", size=1, sha256=""),
        ArtifactFile(run=run, path="d", key=f"{prefix}/../d", size=1, sha256=""),
        ArtifactFile(run=run, path="e", key=f"{prefix}/e", size=-1, sha256=""),
    ]
    for row in bad_rows:
        with pytest.raises(IntegrityError), transaction.atomic():
            row.save()
    # A name with two dots in it is a name, not a traversal.
    store(run, "model..v2.bin", b"x")


def test_the_run_page_lists_its_artifact_files_with_sizes(run, other_client):
    store(run, "model/MLmodel", b"flavors: {}\n")
    store(run, "model/model.skops", b"x" * 2048)
    url = reverse("run-detail", args=[run.experiment_id, run.run_id])

    response = other_client.get(url)  # every signed-in user reads it
    page = response.content.decode()

    assert response.status_code == 200
    assert "<code>model/MLmodel</code>" in page and 'title="12 bytes"' in page
    assert "<code>model/model.skops</code>" in page and "2.0\xa0KB" in page


def test_the_run_page_says_when_there_are_no_artifact_files(run, owner_client):
    page = owner_client.get(reverse("run-detail", args=[run.experiment_id, run.run_id])).content.decode()

    assert "No artifact files logged." in page
