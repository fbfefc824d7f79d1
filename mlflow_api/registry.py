"""MLflow's model registry endpoints over our models: thin handlers calling mlmodels' services and
selectors (the same access rules as API v1: everyone signed in reads, owners and superusers change)."""

from __future__ import annotations

from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat
from rest_framework.response import Response

from experiments import runs as run_services
from mlflow_api import search, sources
from mlflow_api.errors import MlflowError, invalid, missing
from mlflow_api.shapes import (
    MLFLOW_TO_STAGE,
    MODEL_WITH_CURRENT_COLUMNS,
    SOURCE_PREFIX,
    STAGE_TO_MLFLOW,
    VERSION_COLUMNS,
    model_version,
    model_version_rows,
    registered_model,
    registered_model_with_current_rows,
)
from mlflow_api.views import MlflowView, integer, text
from mlmodels import selectors, services
from mlmodels.models import MLModel, ModelVersion
from registry.api.renderers import FastJSONRenderer
from registry.comparisons import compared
from registry.validators import normalize_name, validate_tag

# MLflow's order_by keys by our columns (a version's last update is its creation: a version is a
# snapshot), and the order MLflow breaks ties in.
ORDER_KEYS_MODELS = {
    "name": "name",
    "timestamp": "updated_at",
    "last_updated_timestamp": "updated_at",
    "creation_timestamp": "created_at",
}
ORDER_KEYS_VERSIONS = {
    "name": "model__name",
    "version_number": "version_number",
    "creation_timestamp": "created_at",
    "last_updated_timestamp": "created_at",
}
MODEL_TIES = ["name"]
VERSION_TIES = ["model__name", "-version_number"]
VERSION_DEFAULT_ORDER = ["-created_at", *VERSION_TIES]
# MLflow's prompts are registered models (and versions) with this tag; a search leaves them out
# unless its filter asks for them (MLflow's _is_querying_prompt).
PROMPT_TAG = "mlflow.prompt.is_prompt"
# A version's source (shapes.source_uri) as a column, for source_path filters.
SOURCE_PATH = Concat(
    Value(SOURCE_PREFIX),
    Cast("model_id", CharField()),
    Value("/versions/"),
    Cast("version_number", CharField()),
    output_field=CharField(),
)


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
    return model.versions.select_related("created_by", "run").filter(version_number=model.latest_version).first()


def _tag_list(fields: dict) -> list[tuple[str, str]]:
    tags = fields.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, dict) for tag in tags):
        raise invalid("Invalid value for parameter 'tags': a list of {key, value} objects is expected.")
    return [(text(tag, "key"), text(tag, "value", required=False)) for tag in tags]


def _ordering(values, keys: dict[str, str], *, ties: list[str]) -> list[str]:
    """MLflow's order_by as columns, then the ``ties`` not ordered by already."""
    ordering, seen = [], set()
    for word, ascending, term in search.order_terms(values):
        key = word.removeprefix("attributes.").removeprefix("attribute.").strip("`")
        if key not in keys:
            raise invalid(f"Invalid order_by clause '{term}'. Keys are {sorted(keys)}, then ASC or DESC.")
        if key in seen:
            raise invalid(f"`order_by` contains duplicate fields: {values}")
        seen.add(key)
        ordering.append(keys[key] if ascending else f"-{keys[key]}")
    columns = {term.lstrip("-") for term in ordering}
    return ordering + [tie for tie in ties if tie.lstrip("-") not in columns]


def _asks_for_prompts(clauses) -> bool:
    for clause in clauses:
        if clause.key == "tag" and clause.tag == PROMPT_TAG:
            value = str(clause.value).lower()
            return (clause.comparator == "=" and value == "true") or (clause.comparator == "!=" and value == "false")
    return False


def _filtered(queryset, clauses, *, columns: dict[str, str | None]):
    """``queryset`` (a TaggedQuerySet) meeting MLflow's ``clauses``: tags through ``tagged``, the
    attributes ``columns`` maps compared on those columns (None: no row has it, so none meets it)."""
    if not _asks_for_prompts(clauses):
        queryset = queryset.untagged(PROMPT_TAG, "true")
        clauses = [clause for clause in clauses if not (clause.key == "tag" and clause.tag == PROMPT_TAG)]
    for clause in clauses:
        if clause.key == "tag":
            queryset = queryset.tagged(clause.tag, clause.value, comparator=clause.comparator)
        elif columns.get(clause.key) is None:
            queryset = queryset.none()
        else:
            queryset = queryset.filter(compared(columns[clause.key], clause.comparator, clause.value))
    return queryset


def _page(queryset, ordering: list[str], fields: dict, *, columns, default: int, threshold: int):
    """A page of ``queryset`` in ``ordering`` as rows of ``columns`` (no model instances), and the
    next page's token (or None): one query, whatever the page's size. The default orders walk an
    index (mlmodel_name_idx, modelversion_created_at_idx) instead of sorting the table."""
    limit = search.max_results(fields.get("max_results"), default=default, threshold=threshold)
    offset = search.offset_of(fields.get("page_token"))
    rows = list(queryset.order_by(*ordering).values_list(*columns)[offset : offset + limit + 1])
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
        name = text(fields, "name")
        # The columns the answer shows, as a search's rows, its current version with them: one query
        # (a client reads a model before its versions).
        models = selectors.with_current_version(selectors.models_named(user=request.user, name=name))
        rows = list(models.values_list(*MODEL_WITH_CURRENT_COLUMNS))
        if not rows:
            raise missing(f"Registered Model with name={name} not found")
        [answer] = registered_model_with_current_rows(rows)
        return {"registered_model": answer}


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
    renderer_classes = [FastJSONRenderer]

    def handle(self, request, fields):
        clauses = search.parse(text(fields, "filter", required=False), allowed={"name"}, lists=frozenset({"name"}))
        models = _filtered(selectors.model_list(user=request.user), clauses, columns={"name": "name"})
        ordering = _ordering(fields.get("order_by"), ORDER_KEYS_MODELS, ties=MODEL_TIES)
        # Each model with its current version, as MLflow answers a search (and a get): one query.
        rows, token = _page(
            selectors.with_current_version(models),
            ordering,
            fields,
            columns=MODEL_WITH_CURRENT_COLUMNS,
            default=100,
            threshold=1000,
        )
        found = registered_model_with_current_rows(rows)
        answer = {"registered_models": found}
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
        name, number = text(fields, "name"), integer(fields, "version")
        # The columns the answer shows, as a search's rows: the commonest call of a deployment.
        versions = selectors.versions_by_model_name(user=request.user, name=name).filter(version_number=number)
        rows = model_version_rows(versions.values_list(*VERSION_COLUMNS)[:1])
        if not rows:
            model_named(request, name)  # says which is missing: the model, or its version
            raise missing(f"Model Version (name={name}, version={number}) not found")
        return {"model_version": rows[0]}


class UpdateModelVersion(MlflowView):
    """A version's description is its note: descriptive text, changed without a new version."""

    method = "PATCH"

    def handle(self, request, fields):
        model = model_named(request, text(fields, "name"))
        number = integer(fields, "version")
        version = version_of(request, model, number)
        description = fields.get("description")
        if description is not None:
            if not isinstance(description, str):
                raise invalid(f"Invalid value {description!r} for parameter 'description': a string is expected.")
            version = services.version_note_set(
                model=model, actor=request.user, version_number=number, note=description
            )
        return {"model_version": model_version(model, version)}


class DeleteModelVersion(MlflowView):
    method = "DELETE"

    def handle(self, request, fields):
        model = model_named(request, text(fields, "name"))
        number = integer(fields, "version")
        version_of(request, model, number)
        services.version_delete(model=model, actor=request.user, version_number=number)
        return {}


class SearchModelVersions(MlflowView):
    renderer_classes = [FastJSONRenderer]
    # A version registered without a run has no run_id: it meets no run_id clause, != included.
    COLUMNS = {
        "name": "model__name",
        "version_number": "version_number",
        "source_path": "source_path",
        "run_id": "run__run_id",
    }

    def handle(self, request, fields):
        clauses = search.parse(
            text(fields, "filter", required=False),
            allowed={"name", "version_number", "run_id", "source_path"},
            lists=frozenset({"name", "run_id"}),
            numbers=frozenset({"version_number"}),
        )
        versions = selectors.readable_versions(user=request.user)
        if any(clause.key == "source_path" for clause in clauses):
            versions = versions.alias(source_path=SOURCE_PATH)
        versions = _filtered(versions, clauses, columns=self.COLUMNS)
        ordering = (
            _ordering(fields.get("order_by"), ORDER_KEYS_VERSIONS, ties=VERSION_TIES)
            if fields.get("order_by")
            else VERSION_DEFAULT_ORDER
        )
        rows, token = _page(versions, ordering, fields, columns=VERSION_COLUMNS, default=10_000, threshold=200_000)
        answer = {"model_versions": model_version_rows(rows)}
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
