"""Artifact files in the configured storage (local files by default, S3 in production).

Files are streamed: a reader wrapper computes the sha256 and the size as the storage backend pulls
the bytes, so no file is ever held whole in memory and no second pass over it is needed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from botocore.exceptions import BotoCoreError, ClientError
from django.core import signing
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.utils.text import get_valid_filename

logger = logging.getLogger(__name__)

MAX_FILE_NAME_LENGTH = 200


class StorageUnavailable(Exception):
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


def artifact_storage() -> Storage:
    return storages["default"]


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


def artifact_store(*, key: str, source: IO[bytes]) -> StoredArtifact:
    """Stream ``source`` to storage under ``key`` (or a free variant of it if the key is taken)."""
    if hasattr(source, "seek"):
        source.seek(0)
    reader = _HashingReader(source)
    with _storage_errors("store the file"):
        stored_key = artifact_storage().save(key, File(reader, name=key))
    return StoredArtifact(key=stored_key, size=reader.size, sha256=reader.sha256)


def staging_key(*, owner_id: int, model_id: int, file_name: str) -> str:
    """A key no other upload can have: where a file waits until its version number is known."""
    return f"users/{owner_id}/models/{model_id}/uploads/{uuid.uuid4().hex}/{clean_file_name(file_name)}"


# The largest object S3 copies in one CopyObject call; larger ones need a multipart copy.
S3_SINGLE_COPY_MAX_BYTES = 5 * 1024**3


def artifact_move(*, source_key: str, target_key: str, size: int | None = None) -> str:
    """Move a stored object to exactly ``target_key`` (replacing anything there) and return it.

    Inside the storage: a rename for local files, a server-side copy for S3, so the bytes never
    travel through the app again. One CopyObject call up to S3's 5 GiB limit: boto3's managed copy
    splits anything over 8 MB into part copies, which took 21 s for 512 MiB where one call took 3 s.
    """
    storage = artifact_storage()
    bucket = getattr(storage, "bucket", None)
    with _storage_errors("move the file"):
        if bucket is not None:
            source = {"Bucket": bucket.name, "Key": source_key}
            if size is not None and size <= S3_SINGLE_COPY_MAX_BYTES:
                bucket.meta.client.copy_object(CopySource=source, Bucket=bucket.name, Key=target_key)
            else:
                bucket.meta.client.copy(source, bucket.name, target_key)
            bucket.Object(source_key).delete()
        else:
            target = storage.path(target_key)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(storage.path(source_key), target)
            _remove_empty_folders(storage, source_key)
    return target_key


def _remove_empty_folders(storage: Storage, key: str) -> None:
    """Local files only: the folders a removed or moved file leaves empty (a staged upload's
    ``uploads/<uuid>/``, a failed version's ``v{n}/``), up to the storage's ``users/`` folder."""
    folder = os.path.dirname(key)
    while folder.count("/") > 0:  # "users/1/…", never "users" itself
        try:
            os.rmdir(storage.path(folder))
        except OSError:  # not empty (other files or uploads there) or already gone
            return
        folder = os.path.dirname(folder)


def artifact_delete(key: str | None) -> None:
    """Remove a stored object; a missing one is not an error (the goal is its absence)."""
    if key:
        storage = artifact_storage()
        storage.delete(key)
        if getattr(storage, "bucket", None) is None:
            _remove_empty_folders(storage, key)


def artifact_delete_quietly(key: str | None) -> None:
    """Clean-up after a failure: never let a failed delete hide the error being handled."""
    try:
        artifact_delete(key)
    except Exception:
        logger.exception("Could not remove stored object %s; storage_audit will list it", key)


def artifact_keys(prefix: str = "users") -> Iterator[str]:
    """Every stored object under ``prefix`` (a walk of the storage's folders)."""
    storage = artifact_storage()
    with _storage_errors("list the files"):
        try:
            folders, files = storage.listdir(prefix)
        except FileNotFoundError:  # local storage before the first upload
            return
    for name in files:
        yield f"{prefix}/{name}"
    for folder in folders:
        yield from artifact_keys(f"{prefix}/{folder}")


def artifact_modified_at(key: str):
    with _storage_errors("read the file's date"):
        return artifact_storage().get_modified_time(key)


def artifact_open_stream(key: str) -> IO[bytes]:
    """A forward-only stream of a stored object, read in chunks as the response is sent.

    S3 objects are streamed straight from the GET response body: django-storages' file object
    would first download the whole object into memory.
    """
    storage = artifact_storage()
    bucket = getattr(storage, "bucket", None)
    with _storage_errors("read the file"):
        if bucket is not None:
            return bucket.Object(key).get()["Body"]
        return storage.open(key, "rb")


# What every artifact download says it is, whatever the file's name: bytes to save, not something a
# browser renders or runs (see mlmodels.api._file_response).
ARTIFACT_CONTENT_TYPE = "application/octet-stream"


def artifact_presigned_url(key: str, *, expires_in: int) -> str | None:
    """An S3 presigned GET URL that downloads the object as an attachment of opaque bytes; None for
    local files."""
    storage = artifact_storage()
    if getattr(storage, "bucket", None) is None:
        return None
    file_name = key.rsplit("/", 1)[-1]
    return storage.url(
        key,
        parameters={
            "ResponseContentDisposition": f'attachment; filename="{file_name}"',
            "ResponseContentType": ARTIFACT_CONTENT_TYPE,
        },
        expire=expires_in,
    )


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
