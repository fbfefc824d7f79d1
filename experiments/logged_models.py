"""Logged models (MLflow 3's ``log_model`` folder): the one write path and its reads, called by the
MLflow facade and the admin alike.

MLflow's client makes one before it uploads the folder (``PENDING``), uploads the files through the
artifact proxy (``experiments.artifacts``), then finalizes it (``READY``, or ``UPLOAD_FAILED``);
``model-versions/create`` then registers a version from its files. The rules follow MLflow's store:

- it is created in an experiment by whoever may create runs there, and when it names its source run,
  by whoever may change that run; its params and tags are validated as a run's;
- params are written once per key (the same value again is a no-op); tags are set and deleted;
- finalizing sets a final status (READY or UPLOAD_FAILED); a deleted logged model refuses changes;
- it is changed by its creator, its experiment's owner or a superuser.

Refusals: ValidationError (400), PermissionDenied (403), LookupError (a tag that is not there).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet

from experiments.events import (
    LOGGED_MODEL_CREATED,
    LOGGED_MODEL_DELETED,
    LOGGED_MODEL_FINALIZED,
    logged_model_event,
)
from experiments.models import (
    Experiment,
    LifecycleStage,
    LoggedModel,
    LoggedModelParam,
    LoggedModelStatus,
    LoggedModelTag,
    Run,
    new_logged_model_id,
)
from experiments.runs import generate_run_name, name_error, now_ms, validated_params, validated_tags
from registry.events import publish

LOGGED_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")
FINAL_STATUSES = (LoggedModelStatus.READY, LoggedModelStatus.FAILED)


def _ensure_can_change(logged_model: LoggedModel, actor) -> None:
    if not logged_model.can_change(actor):
        raise PermissionDenied("Only the logged model's creator, its experiment's owner or a superuser can change it.")


def _ensure_active(logged_model: LoggedModel) -> None:
    if not logged_model.is_active:
        raise ValidationError(f"Logged model {logged_model.model_id} is deleted: it must be active to change it.")


def logged_model_create(
    *,
    experiment: Experiment,
    actor,
    name: str | None = None,
    model_type: str = "",
    source_run: Run | None = None,
    params: Mapping[str, str] | Iterable[Mapping] | None = None,
    tags: Mapping[str, str] | Iterable[Mapping] | None = None,
) -> LoggedModel:
    """A new PENDING logged model of ``experiment``, made by ``actor`` (from ``source_run``, a run of
    that same experiment, if given), its artifact folder at
    ``mlflow-artifacts:/{experiment}/models/{model_id}/artifacts``."""
    if source_run is not None:
        if source_run.experiment_id != experiment.pk:
            raise ValidationError({"source_run_id": f"Run {source_run.run_id} is not in experiment {experiment.pk}."})
        if not source_run.can_change(actor):
            raise PermissionDenied(
                "Only the run's creator, its experiment's owner or a superuser can log models to it."
            )
    elif not experiment.can_change(actor):
        raise PermissionDenied("Only the experiment's owner or a superuser can log models in it.")
    errors = {}
    if name and (message := name_error(name)):
        errors["name"] = [message]
    if model_type and len(model_type) > 250:
        errors["model_type"] = ["At most 250 characters."]
    if errors:
        raise ValidationError(errors)
    param_values = validated_params(params)
    tag_values = validated_tags(tags)

    model_id = new_logged_model_id()
    created = now_ms()
    logged_model = LoggedModel(
        model_id=model_id,
        experiment=experiment,
        user=actor,
        source_run=source_run,
        name=name or generate_run_name(),
        model_type=model_type or "",
        creation_time=created,
        last_updated_time=created,
        artifact_uri=f"mlflow-artifacts:/{experiment.pk}/models/{model_id}/artifacts",
    )
    with transaction.atomic():
        logged_model.save()
        LoggedModelParam.objects.bulk_create(
            [LoggedModelParam(logged_model=logged_model, key=k, value=v) for k, v in param_values.items()]
        )
        LoggedModelTag.objects.bulk_create(
            [LoggedModelTag(logged_model=logged_model, key=k, value=v) for k, v in tag_values.items()]
        )
    publish(logged_model_event(LOGGED_MODEL_CREATED, logged_model, actor=actor))
    return logged_model


def _touch(logged_model: LoggedModel, **fields) -> None:
    fields["last_updated_time"] = now_ms()
    for field, value in fields.items():
        setattr(logged_model, field, value)
    logged_model.save(update_fields=list(fields))


def logged_model_finalize(*, logged_model: LoggedModel, actor, status: str) -> LoggedModel:
    """Set the final status: READY (its files are uploaded) or UPLOAD_FAILED."""
    _ensure_can_change(logged_model, actor)
    _ensure_active(logged_model)
    if status not in FINAL_STATUSES:
        raise ValidationError(
            {"status": f"Invalid status {status!r}: a logged model is finalized as one of {', '.join(FINAL_STATUSES)}."}
        )
    with transaction.atomic():
        _touch(logged_model, status=status)
    publish(logged_model_event(LOGGED_MODEL_FINALIZED, logged_model, actor=actor))
    return logged_model


def logged_model_log_params(
    *, logged_model: LoggedModel, actor, params: Mapping[str, str] | Iterable[Mapping]
) -> LoggedModel:
    """Add params; a key already there with another value is refused, as a run's params are."""
    _ensure_can_change(logged_model, actor)
    _ensure_active(logged_model)
    values = validated_params(params)
    with transaction.atomic():
        existing = dict(
            LoggedModelParam.objects.select_for_update()
            .filter(logged_model=logged_model, key__in=list(values))
            .values_list("key", "value")
        )
        changed = {
            key: (existing[key], value) for key, value in values.items() if key in existing and existing[key] != value
        }
        if changed:
            raise ValidationError(
                {
                    "params": [
                        f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                        f"value='{old}' for logged model ID='{logged_model.model_id}'. Attempted logging new "
                        f"value '{new}'."
                        for key, (old, new) in list(changed.items())[:10]
                    ]
                }
            )
        LoggedModelParam.objects.bulk_create(
            [
                LoggedModelParam(logged_model=logged_model, key=k, value=v)
                for k, v in values.items()
                if k not in existing
            ]
        )
        _touch(logged_model)
    return logged_model


def logged_model_set_tags(
    *, logged_model: LoggedModel, actor, tags: Mapping[str, str] | Iterable[Mapping]
) -> LoggedModel:
    _ensure_can_change(logged_model, actor)
    _ensure_active(logged_model)
    values = validated_tags(tags)
    with transaction.atomic():
        for key, value in values.items():
            LoggedModelTag.objects.update_or_create(logged_model=logged_model, key=key, defaults={"value": value})
        _touch(logged_model)
    return logged_model


def logged_model_delete_tag(*, logged_model: LoggedModel, actor, key: str) -> None:
    _ensure_can_change(logged_model, actor)
    _ensure_active(logged_model)
    with transaction.atomic():
        deleted, _ = LoggedModelTag.objects.filter(logged_model=logged_model, key=key).delete()
        if not deleted:
            raise LookupError(f"No tag with key {key!r} found for logged model {logged_model.model_id}.")
        _touch(logged_model)


def logged_model_delete(*, logged_model: LoggedModel, actor) -> LoggedModel:
    """Soft delete (MLflow's "deleted" lifecycle stage): its rows and files stay, and the versions
    registered from it keep their own copies."""
    _ensure_can_change(logged_model, actor)
    if logged_model.lifecycle_stage == LifecycleStage.DELETED:
        return logged_model
    with transaction.atomic():
        _touch(logged_model, lifecycle_stage=LifecycleStage.DELETED)
    publish(logged_model_event(LOGGED_MODEL_DELETED, logged_model, actor=actor))
    return logged_model


def run_log_outputs(*, run: Run, actor, model_ids: Iterable[str]) -> None:
    """MLflow's runs/outputs: ``run`` produced these logged models. A logged model made without a
    source run takes this one; one that names another run is refused."""
    if not run.can_change(actor):
        raise PermissionDenied("Only the run's creator, its experiment's owner or a superuser can change it.")
    ids = list(dict.fromkeys(model_ids))
    models = {m.model_id: m for m in logged_models_by_id(ids)}
    if missing := [model_id for model_id in ids if model_id not in models]:
        raise LookupError(f"Logged model with ID '{missing[0]}' not found.")
    for logged_model in models.values():
        if logged_model.source_run_id not in (None, run.pk):
            raise ValidationError({"models": f"Logged model {logged_model.model_id} was logged by another run."})
    with transaction.atomic():
        for logged_model in models.values():
            if logged_model.source_run_id is None:
                _touch(logged_model, source_run=run)


# --- reads ----------------------------------------------------------------------------------------


def logged_models_by_id(model_ids: Iterable[str]) -> QuerySet[LoggedModel]:
    ids = [model_id for model_id in model_ids if isinstance(model_id, str) and LOGGED_MODEL_ID.fullmatch(model_id)]
    return LoggedModel.objects.filter(model_id__in=ids).select_related("experiment", "user", "source_run")


def logged_model_get(model_id: object, *, user, allow_deleted: bool = True) -> LoggedModel | None:
    """The logged model with this id, with its experiment, user and source run, that ``user`` may
    read (every signed-in user reads every one), or None (also for a malformed id)."""
    if not getattr(user, "is_authenticated", False) or not isinstance(model_id, str):
        return None
    models = logged_models_by_id([model_id])
    if not allow_deleted:
        models = models.filter(lifecycle_stage=LifecycleStage.ACTIVE)
    return models.first()


def logged_model_search(*, user, experiment_ids: Iterable[int]) -> QuerySet[LoggedModel]:
    """The active logged models of these experiments, newest first, with their params, tags and
    source run's latest metrics."""
    if not getattr(user, "is_authenticated", False):
        return LoggedModel.objects.none()
    return (
        LoggedModel.objects.filter(experiment_id__in=list(experiment_ids), lifecycle_stage=LifecycleStage.ACTIVE)
        .select_related("experiment", "user", "source_run")
        # Their answers show the source run's latest metrics too: one query for the page, not one a model.
        .prefetch_related("params", "tags", "source_run__latest_metrics")
        .order_by("-creation_time", "model_id")
    )
