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


def source_of(model: MLModel, version: ModelVersion) -> str:
    """Where the client downloads the version from: the registry's own artifact proxy (served under
    ``/api/2.0/mlflow-artifacts/``), never a location elsewhere."""
    return f"mlflow-artifacts:/registry/models/{model.pk}/versions/{version.version_number}"


def model_version(model: MLModel, version: ModelVersion) -> dict:
    number = version.version_number
    aliases = sorted(alias for alias, target in (model.aliases or {}).items() if target == number)
    created_by = getattr(version, "created_by", None)
    return {
        "name": model.name,
        "version": str(number),
        "creation_timestamp": millis(version.created_at),
        "last_updated_timestamp": millis(version.created_at),
        "user_id": created_by.get_username() if created_by is not None else "",
        "current_stage": version_stage(model, number),
        "description": version.note,
        "source": source_of(model, version),
        "run_id": version.run.run_id if version.run_id else "",
        "status": "READY",
        "tags": tags(version.tags),
        "aliases": aliases,
    }


def registered_model(model: MLModel, *, latest: ModelVersion | None = None) -> dict:
    answer = {
        "name": model.name,
        "creation_timestamp": millis(model.created_at),
        "last_updated_timestamp": millis(model.updated_at),
        "user_id": model.owner.get_username(),
        "description": model.description,
        "tags": tags(model.tags),
        "aliases": [
            {"alias": alias, "version": str(number)} for alias, number in sorted((model.aliases or {}).items())
        ],
    }
    if latest is not None:
        answer["latest_versions"] = [model_version(model, latest)]
    return answer
