"""The domain events of experiments (published by ``experiments.services``).

An experiment is not a model, so these events carry no ``model``; the experiment is named in
``data["experiment"]`` as ``{id, name}``:

``experiment.created``  experiment, owner_id
``experiment.updated``  experiment, fields: the names of the editable fields the change wrote
``experiment.deleted``  experiment, owner_id (built before the delete: the row is gone once it
                        commits); the models it produced keep their versions and lose the link

A run's events name it in ``data["run"]`` as ``{run_id, name, experiment_id}``, and its experiment
in ``data["experiment"]`` as above. Logging is not one event per metric: one ``run.logged`` per call.

``run.created``   run, experiment, user_id (who created it), status
``run.updated``   run, experiment, fields: what the change wrote among name, status, end_time and
                  tags (a removed tag), sorted; status and end_time as they are now
``run.logged``    run, experiment, metrics, params, tags: how many of each one call logged
``run.deleted``   run, experiment (soft delete: the run stays, in the deleted lifecycle stage)
``run.restored``  run, experiment

A logged model (MLflow 3's ``log_model`` folder) is named in ``data["logged_model"]`` as
``{model_id, name, experiment_id, source_run_id}``:

``logged_model.created``    logged_model, experiment, status
``logged_model.finalized``  logged_model, experiment, status (READY, or UPLOAD_FAILED)
``logged_model.deleted``    logged_model, experiment (soft delete, as a run's)
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


RUN_CREATED = "run.created"
RUN_UPDATED = "run.updated"
RUN_LOGGED = "run.logged"
RUN_DELETED = "run.deleted"
RUN_RESTORED = "run.restored"


def run_event(type: str, run, actor, **data) -> Event:
    """An event of ``type`` about ``run`` (its experiment loaded) by ``actor``, with ``data``."""
    experiment = run.experiment
    return Event.of(
        type,
        actor=actor,
        data={
            "run": {"run_id": run.run_id, "name": run.name, "experiment_id": run.experiment_id},
            "experiment": {"id": experiment.pk, "name": experiment.name},
            **data,
        },
    )


def run_created(run, *, actor) -> Event:
    return run_event(RUN_CREATED, run, actor, user_id=run.user_id, status=run.status)


def run_updated(run, *, actor, fields: Iterable[str]) -> Event:
    return run_event(RUN_UPDATED, run, actor, fields=sorted(fields), status=run.status, end_time=run.end_time)


def run_logged(run, *, actor, metrics: int, params: int, tags: int) -> Event:
    return run_event(RUN_LOGGED, run, actor, metrics=metrics, params=params, tags=tags)


def run_deleted(run, *, actor) -> Event:
    return run_event(RUN_DELETED, run, actor)


def run_restored(run, *, actor) -> Event:
    return run_event(RUN_RESTORED, run, actor)


LOGGED_MODEL_CREATED = "logged_model.created"
LOGGED_MODEL_FINALIZED = "logged_model.finalized"
LOGGED_MODEL_DELETED = "logged_model.deleted"


def logged_model_event(type: str, logged_model, *, actor) -> Event:
    """An event of ``type`` about ``logged_model`` (its experiment loaded) by ``actor``."""
    experiment = logged_model.experiment
    return Event.of(
        type,
        actor=actor,
        data={
            "logged_model": {
                "model_id": logged_model.model_id,
                "name": logged_model.name,
                "experiment_id": logged_model.experiment_id,
                "source_run_id": logged_model.source_run.run_id if logged_model.source_run else None,
            },
            "experiment": {"id": experiment.pk, "name": experiment.name},
            "status": logged_model.status,
        },
    )
