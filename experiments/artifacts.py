"""The one write path for the artifact files of runs and logged models (what MLflow's artifact proxy
``/api/2.0/mlflow-artifacts/artifacts/…`` stores), and how they are read back.

A file is an ``ArtifactFile`` row (its path, size and sha256) and one stored object at
``{owner's artifact_prefix}/{path}`` (``Run.artifact_prefix``, ``LoggedModel.artifact_prefix``);
folders are derived from the paths. The rules:

- paths are relative POSIX paths (``mlmodels.folders.validate_file_path``): no ``..`` or ``.``
  segment, no absolute path, backslash, control character, ``%`` (an encoding left after the
  server's one decode), ``//`` or trailing ``/``; the key is built from the owner's prefix and that
  path only, so nothing escapes into another run's files;
- a body is streamed to storage in chunks (never read whole), hashed on the way, at most
  ``MAX_UPLOAD_BYTES``, and must be as long as its Content-Length said: a short body (a client that
  went away) stores nothing;
- it goes first to a staging key of its own (``…/uploads/{uuid}``, beside the artifacts folder,
  never inside it), then, under the owner's row lock and in the transaction that writes its row, is
  moved to its key, replacing the bytes of an earlier upload of the same path (MLflow allows that).
  Any failure before the commit removes the staged object and leaves the earlier file as it was; an
  overwrite first copies the earlier bytes aside, puts them back if the commit fails, and drops the
  copy once it succeeds;
- a path cannot be both a file and a folder (``a`` and ``a/b``);
- every signed-in user reads; the run's or logged model's ``can_change`` writes and deletes; a
  deleted run or logged model refuses writes (MLflow's "must be in the 'active' state");
- deleting rows (a delete here, or a cascade: an experiment, a run, a user) removes their stored
  objects once the delete commits (``remove_file_after_commit``, connected by the app).

Refusals: ValidationError (bad path or state, MLflow's INVALID_PARAMETER_VALUE), PermissionDenied,
``ArtifactTooLarge`` (413), ``BodyIncomplete``, LookupError (no such file), StorageUnavailable.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet

from experiments import selectors
from experiments.models import ArtifactFile, LifecycleStage, LoggedModel, Run
from mlmodels.folders import MAX_KEY_BYTES, validate_file_path
from mlmodels.storage import (
    StoredArtifact,
    artifact_copy,
    artifact_delete_quietly,
    artifact_move,
    artifact_open_stream,
    artifact_store,
)
from registry.errors import TooLarge

logger = logging.getLogger(__name__)

# What one read of the request body asks for.
BODY_CHUNK = 1024 * 1024

Owner = Run | LoggedModel


class ArtifactTooLarge(TooLarge):
    """The body is over MAX_UPLOAD_BYTES (announced, or counted while it streamed)."""

    def __init__(self, size: int | None = None):
        said = f"{size} bytes" if size is not None else "more bytes than allowed"
        super().__init__(f"Artifact too large: {said}; the limit is {settings.MAX_UPLOAD_BYTES} bytes.", field="file")


class BodyIncomplete(Exception):
    """The request body ended before its Content-Length, or could not be read: nothing was stored."""


# --- paths and owners -----------------------------------------------------------------------------


def check_path(path: str) -> str:
    """``path`` as a file of an artifact folder names it, or a ValidationError (INVALID_PARAMETER_VALUE)."""
    return validate_file_path(path)


def _kind(owner: Owner) -> str:
    return "run" if isinstance(owner, Run) else "logged model"


def _owner_id(owner: Owner) -> str:
    return owner.run_id if isinstance(owner, Run) else owner.model_id


def files_of(owner: Owner) -> QuerySet[ArtifactFile]:
    if isinstance(owner, Run):
        return ArtifactFile.objects.filter(run=owner)
    return ArtifactFile.objects.filter(logged_model=owner)


def _ensure_can_change(owner: Owner, actor) -> None:
    if not owner.can_change(actor):
        raise PermissionDenied(
            f"Only the {_kind(owner)}'s creator, the experiment's owner or a superuser can change its artifacts."
        )


def _ensure_active(owner: Owner) -> None:
    if owner.lifecycle_stage != LifecycleStage.ACTIVE:
        raise ValidationError(
            f"The {_kind(owner)} {_owner_id(owner)} must be in the 'active' state. "
            f"Current state is {owner.lifecycle_stage}.",
            code="not_active",
        )


def _locked(owner: Owner) -> Owner:
    """The owner's row, locked until the transaction ends (writes to one folder queue up, and see a
    delete of the run that came first)."""
    locked = type(owner).objects.select_for_update().only("pk", "lifecycle_stage").get(pk=owner.pk)
    _ensure_active(locked)
    return locked


def _check_no_clash(owner: Owner, path: str) -> None:
    """A path is a file or a folder, never both: ``a/b`` cannot be stored while ``a`` is a file, nor
    ``a`` while files live under ``a/``."""
    parts = path.split("/")
    ancestors = ["/".join(parts[:depth]) for depth in range(1, len(parts))]
    files = files_of(owner)
    if ancestors and (clash := files.filter(path__in=ancestors).values_list("path", flat=True).first()):
        raise ValidationError(f"{clash!r} is a file, so {path!r} cannot be stored under it.", code="file_and_folder")
    if files.filter(path__startswith=f"{path}/").exists():
        raise ValidationError(f"{path!r} is a folder of files, so it cannot be a file too.", code="file_and_folder")


def _staging_key(owner: Owner) -> str:
    """Beside the artifacts folder (``users/{o}/runs/{id}/uploads/{uuid}``), so that nothing listing
    or copying the folder sees a file still on its way."""
    root = owner.artifact_prefix.rsplit("/", 1)[0]
    return f"{root}/uploads/{uuid.uuid4().hex}"


# --- writing --------------------------------------------------------------------------------------


class _Body:
    """The request body as a forward-only reader for the storage, counted against the limit.

    ``read(n)`` gives ``n`` bytes unless the body ends first, as a buffered file does: S3's transfer
    manager takes a short read for the end of the file. The storage backends always ask for a size
    (a chunk, a part); a read of "everything" gets BODY_CHUNK, never the whole body at once.
    """

    def __init__(self, source: IO[bytes], *, limit: int):
        self._source = source
        self._limit = limit
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = BODY_CHUNK
        chunk = self._read(size)
        if 0 < len(chunk) < size:  # a short read before the end: gather the rest (rare: inputs buffer)
            pieces = [chunk]
            while (wanted := size - sum(map(len, pieces))) > 0 and (piece := self._read(wanted)):
                pieces.append(piece)
            chunk = b"".join(pieces)
        self.size += len(chunk)
        if self.size > self._limit:
            raise ArtifactTooLarge()
        return chunk

    def _read(self, size: int) -> bytes:
        try:
            return self._source.read(size)
        except OSError as error:  # the client's connection was reset: not the storage's failure
            raise BodyIncomplete(f"The request body could not be read ({error}); nothing was stored.") from error


def file_store(*, owner: Owner, actor, path: str, body: IO[bytes], length: int) -> ArtifactFile:
    """Stream ``length`` bytes of ``body`` to ``owner``'s artifact ``path``, creating its row or
    replacing the file an earlier upload stored there; returns the row."""
    _ensure_can_change(owner, actor)
    _ensure_active(owner)
    check_path(path)
    if length > settings.MAX_UPLOAD_BYTES:
        raise ArtifactTooLarge(length)
    key = f"{owner.artifact_prefix}/{path}"
    if len(key.encode()) > MAX_KEY_BYTES:
        raise ValidationError(f"The artifact path {path[:120]!r} is too long to store.", code="path_too_long")
    _check_no_clash(owner, path)  # before the bytes travel; again under the lock

    staging = _staging_key(owner)
    stored: StoredArtifact | None = None
    created = moved = False
    kept: str | None = None  # a copy of the bytes an overwrite replaces, until its commit
    try:
        stored = artifact_store(key=staging, source=_Body(body, limit=min(length, settings.MAX_UPLOAD_BYTES)))
        if stored.size != length:
            raise BodyIncomplete(
                f"The request body ended after {stored.size} of its {length} bytes; nothing was stored."
            )
        with transaction.atomic():
            locked = _locked(owner)
            _check_no_clash(locked, path)
            row = files_of(locked).select_for_update().filter(path=path).first()
            created = row is None
            if created:
                row = ArtifactFile(path=path, **{"run" if isinstance(owner, Run) else "logged_model": owner})
            else:
                # A failed commit would roll the row back to these bytes: keep a copy to put back.
                kept = _staging_key(owner)
                artifact_copy(source_key=key, target_key=kept, size=row.size)
                transaction.on_commit(lambda: artifact_delete_quietly(kept), robust=True)
            row.key, row.size, row.sha256 = key, stored.size, stored.sha256
            row.save()
            # The last step before the commit: a failed move rolls the row back, the earlier bytes intact.
            artifact_move(source_key=stored.key, target_key=key, size=stored.size)
            moved = True
    except BaseException:
        # A write that failed part-way may have left what it wrote (a local file exists before its bytes).
        artifact_delete_quietly(stored.key if stored is not None else staging)
        if moved:
            # Only a failed commit gets here: the new bytes are at the key, the row is as it was.
            if created:
                artifact_delete_quietly(key)
            else:
                _put_back(kept, key)
        elif kept is not None:
            artifact_delete_quietly(kept)
        raise
    return row


def _put_back(kept: str, key: str) -> None:
    """The bytes an overwrite replaced, back at ``key`` after its commit failed (the row names them)."""
    try:
        artifact_move(source_key=kept, target_key=key)
    except Exception:
        logger.exception("The commit of %s failed and its earlier bytes could not be put back from %s", key, kept)


def files_delete(*, owner: Owner, actor, path: str = "") -> int:
    """Delete ``owner``'s artifact file ``path``, or every file under the folder ``path`` (all of
    them for ""); how many rows went. Nothing there is no error (MLflow's delete is idempotent). The
    stored objects go once the delete commits."""
    _ensure_can_change(owner, actor)
    _ensure_active(owner)
    if path:
        check_path(path)
    with transaction.atomic():
        locked = _locked(owner)
        rows = files_of(locked)
        if path:
            rows = rows.filter(Q(path=path) | Q(path__startswith=f"{path}/"))
        deleted, _ = rows.delete()
    return deleted


# --- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One item of a folder's listing: a file (with its size) or a folder."""

    name: str
    is_dir: bool
    size: int | None = None


def list_folder(files: QuerySet, folder: str = "") -> list[Entry]:
    """One level of the folder ``folder`` ("" for the root) of ``files`` (rows with ``path`` and
    ``size``: ArtifactFile, or mlmodels' VersionFile): its files and the folders derived from deeper
    paths, by name. A path naming a file, or nothing, lists as empty (MLflow's answers)."""
    if folder:
        check_path(folder)
        files = files.filter(path__startswith=f"{folder}/")
    cut = len(folder) + 1 if folder else 0
    found: dict[str, Entry] = {}
    for path, size in files.values_list("path", "size").iterator(chunk_size=2000):
        head, sep, _ = path[cut:].partition("/")
        if sep:
            found.setdefault(head, Entry(head, True))
        else:
            found[head] = Entry(head, False, size)
    return [found[name] for name in sorted(found)]


def file_get(*, owner: Owner, path: str) -> ArtifactFile:
    """The row of ``owner``'s artifact file ``path``; LookupError when there is none."""
    check_path(path)
    row = files_of(owner).filter(path=path).first()
    if row is None:
        raise LookupError(f"No such artifact: {path!r}")
    return row


def is_folder(files: QuerySet, path: str) -> bool:
    return files.filter(path__startswith=f"{path}/").exists()


def file_open(row) -> IO[bytes]:
    """A forward-only stream of a file's stored bytes (close it)."""
    return artifact_open_stream(row.key)


# --- clean-up and the storage audit ------------------------------------------------------------------


def _remove_if_unreferenced(key: str) -> None:
    # The same path uploaded again after the delete has a row naming the same key: keep its object.
    if not ArtifactFile.objects.filter(key=key).exists():
        artifact_delete_quietly(key)


def remove_file_after_commit(sender, instance: ArtifactFile, **kwargs) -> None:
    """post_delete of ArtifactFile: its stored object goes once the delete commits (a rolled-back
    delete keeps it), whatever deleted the row (a delete here, an experiment's, run's or user's cascade)."""
    key = instance.key
    transaction.on_commit(lambda: _remove_if_unreferenced(key), robust=True)


def referenced_keys(prefix: str) -> Iterable[str]:
    """The stored keys under ``prefix`` the rows name (registered with mlmodels' storage audit)."""
    return ArtifactFile.objects.filter(key__startswith=f"{prefix}/").values_list("key", flat=True).iterator()


def owner_get(*, user, experiment_id: int, run_id: str | None = None, model_id: str | None = None) -> Owner | None:
    """The run ``run_id`` (or the logged model ``model_id``) of the experiment ``experiment_id``
    that ``user`` may read, deleted or not, with its experiment; None otherwise (another
    experiment's too: a path names its owner's own experiment)."""
    if not getattr(user, "is_authenticated", False):
        return None
    if run_id is not None:
        owner = selectors.run_get(run_id, user=user)
    else:
        owner = LoggedModel.objects.select_related("experiment").filter(model_id=model_id).first()
    if owner is None or owner.experiment_id != experiment_id:
        return None
    return owner
