"""The domain events of experiments (published by ``experiments.services``).

An experiment is not a model, so these events carry no ``model``; the experiment is named in
``data["experiment"]`` as ``{id, name}``:

``experiment.created``  experiment, owner_id
``experiment.updated``  experiment, fields: the names of the editable fields the change wrote
``experiment.deleted``  experiment, owner_id (built before the delete: the row is gone once it
                        commits); the models it produced keep their versions and lose the link
"""

from __future__ import annotations

from collections.abc import Iterable

from registry.events import Event

EXPERIMENT_CREATED = "experiment.created"
EXPERIMENT_UPDATED = "experiment.updated"
EXPERIMENT_DELETED = "experiment.deleted"


def experiment_event(type: str, experiment, actor, **data) -> Event:
    """An event of ``type`` about ``experiment`` by ``actor``, with ``data``."""
    return Event.of(type, actor=actor, data={"experiment": {"id": experiment.pk, "name": experiment.name}, **data})


def experiment_created(experiment, *, actor) -> Event:
    return experiment_event(EXPERIMENT_CREATED, experiment, actor, owner_id=experiment.owner_id)


def experiment_updated(experiment, *, actor, fields: Iterable[str]) -> Event:
    return experiment_event(EXPERIMENT_UPDATED, experiment, actor, fields=sorted(fields))


def experiment_deleted(experiment, *, actor) -> Event:
    return experiment_event(EXPERIMENT_DELETED, experiment, actor, owner_id=experiment.owner_id)
