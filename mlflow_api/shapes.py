"""Our objects as MLflow's registry messages (``model_registry.proto``), in its JSON form.

A registered model is an MLModel, a model version a ModelVersion (``version`` as a string, times in
epoch milliseconds). MLflow's stages are per version; ours is the model's: the current (newest)
version carries the model's stage, older versions "None".
"""

from __future__ import annotations

from mlmodels.models import MLModel, ModelVersion, Stage

STAGE_TO_MLFLOW = {
    Stage.DEVELOPMENT: "None",
    Stage.STAGING: "Staging",
    Stage.PRODUCTION: "Production",
    Stage.ARCHIVED: "Archived",
}
MLFLOW_TO_STAGE = {name.lower(): stage for stage, name in STAGE_TO_MLFLOW.items()}


def millis(moment) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def tags(mapping: dict) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in sorted((mapping or {}).items())]


def version_stage(model: MLModel, number: int) -> str:
    return STAGE_TO_MLFLOW[model.lifecycle] if number == model.latest_version else "None"


SOURCE_PREFIX = "mlflow-artifacts:/registry/models/"


def source_uri(model_id: int, number: int) -> str:
    """Where the client downloads a version from: the registry's own artifact proxy (served under
    ``/api/2.0/mlflow-artifacts/``), never a location elsewhere."""
    return f"{SOURCE_PREFIX}{model_id}/versions/{number}"


def source_of(model: MLModel, version: ModelVersion) -> str:
    return source_uri(model.pk, version.version_number)


def _version_message(*, name, number, created, user, stage, description, source, run_id, tags_of, aliases_of) -> dict:
    return {
        "name": name,
        "version": str(number),
        "creation_timestamp": created,
        "last_updated_timestamp": created,
        "user_id": user,
        "current_stage": stage,
        "description": description,
        "source": source,
        "run_id": run_id,
        "status": "READY",
        "tags": tags(tags_of),
        "aliases": sorted(alias for alias, target in (aliases_of or {}).items() if target == number),
    }


def model_version(model: MLModel, version: ModelVersion) -> dict:
    number = version.version_number
    created_by = getattr(version, "created_by", None)
    return _version_message(
        name=model.name,
        number=number,
        created=millis(version.created_at),
        user=created_by.get_username() if created_by is not None else "",
        stage=version_stage(model, number),
        description=version.note,
        source=source_of(model, version),
        run_id=version.run.run_id if version.run_id else "",
        tags_of=version.tags,
        aliases_of=model.aliases,
    )


# What a page of model-versions/search reads: these columns of ModelVersion, no instances.
VERSION_COLUMNS = (
    "model_id",
    "model__name",
    "model__lifecycle",
    "model__latest_version",
    "model__aliases",
    "version_number",
    "created_at",
    "created_by__username",
    "note",
    "tags",
    "run__run_id",
)


def model_version_rows(rows) -> list[dict]:
    """The messages of rows of VERSION_COLUMNS, as ``model_version`` shows each version."""
    current = STAGE_TO_MLFLOW
    return [
        _version_message(
            name=name,
            number=number,
            created=millis(created_at),
            user=username or "",
            stage=current[lifecycle] if number == latest else "None",
            description=note,
            source=source_uri(model_id, number),
            run_id=run_id or "",
            tags_of=version_tags,
            aliases_of=aliases,
        )
        for model_id, name, lifecycle, latest, aliases, number, created_at, username, note, version_tags, run_id in rows
    ]


def _model_message(*, name, created, updated, user, description, tags_of, aliases_of) -> dict:
    return {
        "name": name,
        "creation_timestamp": created,
        "last_updated_timestamp": updated,
        "user_id": user,
        "description": description,
        "tags": tags(tags_of),
        "aliases": [{"alias": alias, "version": str(number)} for alias, number in sorted((aliases_of or {}).items())],
    }


def registered_model(model: MLModel, *, latest: ModelVersion | None = None) -> dict:
    answer = _model_message(
        name=model.name,
        created=millis(model.created_at),
        updated=millis(model.updated_at),
        user=model.owner.get_username(),
        description=model.description,
        tags_of=model.tags,
        aliases_of=model.aliases,
    )
    if latest is not None:
        answer["latest_versions"] = [model_version(model, latest)]
    return answer


# What a page of registered-models/search reads: these columns of MLModel, no instances.
MODEL_COLUMNS = ("name", "created_at", "updated_at", "owner__username", "description", "tags", "aliases")


def registered_model_rows(rows) -> list[dict]:
    """The messages of rows of MODEL_COLUMNS, as ``registered_model`` shows each model."""
    return [
        _model_message(
            name=name,
            created=millis(created_at),
            updated=millis(updated_at),
            user=username,
            description=description,
            tags_of=model_tags,
            aliases_of=aliases,
        )
        for name, created_at, updated_at, username, description, model_tags, aliases in rows
    ]


# What registered-models/get and a page of registered-models/search read: MODEL_COLUMNS with what
# the current version's message needs beyond them (``selectors.with_current_version`` joins it as
# ``current``).
MODEL_WITH_CURRENT_COLUMNS = (
    "pk",
    "lifecycle",
    "latest_version",
    *MODEL_COLUMNS,
    "current__created_at",
    "current__created_by__username",
    "current__note",
    "current__tags",
    "current__run__run_id",
)


def registered_model_with_current_rows(rows) -> list[dict]:
    """The messages of rows of MODEL_WITH_CURRENT_COLUMNS: each model as ``registered_model_rows``
    shows it, with ``latest_versions`` holding its current version (as ``model_version_rows`` shows
    it) when it has one."""
    messages = []
    for pk, lifecycle, latest, *model, created_at, username, note, version_tags, run_id in rows:
        [message] = registered_model_rows([model])
        if created_at is not None:
            name, *_, aliases = model
            version = (pk, name, lifecycle, latest, aliases, latest, created_at, username, note, version_tags, run_id)
            message["latest_versions"] = model_version_rows([version])
        messages.append(message)
    return messages
