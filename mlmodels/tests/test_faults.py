"""Faults of the services the registry depends on: nothing lost, nothing half-written, a clear error."""

import io

import pytest
from botocore.config import Config
from django.core.files.uploadedfile import SimpleUploadedFile

from mlmodels import services
from mlmodels.models import LifecycleEvent, MLModel, ModelVersion
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db

UNREACHABLE_S3 = {
    "BACKEND": "storages.backends.s3.S3Storage",
    "OPTIONS": {
        "endpoint_url": "http://127.0.0.1:9",  # the discard port: nothing listens there
        "access_key": "key",
        "secret_key": "secret",
        "bucket_name": "ml-models",
        "region_name": "us-east-1",
        "client_config": Config(connect_timeout=1, retries={"max_attempts": 1}),
    },
}


@pytest.fixture
def storage_down(settings):
    """Point artifact storage at an S3 endpoint nobody answers; ``storage_down.restore()`` brings
    the run's real storage back."""
    real = settings.STORAGES

    class Switch:
        def restore(self):
            settings.STORAGES = real

    settings.STORAGES = {**real, "default": UNREACHABLE_S3}
    return Switch()


def snapshot(model):
    model = MLModel.objects.get(pk=model.pk)
    return (
        model.latest_version,
        model.file,
        model.updated_at,
        ModelVersion.objects.filter(model=model).count(),
        LifecycleEvent.objects.filter(model=model).count(),
    )


def test_api_upload_while_storage_is_down_is_a_503_that_changes_nothing_then_succeeds(client_for, user, storage_down):
    model = MLModelFactory(owner=user)
    before = snapshot(model)
    api = client_for(user)

    def upload():
        return api.post(
            "/api/v1/files/upload",
            {"model_id": model.pk, "file": SimpleUploadedFile("weights.bin", b"precious")},
            format="multipart",
        )

    refused = upload()

    assert refused.status_code == 503
    assert refused.json() == {"detail": "Artifact storage is unavailable (store the file failed); nothing was changed."}
    assert snapshot(model) == before

    storage_down.restore()
    accepted = upload()

    assert accepted.status_code == 201, accepted.json()
    assert MLModel.objects.get(pk=model.pk).latest_version == 2


def test_page_upload_while_storage_is_down_shows_an_inline_error(owner_client, user, storage_down):
    model = MLModelFactory(owner=user)
    before = snapshot(model)

    response = owner_client.post(
        f"/models/{model.pk}/upload/", {"file": SimpleUploadedFile("w.bin", b"x")}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert b"Artifact storage is unavailable" in response.content
    assert snapshot(model) == before


def test_download_while_storage_is_down_is_a_503(client_for, user, settings):
    model = MLModelFactory(owner=user)
    data = io.BytesIO(b"weights")
    data.name = "w.bin"
    key = services.model_attach_file(model=model, actor=user, file=data).file
    settings.STORAGES = {**settings.STORAGES, "default": UNREACHABLE_S3}

    response = client_for(user).get(f"/api/v1/files/download/{key}")

    assert response.status_code == 503
    assert response.json() == {"detail": "Artifact storage is unavailable (read the file failed); nothing was changed."}


def test_pages_and_api_keep_answering_when_the_cache_server_is_down(owner_client, client_for, user, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    MLModelFactory(owner=user, name="still-here")

    assert b"still-here" in owner_client.get("/").content
    assert client_for(user).get("/api/v1/models/").json()["count"] == 1
