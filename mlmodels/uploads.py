"""Where an uploaded artifact file goes while its version is recorded, and how it gets to its key.

The services decide what a version is (who may record it, its number under the model's row lock,
its fields); this module decides where the bytes are stored meanwhile, takes the uploads' turns and
makes the moves, and removes what it stored when the recording fails. The services use it as::

    with uploads.next_version_upload(model=model, file=file) as upload, transaction.atomic():
        locked = <the model's row, locked>
        <the file's fields> = upload.place(model=locked, version_number=locked.latest_version + 1)
        <record the version>

The file is stored before the row lock is taken: holding that lock through a long upload would
stall every other writer of the model. Where the uploads of a model can be queued (PostgreSQL's
advisory locks, ``_upload_turn``), the file goes straight to ``v{n}/`` for the number the next
version will most likely get. Otherwise, it goes to a staging key of its own (two uploads racing for
one key could overwrite each other on S3, which has no atomic create). Under the row lock, once the
version number is certain, ``place`` moves a file that is not where that number says: a staged one,
or one whose number a metrics-only version took meanwhile. A move costs a server-side copy on S3,
as long as the upload itself for a large file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import IO

from django.db import DatabaseError, connection

from mlmodels.models import MLModel
from mlmodels.storage import (
    StoredArtifact,
    artifact_delete_quietly,
    artifact_key,
    artifact_move,
    artifact_store,
    staging_key,
)

# The first key of PostgreSQL's two-key advisory locks taken for a model's uploads (the second is the
# model's id): an arbitrary constant, so other users of advisory locks in the database do not collide.
UPLOAD_LOCK_NAMESPACE = 0x6D6C7570  # "mlup"


def file_name(file: IO[bytes]) -> str:
    return getattr(file, "name", "") or "artifact"


class Upload:
    """One file on its way to a version: where it is stored so far (``stored``, None before the
    first ``place`` of a new model's file)."""

    def __init__(self, file: IO[bytes], *, stored: StoredArtifact | None = None):
        self._file = file
        self._file_name = file_name(file)
        self.stored = stored

    def place(self, *, model: MLModel, version_number: int) -> StoredArtifact:
        """Put the file at the key of ``model``'s version ``version_number`` and say where it is.

        Call it once the number is certain (under the model's row lock, or for a model whose row
        nobody else sees yet). A file not stored yet is stored there; one stored elsewhere moves.
        """
        target = artifact_key(
            owner_id=model.owner_id, model_id=model.pk, version_number=version_number, file_name=self._file_name
        )
        if self.stored is None:
            self.stored = artifact_store(key=target, source=self._file)
        elif self.stored.key != target:
            moved = artifact_move(source_key=self.stored.key, target_key=target, size=self.stored.size)
            self.stored = replace(self.stored, key=moved)
        return self.stored


@contextmanager
def _removed_on_failure(upload: Upload) -> Iterator[Upload]:
    """If the block fails (its transaction included), the stored object goes: no row points to it."""
    try:
        yield upload
    except BaseException:
        if upload.stored is not None:
            artifact_delete_quietly(upload.stored.key)
        raise


@contextmanager
def next_version_upload(*, model: MLModel, file: IO[bytes]) -> Iterator[Upload]:
    """Store ``file`` for the next version of the existing ``model``, before the block runs.

    The block records the version, in a transaction of its own that ends inside it, and calls
    ``place`` under the row lock. The model's upload turn (if any) is held until the block is done.
    """
    name = file_name(file)
    with _upload_turn(model.pk) as queued:
        if queued:
            next_number = MLModel.objects.filter(pk=model.pk).values_list("latest_version", flat=True).first()
            key = artifact_key(
                owner_id=model.owner_id, model_id=model.pk, version_number=(next_number or 0) + 1, file_name=name
            )
        else:
            key = staging_key(owner_id=model.owner_id, model_id=model.pk, file_name=name)
        upload = Upload(file, stored=artifact_store(key=key, source=file))
        with _removed_on_failure(upload):
            yield upload


@contextmanager
def new_model_upload(*, file: IO[bytes] | None) -> Iterator[Upload | None]:
    """The file of a model being created (None without one): stored by ``place`` inside the block's
    transaction, once the model has its id. The new row is invisible to other transactions, so
    storing inside this one blocks nobody else, and no upload turn is needed."""
    if file is None:
        yield None
        return
    with _removed_on_failure(Upload(file)) as upload:
        yield upload


@contextmanager
def _upload_turn(model_id: int) -> Iterator[bool]:
    """Queue the uploads of one model behind each other; yields whether they are queued.

    Only uploads write to ``v{n}/`` keys, so while one holds its turn no other writer can touch the
    key it writes. A session-level advisory lock on PostgreSQL, released however the upload ends (or
    with the connection, if the process dies), after its version has committed. So not inside a
    caller's transaction (the admin's): the version would commit after the turn had passed to the
    next upload, which would then aim at the same number. There, and on other databases, nothing is
    queued and uploads are staged.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield False
        return
    keys = [UPLOAD_LOCK_NAMESPACE, model_id & 0x7FFFFFFF]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", keys)
    try:
        yield True
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", keys)
        except DatabaseError:
            # The lock lives as long as the session: end it rather than leave the model's uploads stuck.
            connection.close()


# The same turn for the files of a folder version (mlmodels.folders).
upload_turn = _upload_turn
