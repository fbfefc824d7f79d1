"""The two artifact stores (local files, S3) and how the configured storage picks one.

The local tests run in every pass; the S3 ones talk to the run's S3 server (moto in CI's services
pass) and each works under a prefix of its own in the shared bucket.
"""

import hashlib
import io
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage

from mlmodels import storage as storage_module
from mlmodels.storage import (
    ARTIFACT_CONTENT_TYPE,
    LocalArtifacts,
    S3Artifacts,
    StorageUnavailable,
    artifact_storage,
    artifacts,
)
from mlmodels.tests.test_faults import UNREACHABLE_S3


def source(content: bytes) -> io.BytesIO:
    return io.BytesIO(content)


def read_all(stream) -> bytes:
    try:
        return stream.read()
    finally:
        stream.close()


# --- picking the store --------------------------------------------------------------------------


def test_file_system_storage_gets_the_local_store(settings):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}

    store = artifacts()

    assert isinstance(store, LocalArtifacts)
    assert store.storage is artifact_storage()


def test_s3_storage_gets_the_s3_store_without_asking_the_server(settings):
    settings.STORAGES = {**settings.STORAGES, "default": UNREACHABLE_S3}

    store = artifacts()

    assert isinstance(store, S3Artifacts)
    # Signing a URL is local work: no request goes to the (unreachable) server.
    assert "Signature=" in store.presigned_url("users/1/models/1/v2/a.bin", expires_in=60)


def test_a_storage_of_another_kind_is_a_configuration_error(settings):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}

    with pytest.raises(ImproperlyConfigured, match="InMemoryStorage"):
        artifacts()


def test_the_store_follows_a_replaced_storage_function(monkeypatch, tmp_path):
    elsewhere = FileSystemStorage(location=tmp_path / "elsewhere")
    monkeypatch.setattr(storage_module, "artifact_storage", lambda: elsewhere)

    assert artifacts().storage is elsewhere


# --- local files ----------------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path) -> LocalArtifacts:
    return LocalArtifacts(FileSystemStorage(location=tmp_path / "media"))


def test_local_store_streams_the_file_and_reports_its_size_and_sha256(local):
    content = b"weights " * 10_000

    stored = local.store(key="users/1/models/2/v2/w.bin", source=source(content))

    assert (stored.key, stored.size, stored.sha256) == (
        "users/1/models/2/v2/w.bin",
        len(content),
        hashlib.sha256(content).hexdigest(),
    )
    assert read_all(local.open_stream(stored.key)) == content


def test_local_store_under_a_taken_key_keeps_both_files(local):
    first = local.store(key="users/1/models/2/v2/w.bin", source=source(b"first"))
    second = local.store(key="users/1/models/2/v2/w.bin", source=source(b"second"))

    assert second.key != first.key
    assert read_all(local.open_stream(first.key)) == b"first"
    assert read_all(local.open_stream(second.key)) == b"second"


def test_local_move_renames_and_leaves_no_empty_folder(local):
    staged = local.store(key="users/1/models/2/uploads/abc/w.bin", source=source(b"bytes"))

    moved = local.move(source_key=staged.key, target_key="users/1/models/2/v3/w.bin", size=staged.size)

    assert moved == "users/1/models/2/v3/w.bin"
    assert list(local.keys("users/1")) == [moved]
    assert not local.storage.exists("users/1/models/2/uploads")
    assert read_all(local.open_stream(moved)) == b"bytes"


def test_local_move_replaces_what_is_at_the_target(local):
    local.store(key="users/1/models/2/v3/w.bin", source=source(b"leftover"))
    staged = local.store(key="users/1/models/2/uploads/abc/w.bin", source=source(b"new"))

    local.move(source_key=staged.key, target_key="users/1/models/2/v3/w.bin")

    assert read_all(local.open_stream("users/1/models/2/v3/w.bin")) == b"new"


def test_local_delete_removes_emptied_folders_up_to_users_and_ignores_missing_files(local):
    kept = local.store(key="users/1/models/2/v2/kept.bin", source=source(b"kept"))
    gone = local.store(key="users/1/models/3/v2/gone.bin", source=source(b"gone"))

    local.delete(gone.key)
    local.delete(gone.key)  # already gone: not an error

    assert list(local.keys("users")) == [kept.key]
    assert not local.storage.exists("users/1/models/3")
    local.delete(kept.key)
    assert local.storage.exists("users")
    assert local.storage.listdir("users") == ([], [])


def test_local_keys_cover_nested_folders_of_the_prefix_only(local):
    for key in ("users/1/models/2/v2/a.bin", "users/1/models/2/v3/b.bin", "users/10/models/4/v2/c.bin"):
        local.store(key=key, source=source(b"x"))

    assert sorted(local.keys("users/1")) == ["users/1/models/2/v2/a.bin", "users/1/models/2/v3/b.bin"]
    assert list(local.keys("users/999")) == []


def test_local_keys_of_an_empty_storage_are_none(local):
    assert list(local.keys("users")) == []


def test_local_modified_time_is_the_files(local):
    stored = local.store(key="users/1/models/2/v2/w.bin", source=source(b"x"))

    assert abs(local.modified_at(stored.key) - datetime.now(UTC)) < timedelta(minutes=1)


def test_local_files_have_no_presigned_url(local):
    stored = local.store(key="users/1/models/2/v2/w.bin", source=source(b"x"))

    assert local.presigned_url(stored.key, expires_in=60) is None


def test_local_check_creates_the_folder_and_passes(local):
    local.check()

    assert local.storage.exists("")


def test_local_check_fails_when_the_folder_cannot_hold_files(tmp_path):
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    store = LocalArtifacts(FileSystemStorage(location=not_a_folder / "media"))

    with pytest.raises(StorageUnavailable):
        store.check()


def test_local_failures_become_storage_unavailable(local):
    with pytest.raises(StorageUnavailable, match=r"read the file failed"):
        local.open_stream("users/1/models/2/v2/missing.bin")
    with pytest.raises(StorageUnavailable, match=r"move the file failed"):
        local.move(source_key="users/1/models/2/uploads/x/missing.bin", target_key="users/1/models/2/v2/w.bin")


# --- S3 -------------------------------------------------------------------------------------------


@pytest.fixture
def s3():
    """The run's S3 store, and a prefix of this test's own in its bucket (emptied afterwards)."""
    store = artifacts()
    assert isinstance(store, S3Artifacts)
    prefix = f"users/test-{uuid.uuid4().hex}"
    yield store, prefix
    for key in list(store.keys(prefix)):
        store.delete(key)


@pytest.mark.s3
def test_s3_store_streams_the_file_and_reports_its_size_and_sha256(s3):
    store, prefix = s3
    content = bytes(range(256)) * 40_000  # 10 MB: over one 8 MiB part of the multipart upload

    stored = store.store(key=f"{prefix}/v2/w.bin", source=source(content))

    assert (stored.key, stored.size, stored.sha256) == (
        f"{prefix}/v2/w.bin",
        len(content),
        hashlib.sha256(content).hexdigest(),
    )
    assert read_all(store.open_stream(stored.key)) == content


@pytest.mark.s3
@pytest.mark.parametrize("single_copy_max", [storage_module.S3_SINGLE_COPY_MAX_BYTES, 0], ids=["one-call", "parts"])
def test_s3_move_copies_inside_the_bucket_and_deletes_the_source(s3, monkeypatch, single_copy_max):
    monkeypatch.setattr(storage_module, "S3_SINGLE_COPY_MAX_BYTES", single_copy_max)
    store, prefix = s3
    staged = store.store(key=f"{prefix}/uploads/abc/w.bin", source=source(b"moved bytes"))

    moved = store.move(source_key=staged.key, target_key=f"{prefix}/v3/w.bin", size=staged.size)

    assert moved == f"{prefix}/v3/w.bin"
    assert list(store.keys(prefix)) == [moved]
    assert read_all(store.open_stream(moved)) == b"moved bytes"


@pytest.mark.s3
def test_s3_delete_ignores_missing_objects(s3):
    store, prefix = s3
    stored = store.store(key=f"{prefix}/v2/w.bin", source=source(b"x"))

    store.delete(stored.key)
    store.delete(stored.key)

    assert list(store.keys(prefix)) == []


@pytest.mark.s3
def test_s3_keys_are_one_flat_listing_of_the_prefix_only(s3):
    store, prefix = s3
    keys = [f"{prefix}/models/2/v2/a.bin", f"{prefix}/models/2/v3/b.bin", f"{prefix}/models/3/v2/c.bin"]
    for key in keys:
        store.store(key=key, source=source(b"x"))
    neighbour = store.store(key=f"{prefix}0/models/9/v2/d.bin", source=source(b"x"))
    try:
        assert sorted(store.keys(prefix)) == keys
        assert list(store.keys(f"{prefix}/models/4")) == []
    finally:
        store.delete(neighbour.key)


@pytest.mark.s3
def test_s3_modified_time_is_the_objects(s3):
    store, prefix = s3
    stored = store.store(key=f"{prefix}/v2/w.bin", source=source(b"x"))

    assert abs(store.modified_at(stored.key) - datetime.now(UTC)) < timedelta(minutes=5)


@pytest.mark.s3
def test_s3_presigned_url_downloads_the_object_as_an_attachment_of_opaque_bytes(s3):
    store, prefix = s3
    stored = store.store(key=f"{prefix}/v2/page.html", source=source(b"<script>alert(1)</script>"))

    url = store.presigned_url(stored.key, expires_in=60)

    query = parse_qs(urlsplit(url).query)
    assert query["response-content-disposition"] == ['attachment; filename="page.html"']
    assert query["response-content-type"] == [ARTIFACT_CONTENT_TYPE]
    assert query["X-Amz-Expires"] == ["60"]
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (the run's loopback S3)
        assert response.read() == b"<script>alert(1)</script>"
        assert response.headers["Content-Type"] == ARTIFACT_CONTENT_TYPE


@pytest.mark.s3
def test_s3_check_passes_for_the_bucket_and_fails_for_a_missing_one(s3, settings):
    store, _ = s3
    store.check()

    options = {**settings.STORAGES["default"]["OPTIONS"], "bucket_name": f"no-such-bucket-{uuid.uuid4().hex[:12]}"}
    settings.STORAGES = {**settings.STORAGES, "default": {**settings.STORAGES["default"], "OPTIONS": options}}
    with pytest.raises(StorageUnavailable, match="reach the bucket failed"):
        artifacts().check()


def test_an_unreachable_s3_server_becomes_storage_unavailable(settings):
    settings.STORAGES = {**settings.STORAGES, "default": UNREACHABLE_S3}
    store = artifacts()

    with pytest.raises(StorageUnavailable, match="store the file failed"):
        store.store(key="users/1/models/2/v2/w.bin", source=source(b"x"))
    with pytest.raises(StorageUnavailable, match="read the file failed"):
        store.open_stream("users/1/models/2/v2/w.bin")
    with pytest.raises(StorageUnavailable, match="list the files failed"):
        list(store.keys("users/1"))
    with pytest.raises(StorageUnavailable, match="reach the bucket failed"):
        store.check()
