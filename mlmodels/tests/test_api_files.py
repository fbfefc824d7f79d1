"""/api/v1/files/: upload, download by path, presigned URLs; paths validated before storage."""

import hashlib
import io
import time
import urllib.request

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mlmodels import services
from mlmodels.models import MLModel
from mlmodels.storage import artifact_storage
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db

UPLOAD = "/api/v1/files/upload"


@pytest.fixture
def model(user):
    return MLModelFactory(owner=user, name="churn")


@pytest.fixture
def stored(model):
    """A model whose current file (version 2) is stored; returns its key."""
    data = io.BytesIO(b"stored weights " * 100)
    data.name = "weights.bin"
    return services.model_attach_file(model=model, actor=model.owner, file=data).file


def upload_form(model, content: bytes = b"abc", name: str = "model.onnx", **extra) -> dict:
    return {"model_id": model.pk, "file": SimpleUploadedFile(name, content), **extra}


def no_object_under(model) -> bool:
    storage = artifact_storage()
    folder = f"users/{model.owner_id}/models/{model.pk}"
    try:
        folders, files = storage.listdir(folder)
    except FileNotFoundError:
        return True
    return not folders and not files


# --- upload -------------------------------------------------------------------------------------


def test_owner_uploads_a_file_that_becomes_the_new_version(client_for, user, model):
    content = b"\x00\x01binary weights" * 5000

    response = client_for(user).post(UPLOAD, upload_form(model, content, note="retrained"), format="multipart")

    assert response.status_code == 201, response.json()
    key = f"users/{user.pk}/models/{model.pk}/v2/model.onnx"
    assert response.json() == {
        "path": key,
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "content_type": "application/octet-stream",
        "version": 2,
    }
    with artifact_storage().open(key, "rb") as stored_file:
        assert stored_file.read() == content
    model.refresh_from_db()
    assert (model.file, model.latest_version) == (key, 2)
    assert model.versions.get(version_number=2).note == "retrained"


def test_upload_guesses_the_content_type_from_the_name(client_for, user, model):
    response = client_for(user).post(UPLOAD, upload_form(model, name="card.json"), format="multipart")

    assert response.json()["content_type"] == "application/json"


def test_other_user_cannot_upload_and_nothing_is_stored(client_for, other_user, model):
    response = client_for(other_user).post(UPLOAD, upload_form(model), format="multipart")

    assert response.status_code == 403
    assert no_object_under(model)
    assert MLModel.objects.get(pk=model.pk).latest_version == 1


def test_superuser_uploads_for_any_model(client_for, superuser, model):
    assert client_for(superuser).post(UPLOAD, upload_form(model), format="multipart").status_code == 201


def test_anonymous_client_cannot_upload(api_client, model):
    assert api_client.post(UPLOAD, upload_form(model), format="multipart").status_code == 401
    assert no_object_under(model)


@pytest.mark.parametrize(
    ("form", "field"),
    [
        (lambda m: {"model_id": m.pk}, "file"),
        (lambda m: {"file": SimpleUploadedFile("a.bin", b"x")}, "model_id"),
        (lambda m: {"model_id": "abc", "file": SimpleUploadedFile("a.bin", b"x")}, "model_id"),
        (lambda m: {"model_id": m.pk, "file": "not a file"}, "file"),
        (lambda m: {"model_id": m.pk, "file": SimpleUploadedFile("a.bin", b"x"), "colour": "red"}, "colour"),
    ],
)
def test_upload_refuses_bad_forms_naming_the_field(client_for, user, model, form, field):
    response = client_for(user).post(UPLOAD, form(model), format="multipart")

    assert response.status_code == 400
    assert field in response.json()
    assert no_object_under(model)


def test_upload_for_a_missing_model_is_404(client_for, user, model):
    form = {"model_id": 999999, "file": SimpleUploadedFile("a.bin", b"x")}

    assert client_for(user).post(UPLOAD, form, format="multipart").status_code == 404


def test_upload_over_the_size_limit_is_413_and_stores_nothing(client_for, user, model, settings):
    settings.MAX_UPLOAD_BYTES = 1000

    small_envelope = client_for(user).post(UPLOAD, upload_form(model, b"x" * 1001), format="multipart")

    assert small_envelope.status_code == 413
    assert "limit is 1000 bytes" in small_envelope.json()["detail"]
    assert no_object_under(model)
    assert MLModel.objects.get(pk=model.pk).latest_version == 1


def test_upload_whose_body_exceeds_the_limit_is_refused_before_it_is_read(client_for, user, model, settings):
    settings.MAX_UPLOAD_BYTES = 10
    api = client_for(user)

    response = api.generic(
        "POST",
        UPLOAD,
        data=b"x" * 10,
        content_type="multipart/form-data; boundary=zzz",
        CONTENT_LENGTH=str(5 * 1024 * 1024),
    )

    assert response.status_code == 413
    assert response.json()["detail"].startswith("Request body too large")


# --- download by path ---------------------------------------------------------------------------


def download(api, path: str):
    return api.get(f"/api/v1/files/download/{path}")


def test_any_signed_in_user_downloads_an_artifact_by_path(client_for, other_user, stored):
    response = download(client_for(other_user), stored)

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="weights.bin"'
    assert response["Content-Length"] == str(len(b"stored weights " * 100))
    assert b"".join(response.streaming_content) == b"stored weights " * 100


def test_an_older_versions_file_is_downloadable_too(client_for, user, model, stored):
    newer = io.BytesIO(b"newer")
    newer.name = "newer.bin"
    services.model_attach_file(model=model, actor=user, file=newer)

    response = download(client_for(user), stored)

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"stored weights " * 100


def test_anonymous_client_cannot_download_by_path(api_client, stored):
    assert download(api_client, stored).status_code == 401


TRAVERSALS = [
    "../../etc/passwd",
    "users/{owner}/models/{model}/v2/../../../../etc/passwd",
    "users/{owner}/models/{model}/v2/..%2f..%2fsecret",
    "users/{owner}/models/{model}/v2/%2e%2e/%2e%2e/secret",
    "users/{owner}/models/{model}/v2/%252e%252e%252fsecret",
    "users/{owner}/models/{model}/v2/....//weights.bin",
    "users/{owner}/models/{model}/v2/..\\..\\weights.bin",
    "users\\{owner}\\models\\{model}\\v2\\weights.bin",
    "/etc/passwd",
    "//etc/passwd",
    "users/{owner}/models/{model}/v2/weights.bin%00.txt",
    "users/{owner}/models/{model}/v2/weights.bin\x00",
    "media/users/{owner}/models/{model}/v2/weights.bin",
    "users/{owner}/models/{model}/v2/./weights.bin",
    "users/{owner}/models/{model}/v2",
]


@pytest.mark.parametrize("route", ["download", "presigned-url"])
@pytest.mark.parametrize("template", TRAVERSALS)
def test_traversal_and_smuggled_paths_are_refused(client_for, user, model, stored, route, template):
    path = template.format(owner=user.pk, model=model.pk)

    response = client_for(user).get(f"/api/v1/files/{route}/{path}")

    assert response.status_code in (400, 404), (path, response.status_code)
    assert response["Content-Type"] == "application/json"
    assert b"stored weights" not in b"".join(getattr(response, "streaming_content", [response.content]))


@pytest.mark.parametrize("route", ["download", "presigned-url"])
def test_a_made_up_name_in_another_users_namespace_is_404(client_for, user, other_user, stored, route):
    other_model = MLModelFactory(owner=other_user)
    made_up = f"users/{other_user.pk}/models/{other_model.pk}/v1/secret.bin"

    response = client_for(user).get(f"/api/v1/files/{route}/{made_up}")

    assert response.status_code == 404
    assert response.json() == {"detail": "No artifact at this path."}


def test_a_real_key_under_the_wrong_owner_id_is_404(client_for, user, other_user, model, stored):
    wrong_owner = stored.replace(f"users/{user.pk}/", f"users/{other_user.pk}/")

    assert download(client_for(user), wrong_owner).status_code == 404


# --- presigned URLs -----------------------------------------------------------------------------


def test_presigned_url_downloads_the_bytes_without_a_token(client_for, other_user, stored, settings, api_client):
    response = client_for(other_user).get(f"/api/v1/files/presigned-url/{stored}")

    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == settings.PRESIGNED_URL_SECONDS
    if settings.USE_S3:
        assert "X-Amz-Signature=" in body["url"] and "X-Amz-Expires=" in body["url"]
        with urllib.request.urlopen(body["url"], timeout=10) as s3_response:  # noqa: S310 (loopback S3)
            content = s3_response.read()
    else:
        assert body["url"].startswith("http://testserver/api/v1/files/signed/")
        # No token: the signed URL itself is the credential.
        signed = api_client.get(body["url"].removeprefix("http://testserver"))
        assert signed.status_code == 200
        assert signed["Content-Disposition"] == 'attachment; filename="weights.bin"'
        content = b"".join(signed.streaming_content)
    assert hashlib.sha256(content).hexdigest() == hashlib.sha256(b"stored weights " * 100).hexdigest()


def signed_url(api, key: str) -> str:
    return api.get(f"/api/v1/files/presigned-url/{key}").json()["url"].removeprefix("http://testserver")


def test_a_tampered_signed_url_is_refused(client_for, user, stored, api_client, settings):
    if settings.USE_S3:
        pytest.skip("S3 issues its own presigned URLs; moto does not check their signatures")
    url = signed_url(client_for(user), stored)

    response = api_client.get(url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB"))

    assert response.status_code == 403
    assert response.json() == {"detail": "This download link is not valid."}


def test_an_expired_signed_url_is_refused(client_for, user, stored, api_client, settings, monkeypatch):
    if settings.USE_S3:
        pytest.skip("S3 issues its own presigned URLs; moto does not check their expiry")
    url = signed_url(client_for(user), stored)
    later = time.time() + settings.PRESIGNED_URL_SECONDS + 5
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)

    response = api_client.get(url)

    assert response.status_code == 403
    assert response.json() == {"detail": "This download link has expired."}


def test_a_signed_url_stops_working_once_its_model_is_deleted(
    client_for, user, model, stored, api_client, settings, django_capture_on_commit_callbacks
):
    if settings.USE_S3:
        pytest.skip("S3 presigned URLs are served by S3")
    url = signed_url(client_for(user), stored)
    with django_capture_on_commit_callbacks(execute=True):
        services.model_delete(model=model, actor=user)

    assert api_client.get(url).status_code == 404
