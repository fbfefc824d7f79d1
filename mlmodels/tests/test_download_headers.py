"""Uploaded files are served as opaque bytes to save, never as a page or script of the app's origin."""

import io
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mlmodels.tests.factories import MLModelFactory

ACTIVE_NAMES = ["evil.js", "evil.html", "evil.svg", "evil.xml", "page.htm"]


def assert_inert(response):
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


def streamed(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ACTIVE_NAMES)
def test_an_active_file_type_downloads_as_inert_bytes(client_for, user, settings, name):
    model = MLModelFactory(owner=user)
    api = client_for(user)
    body = b"<script>alert(document.domain)</script>"
    uploaded = api.post(
        "/api/v1/files/upload", {"model_id": model.pk, "file": SimpleUploadedFile(name, body)}, format="multipart"
    )
    assert uploaded.status_code == 201, uploaded.content
    path = uploaded.json()["path"]

    presigned = api.get(f"/api/v1/files/presigned-url/{path}").json()["url"]
    if settings.USE_S3:
        query = parse_qs(urlsplit(presigned).query)
        assert query["response-content-type"] == ["application/octet-stream"]
        assert query["response-content-disposition"][0].startswith("attachment;")
        return
    by_path = api.get(f"/api/v1/files/download/{path}")
    by_model = api.get(f"/api/v1/models/{model.pk}/download/")
    by_signed_url = api.get(urlsplit(presigned).path + "?" + urlsplit(presigned).query)
    for response in (by_path, by_model, by_signed_url):
        assert response.status_code == 200
        assert_inert(response)
        assert streamed(response) == body


@pytest.mark.django_db
@pytest.mark.s3
def test_s3_serves_a_presigned_download_as_inert_bytes(client_for, user):
    import requests

    model = MLModelFactory(owner=user)
    api = client_for(user)
    upload = io.BytesIO(b"alert(1)")
    upload.name = "evil.js"
    path = api.post("/api/v1/files/upload", {"model_id": model.pk, "file": upload}, format="multipart").json()["path"]
    url = api.get(f"/api/v1/files/presigned-url/{path}").json()["url"]

    response = requests.get(url, timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")
