"""Reads of models, versions and events, scoped to who is asking."""

from dataclasses import dataclass

from django.db.models import QuerySet

from mlmodels.models import LifecycleEvent, MLModel, ModelVersion
from mlmodels.paths import ArtifactPath


def model_list(*, user) -> QuerySet[MLModel]:
    """Models the user may read: all of them for any signed-in user (one team, one registry).
    Serializing a row costs no further query (owner and experiment are shown by id)."""
    return MLModel.objects.visible_to(user)


def version_list(*, model: MLModel) -> QuerySet[ModelVersion]:
    return model.versions.order_by("-version_number")


def event_list(*, model: MLModel) -> QuerySet[LifecycleEvent]:
    """The model's audit trail, newest first, with each actor's username (one joined query)."""
    return model.events.select_related("actor").order_by("-created_at", "-id")


@dataclass(frozen=True)
class ArtifactRecord:
    model_id: int
    size: int | None


def artifact_record(*, path: ArtifactPath, user=None) -> ArtifactRecord | None:
    """The stored artifact at ``path``, if a row really points at it (the model's current file or one
    of its versions) and, when ``user`` is given, the user may read that model; None otherwise.

    Looked up through the model id the path names: at most two indexed queries.
    """
    models = MLModel.objects.all() if user is None else model_list(user=user)
    model = models.filter(pk=path.model_id, owner_id=path.owner_id).only("id", "file", "file_size").first()
    if model is None:
        return None
    if model.file == path.key:
        return ArtifactRecord(model_id=model.pk, size=model.file_size)
    sizes = model.versions.filter(file=path.key).values_list("file_size", flat=True)[:1]
    return ArtifactRecord(model_id=model.pk, size=sizes[0]) if sizes else None
