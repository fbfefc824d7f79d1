"""The domain events of models, versions and lifecycle stages (published by ``mlmodels.services``).

Each builder returns an ``Event`` of one type with that type's ``data``:

``model.created``      owner_id, framework, task_type, lifecycle, experiment_id
``model.updated``      fields: the names of the editable fields the change wrote (a new file alone is
                       a ``version.created``: the model's current file follows its newest version)
``model.deleted``      id, name, owner_id (built before the delete: the row is gone once it commits)
``version.created``    version, file {key, size, sha256} or None, note; rolled_back_from when a
                       rollback recorded it; for a folder artifact (file None), files {count, size,
                       paths (the first 100, sorted)}, and source (the stored folder it was copied
                       from) when it was. The model's current state is this version's snapshot.
``version.deleted``    version, aliases (the aliases that pointed at it, dropped: each has its own
                       ``alias.deleted`` too)
``version.updated``    version, fields (what changed: ["note"], its description), note
``lifecycle.changed``  from_stage, to_stage, comment
``tag.set``            key, value, version (the version's number, or None for the model's own tag),
                       previous (the value it replaced, or None)
``tag.deleted``        key, version, previous
``alias.set``          alias, version (its number), previous (the version it pointed at, or None)
``alias.deleted``      alias, previous
``artifact.scanned``   version, status (clean, unsafe, unknown, error), findings, format
``approval.requested`` approval_id, action {type: "lifecycle", to_stage} or {type: "alias", alias,
                       version (None: remove it)}, comment
``approval.decided``   approval_id, action, status (approved, rejected or cancelled), comment (the
                       decision's), requested_by {id, username}; superseded_by (the newer request's
                       id) when a newer request cancelled it
"""

from __future__ import annotations

from collections.abc import Iterable

from registry.events import Event, actor_ref

MODEL_CREATED = "model.created"
MODEL_UPDATED = "model.updated"
MODEL_DELETED = "model.deleted"
VERSION_CREATED = "version.created"
VERSION_DELETED = "version.deleted"
VERSION_UPDATED = "version.updated"
LIFECYCLE_CHANGED = "lifecycle.changed"
TAG_SET = "tag.set"
TAG_DELETED = "tag.deleted"
ALIAS_SET = "alias.set"
ALIAS_DELETED = "alias.deleted"
ARTIFACT_SCANNED = "artifact.scanned"
APPROVAL_REQUESTED = "approval.requested"
APPROVAL_DECIDED = "approval.decided"
# Every type above: what the events of a model are (webhooks subscribe to them, live pages follow them).
MODEL_EVENT_TYPES = (
    MODEL_CREATED,
    MODEL_UPDATED,
    MODEL_DELETED,
    VERSION_CREATED,
    VERSION_DELETED,
    VERSION_UPDATED,
    LIFECYCLE_CHANGED,
    TAG_SET,
    TAG_DELETED,
    ALIAS_SET,
    ALIAS_DELETED,
    ARTIFACT_SCANNED,
    APPROVAL_REQUESTED,
    APPROVAL_DECIDED,
)


def model_event(type: str, model, actor, **data) -> Event:
    """An event of ``type`` about ``model`` by ``actor``, with ``data``."""
    return Event.of(type, actor=actor, model=model, data=data)


def model_created(model, *, actor) -> Event:
    return model_event(
        MODEL_CREATED,
        model,
        actor,
        owner_id=model.owner_id,
        framework=model.framework,
        task_type=model.task_type,
        lifecycle=model.lifecycle,
        experiment_id=model.experiment_id,
    )


def model_updated(model, *, actor, fields: Iterable[str]) -> Event:
    return model_event(MODEL_UPDATED, model, actor, fields=sorted(fields))


def model_deleted(model, *, actor) -> Event:
    return model_event(MODEL_DELETED, model, actor, id=model.pk, name=model.name, owner_id=model.owner_id)


def version_created(version, *, actor, **extra) -> Event:
    """``version`` was recorded; ``extra`` adds to the data (``rolled_back_from``)."""
    file = {"key": version.file, "size": version.file_size, "sha256": version.file_sha256} if version.file else None
    if (files := getattr(version, "files_summary", None)) is not None:
        extra = {"files": files, **extra}
    # A version the services just recorded holds the model instance it was created with: no query.
    return model_event(
        VERSION_CREATED,
        version.model,
        actor,
        version=version.version_number,
        file=file,
        note=version.note,
        **extra,
    )


def version_deleted(model, *, actor, version: int, aliases: list[str]) -> Event:
    return model_event(VERSION_DELETED, model, actor, version=version, aliases=aliases)


def version_updated(model, *, actor, version: int, note: str) -> Event:
    """The note (description) of ``model``'s version ``version`` changed; its snapshot did not."""
    return model_event(VERSION_UPDATED, model, actor, version=version, fields=["note"], note=note)


def lifecycle_changed(model, *, actor, from_stage: str, to_stage: str, comment: str) -> Event:
    return model_event(LIFECYCLE_CHANGED, model, actor, from_stage=from_stage, to_stage=to_stage, comment=comment)


def tag_was_set(model, *, actor, key: str, value: str, previous: str | None, version: int | None = None) -> Event:
    return model_event(TAG_SET, model, actor, key=key, value=value, version=version, previous=previous)


def tag_was_deleted(model, *, actor, key: str, previous: str, version: int | None = None) -> Event:
    return model_event(TAG_DELETED, model, actor, key=key, version=version, previous=previous)


def alias_was_set(model, *, actor, alias: str, version: int, previous: int | None) -> Event:
    return model_event(ALIAS_SET, model, actor, alias=alias, version=version, previous=previous)


def alias_was_deleted(model, *, actor, alias: str, previous: int) -> Event:
    return model_event(ALIAS_DELETED, model, actor, alias=alias, previous=previous)


def approval_requested(request, *, actor) -> Event:
    return model_event(
        APPROVAL_REQUESTED,
        request.model,
        actor,
        approval_id=request.pk,
        action=request.action_data(),
        comment=request.comment,
    )


def approval_decided(request, *, actor, **extra) -> Event:
    """``request`` was approved, rejected or cancelled; ``extra`` adds to the data (``superseded_by``)."""
    return model_event(
        APPROVAL_DECIDED,
        request.model,
        actor,
        approval_id=request.pk,
        action=request.action_data(),
        status=request.status,
        comment=request.decision_comment,
        requested_by=actor_ref(request.requested_by),
        **extra,
    )


def artifact_scanned(model, *, version: int, status: str, findings: list[str], format: str) -> Event:
    """Nobody's action: the scan task's (``actor`` None)."""
    return model_event(ARTIFACT_SCANNED, model, None, version=version, status=status, findings=findings, format=format)
