"""MLflow 3's logged-model endpoints over ``experiments.logged_models``: what ``log_model`` calls
before it registers a version (create, get, finalize, tags, params, search, delete), and
``runs/outputs``, which links the run to the models it logged.

A logged model's message is MLflow's ``{info, data}``; its metrics are its source run's latest ones.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef

from experiments import logged_models as services
from experiments.models import LoggedModel, LoggedModelTag
from mlflow_api import search
from mlflow_api.errors import MlflowError, invalid, missing
from mlflow_api.runs import metric_number, run_of
from mlflow_api.tracking import experiment_by_id
from mlflow_api.views import MlflowView, text
from registry.comparisons import compared

MAX_SEARCH_RESULTS = 1000


def logged_model_shape(logged_model: LoggedModel) -> dict:
    run = logged_model.source_run
    metrics = []
    if run is not None:
        metrics = [
            {
                "key": metric.key,
                "value": metric_number(metric.metric_value),
                "timestamp": metric.timestamp,
                "step": metric.step,
                "model_id": logged_model.model_id,
                "run_id": run.run_id,
            }
            for metric in run.latest_metrics.all()
        ]
    info = {
        "model_id": logged_model.model_id,
        "experiment_id": str(logged_model.experiment_id),
        "name": logged_model.name,
        "creation_timestamp_ms": logged_model.creation_time,
        "last_updated_timestamp_ms": logged_model.last_updated_time,
        "artifact_uri": logged_model.artifact_uri,
        "status": logged_model.status,
        "model_type": logged_model.model_type,
        "source_run_id": run.run_id if run is not None else "",
        "tags": [{"key": tag.key, "value": tag.value} for tag in logged_model.tags.all()],
    }
    if logged_model.status_message:
        info["status_message"] = logged_model.status_message
    return {
        "info": info,
        "data": {"params": [{"key": p.key, "value": p.value} for p in logged_model.params.all()], "metrics": metrics},
    }


def logged_model_of(request, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
    logged_model = services.logged_model_get(model_id, user=request.user, allow_deleted=allow_deleted)
    if logged_model is None:
        raise missing(f"Logged model with ID '{model_id}' not found.")
    return logged_model


def _entries(fields: dict, name: str) -> list:
    value = fields.get(name) or []
    if not isinstance(value, list):
        raise invalid(f"Invalid value for parameter '{name}': a list of {{key, value}} objects is expected.")
    return value


class CreateLoggedModel(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        experiment = experiment_by_id(request, text(fields, "experiment_id"))
        source_run = run_of(request, {"run_id": fields["source_run_id"]}) if fields.get("source_run_id") else None
        logged_model = services.logged_model_create(
            experiment=experiment,
            actor=request.user,
            name=text(fields, "name", required=False) or None,
            model_type=text(fields, "model_type", required=False),
            source_run=source_run,
            params=_entries(fields, "params"),
            tags=_entries(fields, "tags"),
        )
        return {"model": logged_model_shape(logged_model)}


class LoggedModelDetail(MlflowView):
    """``logged-models/{model_id}``: GET reads it, PATCH finalizes it, DELETE deletes it."""

    method = ("GET", "PATCH", "DELETE")

    def handle_get(self, request, fields, *, model_id: str):
        allow_deleted = str(fields.get("allow_deleted", "")).lower() == "true"
        return {"model": logged_model_shape(logged_model_of(request, model_id, allow_deleted=allow_deleted))}

    def handle_patch(self, request, fields, *, model_id: str):
        logged_model = services.logged_model_finalize(
            logged_model=logged_model_of(request, model_id), actor=request.user, status=text(fields, "status")
        )
        return {"model": logged_model_shape(logged_model)}

    def handle_delete(self, request, fields, *, model_id: str):
        services.logged_model_delete(logged_model=logged_model_of(request, model_id), actor=request.user)
        return {}


class SetLoggedModelTags(MlflowView):
    method = "PATCH"

    def handle(self, request, fields, *, model_id: str):
        logged_model = logged_model_of(request, model_id)
        services.logged_model_set_tags(logged_model=logged_model, actor=request.user, tags=_entries(fields, "tags"))
        return {}


class DeleteLoggedModelTag(MlflowView):
    method = "DELETE"

    def handle(self, request, fields, *, model_id: str, tag_key: str):
        logged_model = logged_model_of(request, model_id)
        try:
            services.logged_model_delete_tag(logged_model=logged_model, actor=request.user, key=tag_key)
        except LookupError as error:
            raise missing(str(error)) from None
        return {}


class LogLoggedModelParams(MlflowView):
    method = "POST"

    def handle(self, request, fields, *, model_id: str):
        logged_model = logged_model_of(request, model_id)
        services.logged_model_log_params(
            logged_model=logged_model, actor=request.user, params=_entries(fields, "params")
        )
        return {}


# The attributes a logged-model filter compares (MLflow's SearchLoggedModelsUtils), as columns.
FILTER_COLUMNS = {
    "name": "name",
    "model_id": "model_id",
    "source_run_id": "source_run__run_id",
    "status": "status",
    "model_type": "model_type",
}


def _filtered(logged_models, text_filter: str):
    """``logged_models`` meeting MLflow's filter: the attributes above and ``tags.<key>`` compared
    as strings, clauses joined by AND."""
    for clause in search.parse(text_filter, allowed=set(FILTER_COLUMNS), lists=frozenset(FILTER_COLUMNS)):
        if clause.key == "tag":
            rows = LoggedModelTag.objects.filter(logged_model=OuterRef("pk"), key=clause.tag)
            logged_models = logged_models.filter(
                Exists(rows.filter(compared("value", clause.comparator, clause.value)))
            )
        else:
            logged_models = logged_models.filter(compared(FILTER_COLUMNS[clause.key], clause.comparator, clause.value))
    return logged_models


class SearchLoggedModels(MlflowView):
    """The active logged models of the given experiments, newest first, with page tokens; filtered
    on their attributes and tags (MLflow's filter on metrics and datasets, and order_by, are not
    served: refused rather than ignored)."""

    method = "POST"

    def handle(self, request, fields):
        ids = fields.get("experiment_ids") or []
        if not isinstance(ids, list) or not ids:
            raise invalid("Missing value for required parameter 'experiment_ids'.")
        text_filter = text(fields, "filter", required=False)
        if fields.get("datasets"):
            raise MlflowError("NOT_IMPLEMENTED", "Searching logged models by dataset is not served.")
        if fields.get("order_by"):
            raise MlflowError("NOT_IMPLEMENTED", "Ordering logged models is not served; the newest come first.")
        experiments = [experiment_by_id(request, experiment_id) for experiment_id in ids]
        limit = search.max_results(fields.get("max_results"), default=100, threshold=MAX_SEARCH_RESULTS)
        offset = search.offset_of(fields.get("page_token"))
        found = _filtered(
            services.logged_model_search(user=request.user, experiment_ids=[e.pk for e in experiments]), text_filter
        )
        page = list(found[offset : offset + limit + 1])
        answer = {"models": [logged_model_shape(model) for model in page[:limit]]}
        if len(page) > limit:
            answer["next_page_token"] = search.page_token(offset + limit)
        return answer


class LogOutputs(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        run = run_of(request, fields)
        models = fields.get("models") or []
        if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
            raise invalid("Invalid value for parameter 'models': a list of {model_id, step} objects is expected.")
        try:
            services.run_log_outputs(run=run, actor=request.user, model_ids=[text(m, "model_id") for m in models])
        except LookupError as error:
            raise missing(str(error)) from None
        return {}
