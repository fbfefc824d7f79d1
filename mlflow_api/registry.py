"""MLflow's model registry endpoints over our models: thin handlers calling mlmodels' services and
selectors (the same access rules as API v1: everyone signed in reads, owners and superusers change)."""

from __future__ import annotations

from rest_framework.response import Response

from experiments import runs as run_services
from mlflow_api import search, sources
from mlflow_api.errors import MlflowError, invalid, missing
from mlflow_api.shapes import MLFLOW_TO_STAGE, STAGE_TO_MLFLOW, model_version, registered_model
from mlflow_api.views import MlflowView, integer, text
from mlmodels import selectors, services
from mlmodels.models import MLModel, ModelVersion
from registry.validators import normalize_name, validate_tag

ORDER_KEYS_MODELS = {"name": "name", "creation_timestamp": "created_at", "last_updated_timestamp": "updated_at"}
ORDER_KEYS_VERSIONS = {
    "name": "model__name",
    "version_number": "version_number",
    "creation_timestamp": "created_at",
    "last_updated_timestamp": "created_at",
}


def model_named(request, name: str) -> MLModel:
    model = selectors.model_by_name(user=request.user, name=name)
    if model is None:
        raise missing(f"Registered Model with name={name} not found")
    return model


def version_of(request, model: MLModel, number: int) -> ModelVersion:
    version = selectors.version_get(user=request.user, model_id=model.pk, number=number)
    if version is None:
        raise missing(f"Model Version (name={model.name}, version={number}) not found")
    return version


def latest_of(model: MLModel) -> ModelVersion | None:
    return model.versions.select_related("created_by").filter(version_number=model.latest_version).first()


def _tag_list(fields: dict) -> list[tuple[str, str]]:
    tags = fields.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, dict) for tag in tags):
        raise invalid("Invalid value for parameter 'tags': a list of {key, value} objects is expected.")
    return [(text(tag, "key"), text(tag, "value", required=False)) for tag in tags]


def _ordering(values, keys: dict[str, str], default: list[str]) -> list[str]:
    if not values:
        return default
    values = values if isinstance(values, list) else [values]
    ordering = []
    for value in values:
        parts = str(value).split()
        if not parts or len(parts) > 2 or parts[0] not in keys:
            raise invalid(f"Invalid order_by clause '{value}'. Keys are {sorted(keys)}, then ASC or DESC.")
        direction = parts[1].upper() if len(parts) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise invalid(f"Invalid order_by clause '{value}': the direction is ASC or DESC.")
        ordering.append(("-" if direction == "DESC" else "") + keys[parts[0]])
    return ordering


def _filtered(queryset, clauses, *, fields: dict[str, str]):
    for clause in clauses:
        if clause.key == "tag":
            if clause.comparator == "=":
                queryset = queryset.tagged(clause.tag, clause.value)
            elif clause.comparator == "!=":
                queryset = queryset.exclude(id__in=queryset.tagged(clause.tag, clause.value).values("id"))
            else:
                raise invalid(f"Tags are compared with = or != here, not {clause.comparator}.")
            continue
        if clause.key not in fields:
            raise invalid(f"Filtering by '{clause.key}' is not supported here.")
        column = fields[clause.key]
        if clause.comparator == "=":
            queryset = queryset.filter(**{column: clause.value})
        elif clause.comparator == "!=":
            queryset = queryset.exclude(**{column: clause.value})
        elif clause.comparator == "IN":
            queryset = queryset.filter(**{f"{column}__in": clause.value})
        else:
            lookup = "regex" if clause.comparator == "LIKE" else "iregex"
            pattern = f"^{search.like_pattern(clause.value).pattern}$"
            queryset = queryset.filter(**{f"{column}__{lookup}": pattern})
    return queryset


def _page(queryset, fields: dict, *, default: int, threshold: int) -> tuple[list, str | None]:
    limit = search.max_results(fields.get("max_results"), default=default, threshold=threshold)
    offset = search.offset_of(fields.get("page_token"))
    rows = list(queryset[offset : offset + limit + 1])
    token = search.page_token(offset + limit) if len(rows) > limit else None
    return rows[:limit], token


# --- registered models ------------------------------------------------------------------------------


class CreateRegisteredModel(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        name = text(fields, "name")
        tags = _tag_list(fields)
        if selectors.model_by_name(user=request.user, name=name) is not None:
            raise MlflowError("RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists.")
        model = services.model_create(
            owner=request.user,
            actor=request.user,
            name=name,
            description=text(fields, "description", required=False),
            initial_version=False,
        )
        for key, value in tags:
            services.tag_set(model=model, actor=request.user, key=key, value=value)
        model.refresh_from_db()
        return {"registered_model": registered_model(model)}


class GetRegisteredModel(MlflowView):
    def handle(self, request, fields):
        model = model_named(request, text(fields, "name"))
        return {"registered_model": registered_model(model, latest=latest_of(model))}


class RenameRegisteredModel(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        model = model_named(request, text(fields, "name"))
        new_name = text(fields, "new_name")
        taken = selectors.model_by_name(user=request.user, name=new_name)
        if taken is not None and taken.pk != model.pk:
            raise MlflowError("RESOURCE_ALREADY_EXISTS", f"Registered Model (name={new_name}) already exists.")
        model = services.model_update(model=model, actor=request.user, data={"name": normalize_name(new_name)})
        return {"registered_model": registered_model(model)}


class UpdateRegisteredModel(MlflowView):
    method = "PATCH"

    def handle(self, request, fields):
        model = model_named(request, text(fields, "name"))
        description = text(fields, "description", required=False)
        model = services.model_update(model=model, actor=request.user, data={"description": description})
        return {"registered_model": registered_model(model)}


class DeleteRegisteredModel(MlflowView):
    method = "DELETE"

    def handle(self, request, fields):
        services.model_delete(model=model_named(request, text(fields, "name")), actor=request.user)
        return {}


class SearchRegisteredModels(MlflowView):
    def handle(self, request, fields):
        clauses = search.parse(fields.get("filter"), allowed={"name"})
        models = selectors.model_list(user=request.user).select_related("owner")
        models = _filtered(models, clauses, fields={"name": "name"})
        ordering = _ordering(fields.get("order_by"), ORDER_KEYS_MODELS, ["name"])
        rows, token = _page(models.order_by(*ordering, "id"), fields, default=100, threshold=1000)
        answer = {"registered_models": [registered_model(model) for model in rows]}
        if token:
            answer["next_page_token"] = token
        return answer


class GetLatestVersions(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        model = model_named(request, text(fields, "name"))
        stages = fields.get("stages") or []
        stages = stages if isinstance(stages, list) else [stages]
        unknown = [stage for stage in stages if str(stage).lower() not in MLFLOW_TO_STAGE]
        if unknown:
            raise invalid(
                f"Invalid Model Version stage: {unknown[0]}. Value must be one of {list(STAGE_TO_MLFLOW.values())}."
            )
        latest = latest_of(model)
        wanted = {str(stage).lower() for stage in stages}
        stage = STAGE_TO_MLFLOW[model.lifecycle].lower()
        versions = [latest] if latest is not None and (not wanted or stage in wanted) else []
        return {"model_versions": [model_version(model, version) for version in versions]}


class SetRegisteredModelTag(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        model = model_named(request, text(fields, "name"))
        services.tag_set(
            model=model, actor=request.user, key=text(fields, "key"), value=text(fields, "value", required=False)
        )
        return {}


class DeleteRegisteredModelTag(MlflowView):
    method = "DELETE"

    def handle(self, request, fields):
        model = model_named(request, text(fields, "name"))
        key = text(fields, "key")
        try:
            services.tag_delete(model=model, actor=request.user, key=key)
        except LookupError:
            raise missing(f"Registered model tag with name={model.name}, key={key} not found") from None
        return {}


class RegisteredModelAlias(MlflowView):
    """One path, three calls: POST sets, DELETE removes, GET resolves (get-model-version-by-alias)."""

    def _dispatch(self, request, *args, **kwargs):
        fields = self.fields(request)
        model = model_named(request, text(fields, "name"))
        alias = text(fields, "alias")
        if request.method == "GET":
            number = (model.aliases or {}).get(alias)
            if number is None:
                raise missing(f"Registered model alias {alias} not found.")
            return Response({"model_version": model_version(model, version_of(request, model, number))})
        if request.method == "POST":
            pending = services.alias_set(
                model=model, actor=request.user, alias=alias, version_number=integer(fields, "version")
            )
        elif request.method == "DELETE":
            if alias not in (model.aliases or {}):
                raise missing(f"Registered model alias {alias} not found.")
            pending = services.alias_delete(model=model, actor=request.user, alias=alias)
        else:
            raise MlflowError("ENDPOINT_NOT_FOUND", f"This endpoint takes GET, POST or DELETE, not {request.method}.")
        if pending is not None:
            raise MlflowError(
                "PERMISSION_DENIED",
                f"The alias {alias} is protected: approval request #{pending.pk} waits for an approver.",
            )
        return Response({})

    get = post = delete = patch = put = _dispatch


# --- model versions ------------------------------------------------------------------------------


class GetModelVersion(MlflowView):
    def handle(self, request, fields):
        model = model_named(request, text(fields, "name"))
        return {"model_version": model_version(model, version_of(request, model, integer(fields, "version")))}


class UpdateModelVersion(MlflowView):
    method = "PATCH"

    def handle(self, request, fields):
        raise MlflowError(
            "NOT_IMPLEMENTED",
            "A version is an immutable snapshot here: its description is the note it was recorded with.",
        )


class DeleteModelVersion(MlflowView):
    method = "DELETE"

    def handle(self, request, fields):
        model = model_named(request, text(fields, "name"))
        number = integer(fields, "version")
        version_of(request, model, number)
        services.version_delete(model=model, actor=request.user, version_number=number)
        return {}


class SearchModelVersions(MlflowView):
    def handle(self, request, fields):
        clauses = search.parse(fields.get("filter"), allowed={"name", "version_number", "run_id", "source_path"})
        versions = ModelVersion.objects.filter(model__in=selectors.model_list(user=request.user))
        if any(clause.key == "run_id" and clause.comparator != "!=" for clause in clauses):
            versions = versions.none()  # no version of ours comes from an MLflow run yet
        clauses = [clause for clause in clauses if clause.key not in ("run_id", "source_path")]
        versions = _filtered(versions, clauses, fields={"name": "model__name", "version_number": "version_number"})
        ordering = _ordering(fields.get("order_by"), ORDER_KEYS_VERSIONS, ["model__name", "-version_number"])
        versions = versions.select_related("model", "created_by").order_by(*ordering, "id")
        rows, token = _page(versions, fields, default=10_000, threshold=200_000)
        answer = {"model_versions": [model_version(version.model, version) for version in rows]}
        if token:
            answer["next_page_token"] = token
        return answer


class GetModelVersionDownloadUri(MlflowView):
    def handle(self, request, fields):
        model = model_named(request, text(fields, "name"))
        version = version_of(request, model, integer(fields, "version"))
        return {"artifact_uri": model_version(model, version)["source"]}


class TransitionModelVersionStage(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        model = model_named(request, text(fields, "name"))
        number = integer(fields, "version")
        version = version_of(request, model, number)
        stage = text(fields, "stage")
        if stage.lower() not in MLFLOW_TO_STAGE:
            raise invalid(
                f"Invalid Model Version stage: {stage}. Value must be one of {list(STAGE_TO_MLFLOW.values())}."
            )
        if number != model.latest_version:
            raise invalid(
                f"Only the current version (version {model.latest_version}) of {model.name} has a stage here: "
                f"the model's. Roll back to version {number} first to make it current."
            )
        pending = services.lifecycle_move(model=model, actor=request.user, to_stage=MLFLOW_TO_STAGE[stage.lower()])
        if pending is not None:
            raise MlflowError(
                "PERMISSION_DENIED", f"Production needs an approval: request #{pending.pk} waits for an approver."
            )
        model.refresh_from_db()
        return {"model_version": model_version(model, version)}


class SetModelVersionTag(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        model = model_named(request, text(fields, "name"))
        number = integer(fields, "version")
        version_of(request, model, number)
        services.tag_set(
            model=model, actor=request.user, key=text(fields, "key"), value=text(fields, "value", required=False),
            version_number=number,
        )  # fmt: skip
        return {}


class DeleteModelVersionTag(MlflowView):
    method = "DELETE"

    def handle(self, request, fields):
        model = model_named(request, text(fields, "name"))
        number = integer(fields, "version")
        version_of(request, model, number)
        key = text(fields, "key")
        try:
            services.tag_delete(model=model, actor=request.user, key=key, version_number=number)
        except LookupError:
            raise missing(f"Model version tag with name={model.name}, version={number}, key={key} not found") from None
        return {}


class CreateModelVersion(MlflowView):
    """A new version of a registered model, its files copied inside our storage from the folder its
    ``source`` names (mlflow_api/sources.py), linked to the run it came from, whose metrics named
    like ours (accuracy, precision, recall, f1_score) become the version's."""

    method = "POST"

    def handle(self, request, fields):
        model = model_named(request, text(fields, "name"))
        tags = _tag_list(fields)
        for key, value in tags:
            validate_tag(key, value)
        source = sources.resolve(
            request, source=fields.get("source"), run_id=fields.get("run_id"), model_id=fields.get("model_id")
        )
        data = {}
        if source.run is not None:
            data = run_services.version_data(source.run)
            if source.run.experiment.can_change(request.user):
                data["experiment"] = source.run.experiment
        try:
            version = services.version_create_from_stored(
                model=model,
                actor=request.user,
                source_prefix=source.prefix,
                note=text(fields, "description", required=False),
                data=data,
                run=source.run,
            )
        except LookupError as error:
            raise missing(str(error)) from None
        for key, value in tags:
            services.tag_set(
                model=model, actor=request.user, key=key, value=value, version_number=version.version_number
            )
        model.refresh_from_db()
        version.refresh_from_db()
        return {"model_version": model_version(model, version)}
