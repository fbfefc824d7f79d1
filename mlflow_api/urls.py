"""The MLflow REST API's paths (``/api/2.0/mlflow/…``, and ``/ajax-api/2.0/mlflow/…`` as MLflow's
own server serves them too). Anything else under those prefixes is MLflow's ENDPOINT_NOT_FOUND."""

from django.urls import path, re_path

from mlflow_api import logged_models, registry, runs, tracking
from mlflow_api.views import endpoint_not_found

ENDPOINTS = {
    "registered-models/create": registry.CreateRegisteredModel,
    "registered-models/get": registry.GetRegisteredModel,
    "registered-models/rename": registry.RenameRegisteredModel,
    "registered-models/update": registry.UpdateRegisteredModel,
    "registered-models/delete": registry.DeleteRegisteredModel,
    "registered-models/search": registry.SearchRegisteredModels,
    "registered-models/get-latest-versions": registry.GetLatestVersions,
    "registered-models/set-tag": registry.SetRegisteredModelTag,
    "registered-models/delete-tag": registry.DeleteRegisteredModelTag,
    "registered-models/alias": registry.RegisteredModelAlias,
    "model-versions/create": registry.CreateModelVersion,
    "model-versions/get": registry.GetModelVersion,
    "model-versions/update": registry.UpdateModelVersion,
    "model-versions/delete": registry.DeleteModelVersion,
    "model-versions/search": registry.SearchModelVersions,
    "model-versions/get-download-uri": registry.GetModelVersionDownloadUri,
    "model-versions/transition-stage": registry.TransitionModelVersionStage,
    "model-versions/set-tag": registry.SetModelVersionTag,
    "model-versions/delete-tag": registry.DeleteModelVersionTag,
    "experiments/get-by-name": tracking.GetExperimentByName,
    "experiments/get": tracking.GetExperiment,
    "experiments/create": tracking.CreateExperiment,
    "experiments/search": tracking.SearchExperiments,
    "experiments/update": tracking.UpdateExperiment,
    "experiments/delete": tracking.DeleteExperiment,
    "experiments/set-experiment-tag": tracking.SetExperimentTag,
    "runs/create": runs.CreateRun,
    "runs/get": runs.GetRun,
    "runs/update": runs.UpdateRun,
    "runs/delete": runs.DeleteRun,
    "runs/restore": runs.RestoreRun,
    "runs/search": runs.SearchRuns,
    "runs/log-batch": runs.LogBatch,
    "runs/log-metric": runs.LogMetric,
    "runs/log-parameter": runs.LogParam,
    "runs/set-tag": runs.SetTag,
    "runs/delete-tag": runs.DeleteTag,
    "metrics/get-history": runs.GetMetricHistory,
    "runs/outputs": logged_models.LogOutputs,
    "logged-models": logged_models.CreateLoggedModel,
    "logged-models/search": logged_models.SearchLoggedModels,
}
# MLflow 3's logged models are addressed by their id in the path: m-<32 hex digits>.
LOGGED_MODEL = "logged-models/<str:model_id>"

urlpatterns = [
    *(path(route, view.as_view(), name=f"mlflow-{route.replace('/', '-')}") for route, view in ENDPOINTS.items()),
    path(LOGGED_MODEL, logged_models.LoggedModelDetail.as_view(), name="mlflow-logged-model"),
    path(f"{LOGGED_MODEL}/tags", logged_models.SetLoggedModelTags.as_view(), name="mlflow-logged-model-tags"),
    path(
        f"{LOGGED_MODEL}/tags/<path:tag_key>",
        logged_models.DeleteLoggedModelTag.as_view(),
        name="mlflow-logged-model-tag",
    ),
    path(f"{LOGGED_MODEL}/params", logged_models.LogLoggedModelParams.as_view(), name="mlflow-logged-model-params"),
    re_path(r"^.*$", endpoint_not_found, name="mlflow-endpoint-not-found"),
]
