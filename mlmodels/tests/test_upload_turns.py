"""Uploads on PostgreSQL take turns per model and go straight to their version's key, moving only
when a metrics-only version took their number meanwhile (mlmodels.uploads._upload_turn)."""

import hashlib
import io

import pytest
from django.db import connection, transaction

from mlmodels import services, uploads
from mlmodels.models import MLModel
from mlmodels.storage import StorageUnavailable, artifact_delete, artifact_keys, artifact_storage
from mlmodels.tests.factories import MLModelFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def moves(monkeypatch):
    """The storage moves the uploads make (each a server-side copy on S3)."""
    made = []
    original = uploads.artifact_move

    def spy(**kwargs):
        made.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(uploads, "artifact_move", spy)
    return made


@pytest.fixture
def model(user):
    """A model with nothing stored under its prefix, before and after the test: ids restart after
    each test's flush, and the test bucket is shared by every test of the run."""
    model = MLModelFactory(owner=user)
    for key in stored_keys(model):
        artifact_delete(key)
    yield model
    for key in stored_keys(model):
        artifact_delete(key)


def named(content: bytes, name: str = "weights.bin") -> io.BytesIO:
    data = io.BytesIO(content)
    data.name = name
    return data


def stored_keys(model: MLModel) -> list[str]:
    return sorted(artifact_keys(f"users/{model.owner_id}/models/{model.pk}"))


def read(key: str) -> bytes:
    with artifact_storage().open(key, "rb") as stored:
        return stored.read()


def test_an_upload_goes_straight_to_its_version_key(user, model, moves):

    version = services.model_attach_file(model=model, actor=user, file=named(b"weights"))

    assert version.file == f"users/{user.pk}/models/{model.pk}/v2/weights.bin"
    assert moves == []
    assert stored_keys(model) == [version.file]
    assert read(version.file) == b"weights"
    assert version.file_sha256 == hashlib.sha256(b"weights").hexdigest()


class RecordsAVersionWhenRead(io.BytesIO):
    """A file whose first read records a metrics-only version: the number the upload aimed at is
    taken while its bytes are being stored."""

    def __init__(self, content: bytes, *, model: MLModel, actor):
        super().__init__(content)
        self.name, self.model, self.actor, self.recorded = "weights.bin", model, actor, None

    def read(self, *args):
        if self.recorded is None:
            self.recorded = services.version_record(
                model=MLModel.objects.get(pk=self.model.pk), actor=self.actor, data={"accuracy": 0.1}
            )
        return super().read(*args)


def test_an_upload_whose_number_was_taken_meanwhile_moves_to_the_next(user, model, moves):
    file = RecordsAVersionWhenRead(b"late weights", model=model, actor=user)

    version = services.model_attach_file(model=model, actor=user, file=file)

    assert file.recorded.version_number == 2
    assert file.recorded.file is None
    assert version.version_number == 3
    assert version.file == f"users/{user.pk}/models/{model.pk}/v3/weights.bin"
    assert [move["source_key"] for move in moves] == [f"users/{user.pk}/models/{model.pk}/v2/weights.bin"]
    assert stored_keys(model) == [version.file]
    assert read(version.file) == b"late weights"


def test_an_upload_inside_a_callers_transaction_is_staged(user, model, moves):

    with transaction.atomic():
        version = services.model_attach_file(model=model, actor=user, file=named(b"admin weights"))

    assert [move["source_key"].split("/")[4] for move in moves] == ["uploads"]
    assert stored_keys(model) == [version.file]
    assert read(version.file) == b"admin weights"


class BreaksWhenRead(io.BytesIO):
    name = "weights.bin"

    def read(self, *args):
        raise OSError("the disk under the upload's temporary file failed")


def held_upload_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s",
            [uploads.UPLOAD_LOCK_NAMESPACE],
        )
        return cursor.fetchone()[0]


def test_a_failed_upload_gives_up_its_turn_and_leaves_nothing(user, model):

    with pytest.raises(StorageUnavailable):
        services.model_attach_file(model=model, actor=user, file=BreaksWhenRead(b"x"))

    assert held_upload_locks() == 0
    assert stored_keys(model) == []
    assert MLModel.objects.get(pk=model.pk).latest_version == 1
    later = services.model_attach_file(model=model, actor=user, file=named(b"retry"))
    assert later.version_number == 2
