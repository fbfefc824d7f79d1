"""Artifact files in the configured storage (local files by default, S3 in production).

``artifacts()`` picks the implementation of ``ArtifactStore`` for the configured storage
(``storages["default"]``) by its class: ``S3Artifacts`` over django-storages' S3 backend,
``LocalArtifacts`` over Django's file system storage. Each has the few operations the registry uses
(store streamed with its sha256, move, delete, open a stream, presigned URL, list keys, modified
time, the /health check); the module-level functions below delegate to it. Every failure of the
storage service becomes ``StorageUnavailable``.

Files are streamed: a reader wrapper computes the sha256 and the size as the storage backend pulls
the bytes, so no file is ever held whole in memory and no second pass over it is needed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from botocore.exceptions import BotoCoreError, ClientError
from django.core import signing
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation, ValidationError
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils.text import get_valid_filename
from storages.backends.s3 import S3Storage

from registry.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

MAX_FILE_NAME_LENGTH = 200


class StorageUnavailable(ServiceUnavailable):
    """The artifact storage could not be reached or refused the operation; nothing was changed."""


# What a storage backend raises when it is down: botocore's errors for S3, OSError for files.
_STORAGE_ERRORS = (BotoCoreError, ClientError, OSError)


@contextmanager
def _storage_errors(action: str) -> Iterator[None]:
    try:
        yield
    except _STORAGE_ERRORS as error:
        logger.warning("Artifact storage failed to %s: %s", action, error)
        raise StorageUnavailable(f"Artifact storage is unavailable ({action} failed); nothing was changed.") from error


def clean_file_name(name: str) -> str:
    """The base name of an uploaded file, made safe to use as the last part of a storage key."""
    base = os.path.basename((name or "").replace("\\", "/"))
    try:
        cleaned = get_valid_filename(base)
    except SuspiciousFileOperation:
        raise ValidationError({"file": f"{name!r} is not a usable file name."}, code="invalid_file_name") from None
    if len(cleaned) > MAX_FILE_NAME_LENGTH:
        stem, ext = os.path.splitext(cleaned)
        cleaned = stem[: MAX_FILE_NAME_LENGTH - len(ext)] + ext
    return cleaned


def artifact_key(*, owner_id: int, model_id: int, version_number: int, file_name: str) -> str:
    return f"users/{owner_id}/models/{model_id}/v{version_number}/{clean_file_name(file_name)}"


def staging_key(*, owner_id: int, model_id: int, file_name: str) -> str:
    """A key no other upload can have: where a file waits until its version number is known."""
    return f"users/{owner_id}/models/{model_id}/uploads/{uuid.uuid4().hex}/{clean_file_name(file_name)}"


@dataclass(frozen=True)
class StoredArtifact:
    key: str
    size: int
    sha256: str


class _HashingReader:
    """A forward-only reader that hashes and counts what passes through it.

    It reports itself as not seekable, so storage backends read it once from start to end (the S3
    transfer manager then buffers one part at a time) and the digest covers exactly what was stored.
    """

    def __init__(self, source: IO[bytes]):
        self._source = source
        self._digest = hashlib.sha256()
        self.size = 0
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        chunk = self._source.read(size)
        if isinstance(chunk, str):
            chunk = chunk.encode()
        self._digest.update(chunk)
        self.size += len(chunk)
        return chunk

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


# What every artifact download says it is, whatever the file's name: bytes to save, not something a
# browser renders or runs (see mlmodels.api._file_response).
ARTIFACT_CONTENT_TYPE = "application/octet-stream"

# What a copy or a hashing read moves at a time.
_COPY_CHUNK = 1024 * 1024

# The largest object S3 copies in one CopyObject call; larger ones need a multipart copy.
S3_SINGLE_COPY_MAX_BYTES = 5 * 1024**3
# The checksum a CopyObject asks S3 to compute for the copy (its whole bytes). Without it, the copy of
# an object uploaded in parts may carry the source's per-part checksum as if it were the whole
# object's (moto's server does), and botocore's response checksum check then fails every read of it.
S3_COPY_CHECKSUM = "CRC32"


class ArtifactStore:
    """The operations the registry makes on its artifact storage, over one Django storage backend.

    What both kinds do the same way (streaming a file in through the backend's ``save``, reading
    an object's date) is here; the rest is in ``S3Artifacts`` and ``LocalArtifacts``.
    """

    def __init__(self, storage: Storage):
        self.storage = storage

    def store(self, *, key: str, source: IO[bytes]) -> StoredArtifact:
        """Stream ``source`` to storage under ``key`` (or a free variant of it if the key is taken)."""
        if hasattr(source, "seek"):
            source.seek(0)
        reader = _HashingReader(source)
        with _storage_errors("store the file"):
            stored_key = self.storage.save(key, File(reader, name=key))
        return StoredArtifact(key=stored_key, size=reader.size, sha256=reader.sha256)

    def move(self, *, source_key: str, target_key: str, size: int | None = None) -> str:
        """Move a stored object to exactly ``target_key`` (replacing anything there) and return it,
        inside the storage: the bytes never travel through the app again."""
        raise NotImplementedError

    def copy(self, *, source_key: str, target_key: str, size: int | None = None) -> StoredArtifact:
        """Copy a stored object to exactly ``target_key`` (replacing anything there) inside the
        storage, and say what was stored: its size and sha256, read from the copy as a stream."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Remove a stored object; a missing one is not an error (the goal is its absence)."""
        with _storage_errors("delete the file"):
            self.storage.delete(key)

    def open_stream(self, key: str) -> IO[bytes]:
        """A forward-only stream of a stored object, read in chunks as the response is sent."""
        raise NotImplementedError

    def presigned_url(self, key: str, *, expires_in: int) -> str | None:
        """A URL the storage itself serves the object at, or None when it serves nothing itself."""
        return None

    def keys(self, prefix: str) -> Iterator[str]:
        """Every stored object under ``prefix``."""
        raise NotImplementedError

    def sized_keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        """Every stored object under ``prefix`` with its size."""
        raise NotImplementedError

    def _hashed(self, key: str) -> StoredArtifact:
        """``key``'s size and sha256, read through once in chunks (never whole in memory)."""
        stream = self.open_stream(key)
        reader = _HashingReader(stream)
        try:
            with _storage_errors("read the file"):
                while reader.read(_COPY_CHUNK):
                    pass
        finally:
            stream.close()
        return StoredArtifact(key=key, size=reader.size, sha256=reader.sha256)

    def modified_at(self, key: str) -> datetime:
        with _storage_errors("read the file's date"):
            return self.storage.get_modified_time(key)

    def check(self) -> None:
        """Raise unless the storage answers and takes files (the /health check)."""
        raise NotImplementedError


class S3Artifacts(ArtifactStore):
    """Artifacts in an S3 bucket, through django-storages' ``S3Storage`` and its boto3 bucket."""

    storage: S3Storage

    def move(self, *, source_key: str, target_key: str, size: int | None = None) -> str:
        """A server-side copy, then the delete of the source. One CopyObject call up to S3's 5 GiB
        limit: boto3's managed copy splits anything over 8 MB into part copies, many times slower
        (README, "Where the speed comes from")."""
        with _storage_errors("move the file"):
            bucket = self.storage.bucket
            source = {"Bucket": bucket.name, "Key": source_key}
            if size is not None and size <= S3_SINGLE_COPY_MAX_BYTES:
                bucket.meta.client.copy_object(
                    CopySource=source, Bucket=bucket.name, Key=target_key, ChecksumAlgorithm=S3_COPY_CHECKSUM
                )
            else:
                bucket.meta.client.copy(source, bucket.name, target_key)
            bucket.Object(source_key).delete()
        return target_key

    def copy(self, *, source_key: str, target_key: str, size: int | None = None) -> StoredArtifact:
        """A server-side copy (CopyObject up to 5 GiB, a managed part copy beyond), then one read of
        the copy for its sha256: the bytes never pass through the app's memory whole."""
        with _storage_errors("copy the file"):
            bucket = self.storage.bucket
            source = {"Bucket": bucket.name, "Key": source_key}
            if size is not None and size <= S3_SINGLE_COPY_MAX_BYTES:
                bucket.meta.client.copy_object(
                    CopySource=source, Bucket=bucket.name, Key=target_key, ChecksumAlgorithm=S3_COPY_CHECKSUM
                )
            else:
                bucket.meta.client.copy(source, bucket.name, target_key)
        return self._hashed(target_key)

    def open_stream(self, key: str) -> IO[bytes]:
        # Straight from the GET response body: django-storages' file object would first download
        # the whole object into memory.
        with _storage_errors("read the file"):
            return self.storage.bucket.Object(key).get()["Body"]

    def presigned_url(self, key: str, *, expires_in: int) -> str:
        """A presigned GET URL that downloads the object as an attachment of opaque bytes."""
        file_name = key.rsplit("/", 1)[-1]
        with _storage_errors("sign a download URL"):
            return self.storage.url(
                key,
                parameters={
                    "ResponseContentDisposition": f'attachment; filename="{file_name}"',
                    "ResponseContentType": ARTIFACT_CONTENT_TYPE,
                },
                expire=expires_in,
            )

    def keys(self, prefix: str) -> Iterator[str]:
        # One flat listing (a request per 1,000 keys), not a listing per "folder".
        with _storage_errors("list the files"):
            pages = self.storage.bucket.meta.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.storage.bucket_name, Prefix=f"{prefix}/"
            )
            for page in pages:
                for entry in page.get("Contents", ()):
                    if not entry["Key"].endswith("/"):  # a folder marker some tools write
                        yield entry["Key"]

    def sized_keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        with _storage_errors("list the files"):
            pages = self.storage.bucket.meta.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.storage.bucket_name, Prefix=f"{prefix}/"
            )
            for page in pages:
                for entry in page.get("Contents", ()):
                    if not entry["Key"].endswith("/"):
                        yield entry["Key"], entry["Size"]

    def check(self) -> None:
        with _storage_errors("reach the bucket"):
            self.storage.bucket.meta.client.head_bucket(Bucket=self.storage.bucket_name)


class LocalArtifacts(ArtifactStore):
    """Artifacts as files under the storage's folder (``MEDIA_ROOT``), through Django's
    ``FileSystemStorage``. No folder is left empty by a delete or a move."""

    storage: FileSystemStorage

    def move(self, *, source_key: str, target_key: str, size: int | None = None) -> str:
        """A rename."""
        with _storage_errors("move the file"):
            target = self.storage.path(target_key)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(self.storage.path(source_key), target)
            self._remove_empty_folders(source_key)
        return target_key

    def copy(self, *, source_key: str, target_key: str, size: int | None = None) -> StoredArtifact:
        """A streamed file copy, hashed on the way (one pass, in chunks)."""
        with _storage_errors("copy the file"):
            target = self.storage.path(target_key)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with self.storage.open(source_key, "rb") as source, open(target, "wb") as copy:
                reader = _HashingReader(source)
                shutil.copyfileobj(reader, copy, length=_COPY_CHUNK)
        return StoredArtifact(key=target_key, size=reader.size, sha256=reader.sha256)

    def delete(self, key: str) -> None:
        super().delete(key)
        self._remove_empty_folders(key)

    def _remove_empty_folders(self, key: str) -> None:
        """The folders a removed or moved file leaves empty (a staged upload's ``uploads/<uuid>/``,
        a failed version's ``v{n}/``), up to the storage's ``users/`` folder."""
        folder = os.path.dirname(key)
        while folder.count("/") > 0:  # "users/1/…", never "users" itself
            try:
                os.rmdir(self.storage.path(folder))
            except OSError:  # not empty (other files or uploads there) or already gone
                return
            folder = os.path.dirname(folder)

    def open_stream(self, key: str) -> IO[bytes]:
        with _storage_errors("read the file"):
            return self.storage.open(key, "rb")

    def keys(self, prefix: str) -> Iterator[str]:
        """A walk of the folders under ``prefix``."""
        with _storage_errors("list the files"):
            try:
                folders, files = self.storage.listdir(prefix)
            except FileNotFoundError:  # before the first upload
                return
        for name in files:
            yield f"{prefix}/{name}"
        for folder in folders:
            yield from self.keys(f"{prefix}/{folder}")

    def sized_keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        for key in self.keys(prefix):
            with _storage_errors("read the file's size"):
                yield key, self.storage.size(key)

    def check(self) -> None:
        with _storage_errors("write to the folder"):
            location = Path(self.storage.location)
            location.mkdir(parents=True, exist_ok=True)
            if not os.access(location, os.W_OK | os.X_OK):
                raise PermissionError(f"{location} is not writable")


def artifact_storage() -> Storage:
    return storages["default"]


def artifacts() -> ArtifactStore:
    """The artifact store over the configured storage, chosen by the storage's class.

    Looked up on every call (``storages`` keeps the backend, so this costs one small object): a
    test that overrides ``STORAGES`` gets the store for its storage.
    """
    storage = artifact_storage()
    if isinstance(storage, S3Storage):
        return S3Artifacts(storage)
    if isinstance(storage, FileSystemStorage):
        return LocalArtifacts(storage)
    raise ImproperlyConfigured(
        f"Artifacts need STORAGES['default'] to be django-storages' S3Storage or Django's FileSystemStorage, "
        f"not {type(storage).__name__}."
    )


# The operations, as the rest of the registry calls them.


def artifact_store(*, key: str, source: IO[bytes]) -> StoredArtifact:
    """Stream ``source`` to storage under ``key`` (or a free variant of it if the key is taken)."""
    return artifacts().store(key=key, source=source)


def artifact_move(*, source_key: str, target_key: str, size: int | None = None) -> str:
    """Move a stored object to exactly ``target_key`` (replacing anything there) and return it."""
    return artifacts().move(source_key=source_key, target_key=target_key, size=size)


def artifact_copy(*, source_key: str, target_key: str, size: int | None = None) -> StoredArtifact:
    """Copy a stored object to exactly ``target_key`` inside the storage; returns its size and sha256."""
    return artifacts().copy(source_key=source_key, target_key=target_key, size=size)


def artifact_sized_keys(prefix: str) -> Iterator[tuple[str, int]]:
    """Every stored object under ``prefix`` (no trailing slash) with its size."""
    return artifacts().sized_keys(prefix)


def artifact_delete(key: str | None) -> None:
    """Remove a stored object; a missing one is not an error (the goal is its absence)."""
    if key:
        artifacts().delete(key)


def artifact_delete_quietly(key: str | None) -> None:
    """Clean-up after a failure: never let a failed delete hide the error being handled."""
    try:
        artifact_delete(key)
    except Exception:
        logger.exception("Could not remove stored object %s; storage_audit will list it", key)


def artifact_keys(prefix: str = "users") -> Iterator[str]:
    """Every stored object under ``prefix``."""
    return artifacts().keys(prefix)


def artifact_modified_at(key: str) -> datetime:
    return artifacts().modified_at(key)


def artifact_open_stream(key: str) -> IO[bytes]:
    """A forward-only stream of a stored object, read in chunks as the response is sent."""
    return artifacts().open_stream(key)


def artifact_presigned_url(key: str, *, expires_in: int) -> str | None:
    """An S3 presigned GET URL that downloads the object as an attachment of opaque bytes; None for
    local files (the API then signs a URL it serves itself)."""
    return artifacts().presigned_url(key, expires_in=expires_in)


def check_storage() -> None:
    """The /health check of the artifact storage (registered by the app): raises when it does not answer."""
    artifacts().check()


_DOWNLOAD_SALT = "mlmodels.artifact-download"


def signed_download_token(key: str, *, user_id: int) -> str:
    """A tamper-proof token naming ``key`` and the user it was issued to (the link dies with their
    account); it carries its signing time, checked on use."""
    return signing.dumps({"key": key, "user": user_id}, salt=_DOWNLOAD_SALT, compress=True)


def key_from_download_token(token: str, *, max_age: int) -> tuple[str, int]:
    """The key a token names and the id of the user it was issued to; raises ``signing.BadSignature``
    (or its ``SignatureExpired``), also for a token that names no user."""
    payload = signing.loads(token, salt=_DOWNLOAD_SALT, max_age=max_age)
    if not (isinstance(payload, dict) and isinstance(payload.get("key"), str) and isinstance(payload.get("user"), int)):
        raise signing.BadSignature("The token names no file and user.")
    return payload["key"], payload["user"]
