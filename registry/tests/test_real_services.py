"""Proof that the services pass of CI really talks to PostgreSQL, Redis and S3 over sockets.

Each test is marked with the service it needs: skipped on the embedded defaults, a failure in CI
(REQUIRE_SERVICES=1) if the service is not configured.
"""

import io
import uuid
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from django.core.cache import cache
from django.db import close_old_connections, connection
from django_redis import get_redis_connection

from mlmodels import services
from mlmodels.storage import S3_SINGLE_COPY_MAX_BYTES, artifact_storage
from mlmodels.tests.factories import MLModelFactory


@pytest.mark.postgres
@pytest.mark.django_db
def test_database_is_postgresql_with_health_checked_persistent_connections():
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]

    assert int(version.split(".")[0]) >= 15
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


@pytest.mark.redis
def test_cache_values_land_in_redis():
    key = f"proof-{uuid.uuid4()}"
    cache.set(key, "stored in redis", timeout=30)

    raw_keys = get_redis_connection("default").keys(f"*{key}*")

    assert cache.get(key) == "stored in redis"
    assert len(raw_keys) == 1


@pytest.mark.s3
@pytest.mark.django_db
def test_artifacts_are_stored_in_the_s3_bucket(user):
    model = MLModelFactory(owner=user)
    data = io.BytesIO(b"s3 bytes" * 1000)
    data.name = "weights.bin"

    version = services.model_attach_file(model=model, actor=user, file=data)

    storage = artifact_storage()
    head = storage.bucket.meta.client.head_object(Bucket=storage.bucket_name, Key=version.file)
    assert head["ContentLength"] == 8000
    url = storage.url(version.file)
    query = parse_qs(urlsplit(url).query)
    assert "X-Amz-Signature" in query and "X-Amz-Expires" in query


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_next_request_reconnects_after_the_database_dropped_its_connection():
    """Persistent connections are health-checked before reuse (CONN_HEALTH_CHECKS): after the
    server side of a connection dies (a restart, a failover), the next request reconnects instead of
    failing. ``close_old_connections`` is what Django runs at the start of every request."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        old_pid = cursor.fetchone()[0]
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"], dbname=db["NAME"], autocommit=True
    ) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [old_pid]).fetchone()[0] is True

    close_old_connections()  # a new request starts
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        new_pid = cursor.fetchone()[0]

    assert new_pid != old_pid


@pytest.mark.s3
@pytest.mark.django_db
@pytest.mark.parametrize("single_copy_max", [S3_SINGLE_COPY_MAX_BYTES, 0], ids=["copy-object", "multipart-copy"])
def test_an_upload_moves_from_staging_to_its_version_key_in_s3(user, monkeypatch, single_copy_max):
    # Objects over 5 GiB cannot be copied in one CopyObject call; a limit of 0 sends this small one
    # down the multipart path those take.
    monkeypatch.setattr("mlmodels.storage.S3_SINGLE_COPY_MAX_BYTES", single_copy_max)
    model = MLModelFactory(owner=user)
    content = bytes(range(256)) * 4000
    data = io.BytesIO(content)
    data.name = "weights.bin"

    version = services.model_attach_file(model=model, actor=user, file=data)

    storage = artifact_storage()
    assert version.file == f"users/{user.pk}/models/{model.pk}/v{version.version_number}/weights.bin"
    with storage.open(version.file) as stored:
        assert stored.read() == content
    staged = storage.bucket.objects.filter(Prefix=f"users/{user.pk}/models/{model.pk}/uploads/")
    assert list(staged) == []
