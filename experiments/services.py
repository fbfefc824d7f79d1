"""The one write path for experiments (called by the API, the pages and the admin).

Each change publishes its event (``experiments.events``) once it commits; a refused or rolled-back
change publishes none.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from experiments.events import experiment_created, experiment_deleted, experiment_updated
from experiments.models import Experiment
from registry.events import publish
from registry.integrity import integrity_as_validation
from registry.validators import normalize_name

EDITABLE_FIELDS = frozenset({"name", "description", "parameters", "tags"})


def _ensure_can_change(experiment: Experiment, actor) -> None:
    if not experiment.can_change(actor):
        raise PermissionDenied("Only the experiment's owner or a superuser can change this experiment.")


def experiment_create(
    *,
    owner,
    name: str,
    actor=None,
    description: str = "",
    parameters: dict | None = None,
    tags: list[str] | None = None,
) -> Experiment:
    actor = actor or owner
    if not (actor.is_superuser or actor.pk == owner.pk):
        raise PermissionDenied("Only a superuser can create an experiment for another user.")
    experiment = Experiment(
        owner=owner,
        name=normalize_name(name),
        description=description,
        parameters={} if parameters is None else parameters,
        tags=[] if tags is None else tags,
    )
    experiment.full_clean()
    with integrity_as_validation(experiment), transaction.atomic():
        experiment.save()
    publish(experiment_created(experiment, actor=actor))
    return experiment


def experiment_update(*, experiment: Experiment, actor, data: dict[str, Any]) -> Experiment:
    _ensure_can_change(experiment, actor)
    unknown = sorted(set(data) - EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({field: "Unknown or read-only field." for field in unknown})
    for field, value in data.items():
        setattr(experiment, field, normalize_name(value) if field == "name" and isinstance(value, str) else value)
    untouched = [f.name for f in Experiment._meta.concrete_fields if f.name not in data]
    experiment.full_clean(exclude=untouched)
    with integrity_as_validation(experiment), transaction.atomic():
        experiment.save()
    if data:
        publish(experiment_updated(experiment, actor=actor, fields=data))
    return experiment


def experiment_delete(*, experiment: Experiment, actor) -> None:
    """Delete an experiment; the models and versions it produced stay, their link set to NULL."""
    _ensure_can_change(experiment, actor)
    event = experiment_deleted(experiment, actor=actor)
    with transaction.atomic():
        experiment.delete()
    publish(event)
