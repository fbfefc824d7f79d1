"""The one write path for models, versions, lifecycle stages and artifact files.

The API, the pages and the admin all call these functions; none of them changes a model any other
way. Every function takes keyword arguments only, checks that the actor may make the change, runs in
one transaction, and raises ``ValidationError`` (bad input, refused move) or ``PermissionDenied``.
Each publishes its domain events (``mlmodels.events``) once that transaction commits; a refused or
rolled-back change publishes none.

Version numbers come from ``MLModel.latest_version``, incremented while the model's row is locked
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite runs every transaction with an immediate write lock),
so concurrent writers queue instead of colliding.
"""

from __future__ import annotations

import contextlib
import copy
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.roles import can_approve
from mlmodels import approvals, changes, folders, references, selectors, uploads
from mlmodels.events import (
    alias_was_deleted,
    alias_was_set,
    artifact_scanned,
    lifecycle_changed,
    model_created,
    model_deleted,
    model_updated,
    tag_was_deleted,
    tag_was_set,
    version_created,
    version_deleted,
    version_updated,
)
from mlmodels.models import (
    MAX_FILES_PER_VERSION,
    METRIC_FIELDS,
    ApprovalAction,
    ApprovalRequest,
    MLModel,
    ModelVersion,
    ProtectedAlias,
    ScanStatus,
    Stage,
    VersionFile,
)
from mlmodels.scans import ScanReport, scan_artifact
from mlmodels.storage import (
    StoredArtifact,
    artifact_copy,
    artifact_delete,
    artifact_keys,
    artifact_modified_at,
    artifact_open_stream,
    artifact_sized_keys,
    artifact_store,
)
from registry.errors import TooLarge
from registry.events import publish
from registry.integrity import integrity_as_validation
from registry.validators import MAX_TAGS, check_free_text, name_key, normalize_name, validate_alias, validate_tag

# A scan copies an artifact from storage into memory up to this size, into a temporary file beyond.
SCAN_IN_MEMORY_BYTES = 64 * 1024 * 1024
# A change to any of these records a new version; the rest is descriptive metadata.
VERSIONED_FIELDS = (*METRIC_FIELDS, "hyperparameters", "file", "file_size", "file_sha256", "file_count")
EDITABLE_FIELDS = frozenset(
    {"name", "description", "framework", "task_type", "experiment", *METRIC_FIELDS, "hyperparameters"}
)
# A version's artifact: one file (file, file_size, file_sha256) or a folder (file_count VersionFile rows).
FILE_FIELDS = ("file", "file_size", "file_sha256", "file_count")
SNAPSHOT_FIELDS = (*METRIC_FIELDS, "hyperparameters", *FILE_FIELDS, "experiment")
# The fields the non-metric constraints of MLModel read (unique name per owner, valid stage, file key).
UNIQUE_OR_CHECKED_FIELDS = frozenset({"name", "owner", "lifecycle", "file"})
SNAPSHOT_ATTNAMES = tuple(MLModel._meta.get_field(field).attname for field in SNAPSHOT_FIELDS)


def _ensure_can_change(model: MLModel, actor) -> None:
    if not model.can_change(actor):
        raise PermissionDenied("Only the model's owner or a superuser can change this model.")


def _ensure_can_link(experiment, actor, *, linked_id: int | None = None) -> None:
    """A model may only name an experiment its actor may change: linking one adds the model to
    that experiment's list of models, which is its owner's to say. The link it already has
    (``linked_id``) may stay."""
    if experiment is not None and experiment.pk != linked_id and not experiment.can_change(actor):
        raise ValidationError(
            {"experiment": "You can only link a model to an experiment you own."}, code="experiment_not_yours"
        )


def name_taken_error(name: str, *, model: MLModel | None = None) -> str | None:
    """Why ``name`` cannot be ``model``'s (or a new model's): another model has it, in any letter case
    or Unicode form. Names are unique across the registry, so the message names the holder's owner."""
    holder = (
        MLModel.objects.filter(name_key=name_key(name))
        .exclude(pk=getattr(model, "pk", None))
        .select_related("owner")
        .only("pk", "name", "owner__username")
        .first()
    )
    if holder is None:
        return None
    return (
        f"The name “{holder.name}” is taken by {holder.owner.username}'s model (#{holder.pk}); "
        "model names are unique across the registry."
    )


def _ensure_name_free(name: str, *, model: MLModel | None = None) -> None:
    if error := name_taken_error(name, model=model):
        raise ValidationError({"name": [ValidationError(error, code="duplicate_name")]})


def _check_fields(data: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationError(
            {
                field: f"Unknown or read-only field; editable fields are: {', '.join(sorted(allowed))}."
                for field in unknown
            }
        )


def _versioned_state(model: MLModel) -> tuple:
    return tuple(getattr(model, field) for field in VERSIONED_FIELDS)


def _save_with_version(
    model: MLModel,
    *,
    actor,
    changed_fields: set[str],
    note: str,
    new_version: bool,
    files: list[folders.FolderFile] | None = None,
    files_from: ModelVersion | None = None,
    run=None,
) -> ModelVersion | None:
    """Validate the changed fields, save, and snapshot the model as version latest+1 if asked.

    A folder artifact's rows come along: ``files`` for a folder just stored; otherwise, when the
    model's artifact is a folder, those of ``files_from`` (a rollback's version) or of the version
    this one follows (a new snapshot keeps the artifact it had)."""
    untouched = [f.name for f in MLModel._meta.concrete_fields if f.name not in changed_fields]
    model.full_clean(exclude=untouched, validate_constraints=False)
    # The metrics' CHECK constraints say what their field validators just checked (and the database
    # checks them again): asking the database first would cost three round trips per write. The
    # other constraints are worth asking about when their fields change.
    if changed_fields & UNIQUE_OR_CHECKED_FIELDS:
        model.validate_constraints(exclude={*untouched, *METRIC_FIELDS})
    # Only the changed columns: the others are as the locked row has them.
    update_fields = {*changed_fields, "updated_at"}
    if not new_version:
        model.save(update_fields=update_fields)
        return None
    model.latest_version += 1
    model.save(update_fields={*update_fields, "latest_version"})
    version = ModelVersion.objects.create(
        model=model,
        version_number=model.latest_version,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        note=note,
        run=run,
        # A stored file waits for its scan (the version.created subscriber asks for it).
        scan_status=ScanStatus.PENDING if model.has_artifact else "",
        # By attname (experiment_id): the snapshot needs no query for the experiment row.
        **{attname: getattr(model, attname) for attname in SNAPSHOT_ATTNAMES},
    )
    if files is not None:
        rows = [
            VersionFile(version=version, path=f.path, key=f.stored.key, size=f.stored.size, sha256=f.stored.sha256)
            for f in files
        ]
    elif model.file_count:
        source = (
            files_from
            or model.versions.filter(version_number__lt=version.version_number).order_by("-version_number").first()
        )
        rows = [
            VersionFile(version=version, path=path, key=key, size=size, sha256=sha256)
            for path, key, size, sha256 in source.files.values_list("path", "key", "size", "sha256").iterator()
        ]
    else:
        return version
    VersionFile.objects.bulk_create(rows, batch_size=1000)
    # What the version.created event says of the folder (it is built without a query).
    version.files_summary = folders.files_summary(rows)
    return version


def _set_file(model: MLModel, stored: StoredArtifact) -> None:
    model.file, model.file_size, model.file_sha256 = stored.key, stored.size, stored.sha256
    model.file_count = 0


class FileTooLarge(TooLarge):
    """The artifact is over MAX_UPLOAD_BYTES (the API answers 413, the pages a form error)."""

    def __init__(self, size: int):
        super().__init__(f"File too large: {size} bytes; the limit is {settings.MAX_UPLOAD_BYTES} bytes.", field="file")


def _check_size(file: IO[bytes]) -> None:
    size = getattr(file, "size", None)
    if size is not None and size > settings.MAX_UPLOAD_BYTES:
        raise FileTooLarge(size)


def model_create(
    *,
    owner,
    name: str,
    actor=None,
    description: str = "",
    framework: str = MLModel._meta.get_field("framework").default,
    task_type: str = MLModel._meta.get_field("task_type").default,
    experiment=None,
    hyperparameters: dict | None = None,
    accuracy: float | None = None,
    precision: float | None = None,
    recall: float | None = None,
    f1_score: float | None = None,
    file: IO[bytes] | None = None,
    note: str = "Initial version",
    initial_version: bool = True,
) -> MLModel:
    """Create a model in development and record it as version 1 (with its file, if given). Without
    ``initial_version`` (MLflow's registered-models/create: a registered model starts with no
    versions there), it has none until one is recorded, which is then version 1."""
    actor = actor or owner
    if not (actor.is_superuser or actor.pk == owner.pk):
        raise PermissionDenied("Only a superuser can create a model for another user.")
    check_free_text(note=note)
    _ensure_can_link(experiment, actor)
    model = MLModel(
        owner=owner,
        name=normalize_name(name),
        description=description,
        framework=framework,
        task_type=task_type,
        experiment=experiment,
        hyperparameters={} if hyperparameters is None else hyperparameters,
        accuracy=accuracy,
        precision=precision,
        recall=recall,
        f1_score=f1_score,
    )
    _ensure_name_free(model.name)
    model.full_clean(exclude=["file", "file_size", "file_sha256", "name_key"])
    if file is not None:
        _check_size(file)
    if not initial_version:
        if file is not None:
            raise ValueError("A model created with a file has it as its initial version.")
        with integrity_as_validation(model), transaction.atomic():
            model.save()
        publish(model_created(model, actor=actor))
        return model
    # The file, if any, is stored once the row has its id; it is removed again if the create fails.
    with integrity_as_validation(model), uploads.new_model_upload(file=file) as upload, transaction.atomic():
        model.save()
        if upload is not None:
            _set_file(model, upload.place(model=model, version_number=1))
        version = _save_with_version(model, actor=actor, changed_fields=set(FILE_FIELDS), note=note, new_version=True)
    publish(model_created(model, actor=actor))
    publish(version_created(version, actor=actor))
    return model


def model_update(
    *, model: MLModel, actor, data: dict[str, Any] | None = None, file: IO[bytes] | None = None, note: str = ""
) -> MLModel:
    """Change a model's fields and/or replace its file.

    A change of metrics, hyperparameters or file records one new version; a change of name,
    description, framework, task or experiment alone does not. Lifecycle and owner are not
    editable here (see ``lifecycle_move``).
    """
    data = dict(data or {})
    _ensure_can_change(model, actor)
    _check_fields(data, EDITABLE_FIELDS)
    check_free_text(note=note)
    if "experiment" in data:
        _ensure_can_link(data["experiment"], actor, linked_id=model.experiment_id)
    if "name" in data:
        data["name"] = normalize_name(data["name"])
        _ensure_name_free(data["name"], model=model)
    if file is None:
        version = _apply(model=model, actor=actor, data=data, note=note, always_version=False)
    else:
        version = _apply_with_file(model=model, actor=actor, data=data, file=file, note=note or "New artifact file")
    if data:
        publish(model_updated(model, actor=actor, fields=data))
    if version is not None:
        publish(version_created(version, actor=actor))
    return model


def version_record(*, model: MLModel, actor, data: dict[str, Any] | None = None, note: str = "") -> ModelVersion:
    """Record a new version: the model's current snapshot with ``data`` (metrics, hyperparameters,
    experiment) applied on top. The model's current fields follow its newest version."""
    data = dict(data or {})
    _ensure_can_change(model, actor)
    _check_fields(data, frozenset({*METRIC_FIELDS, "hyperparameters", "experiment"}))
    check_free_text(note=note)
    if "experiment" in data:
        _ensure_can_link(data["experiment"], actor, linked_id=model.experiment_id)
    version = _apply(model=model, actor=actor, data=data, note=note, always_version=True)
    publish(version_created(version, actor=actor))
    return version


def model_attach_file(*, model: MLModel, actor, file: IO[bytes], note: str = "") -> ModelVersion:
    """Stream ``file`` to storage and record it as the model's new version."""
    _ensure_can_change(model, actor)
    check_free_text(note=note)
    version = _apply_with_file(model=model, actor=actor, data={}, file=file, note=note or "New artifact file")
    # Its version has committed by now (in a caller's transaction, the event still waits for that one).
    publish(version_created(version, actor=actor))
    return version


VERSION_DATA_FIELDS = frozenset({*METRIC_FIELDS, "hyperparameters", "experiment"})


def _check_version_data(model: MLModel, actor, data: dict[str, Any], note: str) -> None:
    _ensure_can_change(model, actor)
    _check_fields(data, VERSION_DATA_FIELDS)
    check_free_text(note=note)
    if "experiment" in data:
        _ensure_can_link(data["experiment"], actor, linked_id=model.experiment_id)


def version_create_with_files(
    *,
    model: MLModel,
    actor,
    files: Iterable[tuple[str, IO[bytes]]],
    note: str = "",
    data: dict[str, Any] | None = None,
    run=None,
) -> ModelVersion:
    """Record a new version whose artifact is the folder ``files``: (relative POSIX path, readable
    binary stream) pairs, each streamed to ``{version prefix}/{path}`` with its size and sha256
    computed on the way; ``data`` (metrics, hyperparameters, experiment) applied as ``version_record``
    does; ``run``, the run it came from, linked. All or nothing: a bad path is refused before anything
    is stored, and any failure later (storage, database) removes every file stored so far and writes
    no row."""
    data = dict(data or {})
    _check_version_data(model, actor, data, note)
    files = list(files)
    paths = folders.validate_file_set(path for path, _ in files)
    for path in paths:
        folders.check_key_length(model, path)
    for _, stream in files:
        _check_size(stream)

    def writer(stream: IO[bytes]) -> folders.Writer:
        return lambda key: artifact_store(key=key, source=stream)

    writers = [(path, writer(stream)) for path, stream in files]
    version = _record_folder(model=model, actor=actor, data=data, writers=writers, note=note, run=run)
    publish(version_created(version, actor=actor))
    return version


def version_create_from_stored(
    *,
    model: MLModel,
    actor,
    source_prefix: str,
    note: str = "",
    data: dict[str, Any] | None = None,
    run=None,
) -> ModelVersion:
    """Record a new version whose artifact is a copy of every object under ``source_prefix`` in the
    registry's own storage (a run's artifacts folder, another version's folder), each copied inside
    the storage (S3 CopyObject, a streamed local copy) under the new version's prefix, named by its
    path below ``source_prefix``. The prefix must be in the registry's namespace (``users/{id}/…``)
    and name something that exists (``LookupError`` otherwise); ``run`` is the experiments' run it
    came from, linked to the version; other rules as ``version_create_with_files``."""
    data = dict(data or {})
    _check_version_data(model, actor, data, note)
    prefix = _readable_prefix(source_prefix, actor)
    entries = []
    for entry in artifact_sized_keys(prefix):
        if len(entries) >= MAX_FILES_PER_VERSION:
            raise ValidationError(
                {"source": f"More than {MAX_FILES_PER_VERSION} files under {prefix}/; a version holds at most that."},
                code="too_many_files",
            )
        entries.append(entry)
    if not entries:
        raise ValidationError({"source": f"No stored files under {prefix}/."}, code="no_files")
    paths = folders.validate_file_set(key[len(prefix) + 1 :] for key, _ in entries)
    for path in paths:
        folders.check_key_length(model, path)

    def writer(source_key: str, size: int) -> folders.Writer:
        return lambda key: artifact_copy(source_key=source_key, target_key=key, size=size)

    writers = [(path, writer(key, size)) for path, (key, size) in zip(paths, entries, strict=True)]
    version = _record_folder(model=model, actor=actor, data=data, writers=writers, note=note, run=run)
    publish(version_created(version, actor=actor, source=prefix))
    return version


# users/{id}/ then at least one more segment: the namespace every stored object of the registry is in.
_NAMESPACE = re.compile(r"users/(?P<owner>[1-9][0-9]{0,18})/(?P<rest>.+)")
_MODEL_FOLDER = re.compile(r"models/(?P<model>[1-9][0-9]{0,18})(?:/(?P<part>[^/]+))?(?:/.*)?")
_VERSION_PART = re.compile(r"v(?P<number>[1-9][0-9]{0,9})")


def _readable_prefix(source_prefix: object, actor) -> str:
    """``source_prefix`` without its trailing slash, once checked: a path like the registry writes
    (no traversal, encoded or control characters, empty segments) under ``users/{id}/`` of an
    existing user, which a signed-in ``actor`` may read (everyone signed in reads everything). Under
    a model's folder it must be a version that exists, never an upload still in flight."""
    if not getattr(actor, "is_authenticated", False):
        raise PermissionDenied("Sign in to read stored files.")
    if not isinstance(source_prefix, str) or not source_prefix.strip("/"):
        raise ValidationError({"source": "A source folder (users/{id}/…) is required."}, code="invalid_source")
    prefix = source_prefix.removesuffix("/")
    try:
        folders.validate_file_path(prefix)
    except ValidationError as error:
        raise ValidationError({"source": error.messages}, code="invalid_source") from None
    match = _NAMESPACE.fullmatch(prefix)
    if match is None:
        raise ValidationError(
            {"source": "The source folder must be in the registry's storage: users/{id}/…"}, code="outside_namespace"
        )
    owner_id = int(match["owner"])
    if not get_user_model().objects.filter(pk=owner_id).exists():
        raise LookupError(f"Nothing is stored under {prefix}/.")
    rest = match["rest"]
    if rest == "models" or rest.startswith("models/"):
        folder = _MODEL_FOLDER.fullmatch(rest)
        version = folder and folder["part"] and _VERSION_PART.fullmatch(folder["part"])
        if not version:
            raise ValidationError(
                {
                    "source": "Under a model's folder, the source must be one of its versions: "
                    "users/{id}/models/{id}/v{n}/."
                },
                code="invalid_source",
            )
        exists = ModelVersion.objects.filter(
            model_id=int(folder["model"]), model__owner_id=owner_id, version_number=int(version["number"])
        ).exists()
        if not exists:
            raise LookupError(f"Nothing is stored under {prefix}/.")
    return prefix


def _record_folder(
    *, model: MLModel, actor, data: dict[str, Any], writers: list[tuple[str, folders.Writer]], note: str, run=None
) -> ModelVersion:
    """Store the folder, then record it with ``data`` as the next version (returned), the number
    decided under the row lock as ``_apply_with_file`` does."""
    with (
        integrity_as_validation(_with_changes(model, data)),
        folders.next_version_folder(model=model, writers=writers) as folder,
        transaction.atomic(),
    ):
        locked = changes.lock(model)
        for field, value in data.items():
            setattr(locked, field, value)
        placed = folder.place(model=locked, version_number=locked.latest_version + 1)
        locked.file = locked.file_size = locked.file_sha256 = None
        locked.file_count = len(placed)
        version = _save_with_version(
            locked,
            actor=actor,
            changed_fields={*data, *FILE_FIELDS},
            note=note or "New artifact folder",
            new_version=True,
            files=placed,
            run=run,
        )
    changes.refresh_from(model, locked)
    return version


def version_files(version: ModelVersion) -> QuerySet[VersionFile]:
    """The files of a folder version, by path (none for a single-file version)."""
    return version.files.order_by("path")


def version_file_open(version: ModelVersion, path: str) -> tuple[VersionFile, IO[bytes]]:
    """The file ``path`` of a folder version and a forward-only stream of its bytes (close it);
    ``LookupError`` when the version has no such file, ``ValidationError`` for a malformed path."""
    folders.validate_file_path(path)
    file = version.files.filter(path=path).first()
    if file is None:
        raise LookupError(f"Version {version.version_number} has no file {path!r}.")
    return file, artifact_open_stream(file.key)


def version_zip_stream(version: ModelVersion) -> Iterator[bytes]:
    """The folder of ``version`` as a zip, produced chunk by chunk as it is read (never whole in
    memory or on disk); its files read in batches from the database."""
    return folders.zip_stream(version_files(version).iterator(chunk_size=500), open_stream=artifact_open_stream)


def _apply(*, model: MLModel, actor, data: dict[str, Any], note: str, always_version: bool) -> ModelVersion | None:
    """Apply ``data`` to ``model`` under its row lock; returns the version it recorded, if any."""
    with integrity_as_validation(_with_changes(model, data)), transaction.atomic():
        locked = changes.lock(model)
        before = _versioned_state(locked)
        for field, value in data.items():
            setattr(locked, field, value)
        changed = _versioned_state(locked) != before
        version = _save_with_version(
            locked, actor=actor, changed_fields=set(data), note=note, new_version=always_version or changed
        )
    changes.refresh_from(model, locked)
    return version


def _apply_with_file(*, model: MLModel, actor, data: dict[str, Any], file: IO[bytes], note: str) -> ModelVersion:
    """Store the file, then record it with ``data`` as the next version (returned).

    Where the file waits while the version is recorded, and how it gets to the key of that
    version, is ``mlmodels.uploads``'s part; the number is decided here, under the row lock.
    """
    _check_size(file)
    with uploads.next_version_upload(model=model, file=file) as upload, transaction.atomic():
        locked = changes.lock(model)
        for field, value in data.items():
            setattr(locked, field, value)
        _set_file(locked, upload.place(model=locked, version_number=locked.latest_version + 1))
        version = _save_with_version(
            locked, actor=actor, changed_fields={*data, *FILE_FIELDS}, note=note, new_version=True
        )
    changes.refresh_from(model, locked)
    return version


def _with_changes(model: MLModel, data: dict[str, Any]) -> MLModel:
    candidate = copy.copy(model)
    for field, value in data.items():
        setattr(candidate, field, value)
    return candidate


def model_rollback(*, version: ModelVersion, actor, note: str = "") -> ModelVersion:
    """Record a new version equal to ``version`` and make it the model's current state."""
    model = version.model
    _ensure_can_change(model, actor)
    check_free_text(note=note)
    with transaction.atomic():
        locked = changes.lock(model)
        if locked.lifecycle == Stage.PRODUCTION and not version.has_artifact:
            raise ValidationError(
                {
                    "version": f"Version {version.version_number} has no artifact file and the model is in "
                    "production, which needs one. Move the model out of production first."
                }
            )
        if locked.lifecycle == Stage.PRODUCTION and (refusal := changes.unsafe_refusal(version, "serve production")):
            raise ValidationError({"version": refusal}, code="unsafe_artifact")
        for field in SNAPSHOT_FIELDS:
            setattr(locked, field, getattr(version, field))
        new_version = _save_with_version(
            locked,
            actor=actor,
            changed_fields=set(SNAPSHOT_FIELDS),
            note=note or f"Rolled back to version {version.version_number}",
            new_version=True,
            files_from=version,
        )
        # A folder's new rows point at the same stored keys as the version's own.
        same_artifact = (version.file and new_version.file == version.file) or version.is_folder
        if same_artifact and version.scan_status != ScanStatus.PENDING:
            # The same stored file: its scan holds, so the copy is never "pending" while a rescan runs
            # (the production gate lets a pending version through).
            _copy_scan(version, to=new_version)
    changes.refresh_from(model, locked)
    publish(version_created(new_version, actor=actor, rolled_back_from=version.version_number))
    return new_version


SCAN_FIELDS = ("scan_status", "scan_findings", "artifact_format", "artifact_metadata", "scanned_at")


def _copy_scan(source: ModelVersion, *, to: ModelVersion) -> None:
    for field in SCAN_FIELDS:
        setattr(to, field, getattr(source, field))
    to.save(update_fields=SCAN_FIELDS)


def _approval_needed(actor) -> bool:
    return settings.PRODUCTION_NEEDS_APPROVAL and not can_approve(actor)


def lifecycle_move(*, model: MLModel, actor, to_stage: str, comment: str = "") -> ApprovalRequest | None:
    """Move a model to another lifecycle stage and write the audit event in the same transaction.

    Only the moves in ``ALLOWED_MOVES`` are accepted, checked against the locked row so two
    concurrent moves cannot both pass the check; production needs an artifact file. With
    PRODUCTION_NEEDS_APPROVAL, an owner without the approve permission who asks for production files
    an approval request instead (returned; None when the model moved).
    """
    _ensure_can_change(model, actor)
    check_free_text(comment=comment)
    comment = comment.strip()
    changes.check_stage(to_stage)
    if to_stage == Stage.PRODUCTION and _approval_needed(actor):
        return lifecycle_request(model=model, actor=actor, to_stage=to_stage, comment=comment)
    with transaction.atomic():
        locked = changes.lock(model)
        from_stage = changes.move(locked, actor=actor, to_stage=to_stage, comment=comment)
    changes.refresh_from(model, locked)
    publish(lifecycle_changed(model, actor=actor, from_stage=from_stage, to_stage=to_stage, comment=comment))
    return None


def lifecycle_request(*, model: MLModel, actor, to_stage: str, comment: str = "") -> ApprovalRequest:
    """Ask an approver to move ``model`` to ``to_stage``: files a pending request (superseding the
    pending one for the model's stage). What ``lifecycle_move`` does for an owner without the approve
    permission when approvals are on; anyone who may move the model may also ask this way."""
    _ensure_can_change(model, actor)
    check_free_text(comment=comment)
    changes.check_stage(to_stage)
    with transaction.atomic():
        locked = changes.lock(model)
        # Refused now what the approver could not carry out either.
        changes.check_move(locked, to_stage)
        request, events = approvals.file_request(
            locked, actor=actor, action=ApprovalAction.LIFECYCLE, to_stage=to_stage, comment=comment.strip()
        )
    for event in events:
        publish(event)
    return request


def tag_set(*, model: MLModel, actor, key: str, value: str, version_number: int | None = None) -> str | None:
    """Set the tag ``key`` of ``model`` (or of its version ``version_number``) to ``value``; returns
    the value it replaced."""
    _ensure_can_change(model, actor)
    validate_tag(key, value)

    def change(tags: dict[str, str]) -> dict[str, str]:
        if key not in tags and len(tags) >= MAX_TAGS:
            raise ValidationError({"key": [f"At most {MAX_TAGS} tags; remove one first."]}, code="too_many_tags")
        return {**tags, key: value}

    previous = _change_tags(model, version_number, key, change)
    publish(tag_was_set(model, actor=actor, key=key, value=value, previous=previous, version=version_number))
    return previous


def tag_delete(*, model: MLModel, actor, key: str, version_number: int | None = None) -> None:
    """Remove the tag ``key`` of ``model`` (or of its version ``version_number``); a key it does not
    carry is a ``LookupError``."""
    _ensure_can_change(model, actor)

    def change(tags: dict[str, str]) -> dict[str, str]:
        if key not in tags:
            raise LookupError(f"No tag “{key}” here.")
        return {name: value for name, value in tags.items() if name != key}

    previous = _change_tags(model, version_number, key, change)
    publish(tag_was_deleted(model, actor=actor, key=key, previous=previous, version=version_number))


def _change_tags(model: MLModel, version_number: int | None, key: str, change) -> str | None:
    """Replace the tags of ``model`` (or of its version ``version_number``) with ``change(tags)``
    under the model's row lock, so concurrent changes of one object's tags all land; returns the
    value ``key`` had before."""
    with transaction.atomic():
        locked = changes.lock(model)
        target = locked if version_number is None else changes.version_of(locked, version_number)
        previous = target.tags.get(key)
        target.tags = change(target.tags)
        target.save(update_fields=["tags"] if version_number is not None else ["tags", "updated_at"])
    if version_number is None:
        changes.refresh_from(model, locked)
    return previous


def version_note_set(*, model: MLModel, actor, version_number: int, note: str) -> ModelVersion:
    """Replace the note of ``model``'s version ``version_number`` (MLflow's description of a version):
    descriptive text, so the snapshot (metrics, hyperparameters, file) stays as it was recorded.
    Returns the version; a number the model does not have is a ``LookupError``."""
    _ensure_can_change(model, actor)
    check_free_text(note=note)
    with transaction.atomic():
        locked = changes.lock(model)
        version = changes.version_of(locked, version_number)
        previous, version.note = version.note, note
        version.save(update_fields=["note"])
    if previous != note:
        publish(version_updated(model, actor=actor, version=version_number, note=note))
    return version


def _alias_needs_request(model: MLModel, alias: str, actor) -> tuple[bool, bool]:
    """Whether ``alias`` is protected, and whether ``actor``'s change of it must be an approval
    request. A protected alias is the approvers' (and superusers'), on any model; with approvals on,
    the model's owner may ask for it. Other aliases are the owner's."""
    protected = ProtectedAlias.objects.filter(name=alias).exists()
    if not protected:
        _ensure_can_change(model, actor)
        return False, False
    if can_approve(actor):
        return True, False
    if settings.PRODUCTION_NEEDS_APPROVAL and model.can_change(actor):
        return True, True
    also = " The model's owner may ask for it: an approver then decides." if settings.PRODUCTION_NEEDS_APPROVAL else ""
    raise PermissionDenied(
        f"“{alias}” is a protected alias: only approvers and superusers may set, move or delete it.{also}"
    )


def _validated_alias(alias: str) -> None:
    try:
        validate_alias(alias)
    except ValidationError as error:
        raise ValidationError({"alias": error.messages}) from None


def alias_set(*, model: MLModel, actor, alias: str, version_number: int, comment: str = "") -> ApprovalRequest | None:
    """Point ``alias`` of ``model`` at its version ``version_number`` (moving it if it pointed at
    another), audited. Under the model's row lock, so two moves of one alias at once both land, one
    after the other, and both are in the history. An owner's change of a protected alias with
    approvals on is an approval request instead (returned; None when the alias was set)."""
    _validated_alias(alias)
    check_free_text(comment=comment)
    protected, needs_request = _alias_needs_request(model, alias, actor)
    request, events, previous = None, [], None
    with transaction.atomic():
        locked = changes.lock(model)
        if not needs_request:
            previous = changes.point_alias(
                locked, actor=actor, alias=alias, version_number=version_number, protected=protected
            )
        else:
            changes.check_alias_target(locked, version_number=version_number, protected=True)
            # An alias already pointing there needs nobody's approval: nothing changes.
            if locked.aliases.get(alias) != version_number:
                request, events = approvals.file_request(
                    locked,
                    actor=actor,
                    action=ApprovalAction.ALIAS,
                    alias=alias,
                    version_number=version_number,
                    comment=comment.strip(),
                )
    for event in events:
        publish(event)
    if needs_request:
        return request
    changes.refresh_from(model, locked)
    if previous != version_number:
        publish(alias_was_set(model, actor=actor, alias=alias, version=version_number, previous=previous))
    return None


def alias_delete(*, model: MLModel, actor, alias: str, comment: str = "") -> ApprovalRequest | None:
    """Remove ``alias`` of ``model``, audited; an alias it does not have is a ``LookupError``. As
    ``alias_set``, an owner's removal of a protected alias with approvals on is an approval request."""
    check_free_text(comment=comment)
    _protected, needs_request = _alias_needs_request(model, alias, actor)
    with transaction.atomic():
        locked = changes.lock(model)
        if needs_request:
            changes.check_has_alias(locked, alias)
            request, events = approvals.file_request(
                locked, actor=actor, action=ApprovalAction.ALIAS, alias=alias, comment=comment.strip()
            )
        else:
            request, events = None, []
            previous = changes.drop_alias(locked, actor=actor, alias=alias)
    if request is not None:
        for event in events:
            publish(event)
        return request
    changes.refresh_from(model, locked)
    publish(alias_was_deleted(model, actor=actor, alias=alias, previous=previous))
    return None


def version_delete(*, model: MLModel, actor, version_number: int) -> None:
    """Delete version ``version_number`` of ``model``; the aliases pointing at it are dropped, each
    audited, and its stored file goes once the delete commits, unless another version (a rollback)
    still uses it. The model's current version (its newest) stays: roll back first to replace it. A
    version carrying a protected alias is deleted by approvers and superusers only."""
    _ensure_can_change(model, actor)
    with transaction.atomic():
        locked = changes.lock(model)
        version = changes.version_of(locked, version_number)
        newest = locked.versions.order_by("-version_number").values_list("version_number", flat=True).first()
        if version_number == newest:
            raise ValidationError(
                {
                    "version": f"Version {version_number} is the model's current version. Roll back to another "
                    "version (which records a new one) before deleting it."
                },
                code="current_version",
            )
        pointing = selectors.aliases_of_version(locked.aliases, version_number)
        protected = set(ProtectedAlias.objects.filter(name__in=pointing).values_list("name", flat=True))
        if protected and not can_approve(actor):
            names = ", ".join(f"@{name}" for name in sorted(protected))
            raise PermissionDenied(
                f"Version {version_number} carries the protected alias {names}: only approvers and superusers "
                "may delete it (or move the alias first)."
            )
        dropped = [(alias, changes.drop_alias(locked, actor=actor, alias=alias)) for alias in pointing]
        version.delete()
    changes.refresh_from(model, locked)
    for alias, previous in dropped:
        publish(alias_was_deleted(model, actor=actor, alias=alias, previous=previous))
    publish(version_deleted(model, actor=actor, version=version_number, aliases=[alias for alias, _ in dropped]))


def version_scan(*, model_id: int, version_number: int) -> ScanReport | None:
    """Scan the stored artifact of version ``version_number`` of model ``model_id`` (mlmodels.scans)
    and record the result on the version; None when it has no file (or is gone). Idempotent: the
    scan task runs it, perhaps twice. A file replaced meanwhile keeps the newer result. A folder's
    files are scanned one by one and summed up by ``folders.folder_report``."""
    version = ModelVersion.objects.filter(model_id=model_id, version_number=version_number).select_related("model")
    version = version.only("id", "file", "file_count", "version_number", "model__id", "model__name").first()
    if version is None or not version.has_artifact:
        return None
    if version.is_folder:
        # Each file on its own, by path: the folder's result is the worst of theirs (mlmodels.folders).
        reports = {
            file.path: _scan_stored(file.key, file_name=file.path)
            for file in version_files(version).only("path", "key").iterator(chunk_size=500)
        }
        report = folders.folder_report(reports)
        same_artifact = Q(pk=version.pk)
    else:
        report = _scan_stored(version.file, file_name=version.file.rsplit("/", 1)[-1])
        same_artifact = Q(pk=version.pk, file=version.file)
    recorded = ModelVersion.objects.filter(same_artifact).update(
        scan_status=report.status,
        scan_findings=report.findings,
        artifact_format=report.format,
        artifact_metadata=report.metadata,
        scanned_at=timezone.now(),
    )
    if recorded:
        publish(
            artifact_scanned(
                version.model,
                version=version_number,
                status=report.status,
                findings=report.findings,
                format=report.format,
            )
        )
    return report


def _scan_stored(key: str, *, file_name: str) -> ScanReport:
    """``scan_artifact`` of the stored object ``key``; a scanner's crash is an ``error`` result."""
    with contextlib.ExitStack() as files:
        stored = files.enter_context(contextlib.closing(artifact_open_stream(key)))
        if not (hasattr(stored, "seekable") and stored.seekable()):
            # The scanner seeks (a zip's directory is at its end): S3's stream is copied first.
            copy = files.enter_context(tempfile.SpooledTemporaryFile(max_size=SCAN_IN_MEMORY_BYTES))
            shutil.copyfileobj(stored, copy, length=1024 * 1024)
            copy.seek(0)
            stored = copy
        try:
            return scan_artifact(stored, file_name=file_name)
        except Exception as error:  # a scanner's crash on a hostile file is a result too
            return ScanReport(ScanStatus.ERROR, "unknown", metadata={"reason": f"the scan failed: {error}"[:500]})


def model_delete(*, model: MLModel, actor) -> None:
    """Delete a model with its versions and events; its stored files go once the delete commits
    (see ``mlmodels.signals``), so a rolled-back delete never loses a file."""
    _ensure_can_change(model, actor)
    event = model_deleted(model, actor=actor)  # before the delete, which takes the instance's id away
    with transaction.atomic():
        model.delete()
    publish(event)


@dataclass(frozen=True)
class StorageAudit:
    orphans: list[str]  # stored objects no row points to
    missing: list[str]  # keys rows point to whose object is gone
    removed: list[str]  # orphans deleted by this audit


def storage_audit(*, fix: bool = False, min_age: timedelta = timedelta(hours=1), prefix: str = "users") -> StorageAudit:
    """Compare the stored objects under ``prefix`` (all of ``users/`` by default, or one owner's
    ``users/{id}``) with the keys the rows point to.

    An object younger than ``min_age`` is never called an orphan: it may be an upload whose row is
    about to be committed. With ``fix``, orphans are deleted; missing objects can only be reported.
    Reads every key once (one storage listing, three queries streamed with ``iterator()``).
    """
    stored = set(artifact_keys(prefix))
    under_prefix = Q(file__startswith=f"{prefix}/")
    referenced = set(MLModel.objects.filter(under_prefix).values_list("file", flat=True).iterator())
    referenced |= set(ModelVersion.objects.filter(under_prefix).values_list("file", flat=True).iterator())
    # The files of folder versions (a rollback's rows name the same keys: a set keeps one of each).
    referenced |= set(VersionFile.objects.filter(key__startswith=f"{prefix}/").values_list("key", flat=True).iterator())
    # Other apps' stored files (experiments' artifact files), registered by their AppConfig.ready().
    referenced |= set(references.referenced_keys(prefix))
    cutoff = timezone.now() - min_age
    orphans = sorted(key for key in stored - referenced if artifact_modified_at(key) <= cutoff)
    missing = sorted(referenced - stored)
    removed = []
    if fix:
        for key in orphans:
            artifact_delete(key)
            removed.append(key)
    return StorageAudit(orphans=orphans, missing=missing, removed=removed)
