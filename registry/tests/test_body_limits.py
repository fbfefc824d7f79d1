"""Only the upload routes take large bodies, and only from signed-in users; every other route refuses
a body over 1 MiB (any content type) with 413 before reading it."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mlmodels.tests.factories import MLModelFactory
from registry.tests.test_api_errors import NotToBeRead

MIB = 1024 * 1024
MULTIPART = "multipart/form-data; boundary=BoUnDaRy"


def declared_post(client, url, length, content_type=MULTIPART, **extra):
    """A POST that declares ``length`` bytes of body and fails the test if anything reads them."""
    return client.generic(
        "POST",
        url,
        CONTENT_TYPE=content_type,  # generic() drops its content_type when there is no data
        CONTENT_LENGTH=str(length),
        **{"wsgi.input": NotToBeRead()},
        **extra,
    )


def test_the_small_body_limit_is_one_mib(settings):
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == MIB


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    ["/api/v1/auth/login", "/api/v1/auth/register", "/accounts/login/", "/accounts/register/", "/admin/login/"],
)
@pytest.mark.parametrize("content_type", [MULTIPART, "application/json", "application/x-www-form-urlencoded"])
def test_anonymous_doors_refuse_a_5_mb_body_unread(client, url, content_type):
    response = declared_post(client, url, 5 * MIB, content_type)

    assert response.status_code == 413
    assert str(MIB) in response.content.decode()


@pytest.mark.django_db
def test_an_anonymous_upload_over_a_mib_is_refused_unread(client):
    response = declared_post(client, "/api/v1/files/upload", 2 * MIB)

    assert response.status_code == 413
    assert "sign in" in response.json()["detail"]


@pytest.mark.django_db
def test_a_bad_token_does_not_open_the_large_upload_limit(client):
    response = declared_post(client, "/api/v1/files/upload", 2 * MIB, HTTP_AUTHORIZATION="Bearer not-a-token")

    assert response.status_code == 413


@pytest.mark.django_db
def test_a_signed_in_multipart_body_to_another_route_is_refused_unread(client_for, user):
    response = declared_post(client_for(user), "/api/v1/models/", 2 * MIB)

    assert response.status_code == 413


@pytest.mark.django_db
def test_a_signed_in_user_uploads_more_than_a_mib_through_the_api(client_for, user):
    model = MLModelFactory(owner=user)
    payload = b"w" * (2 * MIB)

    response = client_for(user).post(
        "/api/v1/files/upload",
        {"model_id": model.pk, "file": SimpleUploadedFile("big.bin", payload)},
        format="multipart",
    )

    assert response.status_code == 201, response.content
    assert response.json()["size"] == len(payload)


@pytest.mark.django_db
def test_a_signed_in_user_uploads_more_than_a_mib_through_the_page(owner_client, user):
    model = MLModelFactory(owner=user)

    response = owner_client.post(
        f"/models/{model.pk}/upload/", {"file": SimpleUploadedFile("big.bin", b"w" * (2 * MIB))}
    )

    assert response.status_code == 302
    model.refresh_from_db()
    assert model.file_size == 2 * MIB
