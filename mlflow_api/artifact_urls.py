"""The routes of MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/…``) and of its server-info
probe (``/api/3.0/mlflow/server-info``), each under ``ajax-api/`` too as MLflow's own server serves
them. Included at the root by registry/urls.py, ahead of the JSON 404 for the rest of ``/api/``;
anything else under ``mlflow-artifacts/`` is MLflow's ENDPOINT_NOT_FOUND."""

from django.urls import path, re_path

from mlflow_api import artifacts
from mlflow_api.views import endpoint_not_found

# The artifact path may hold any character (a control character included, refused by the view with
# INVALID_PARAMETER_VALUE rather than never matched).
ANY_PATH = r"(?P<artifact_path>[\s\S]+)"


def _artifact_routes(prefix: str) -> list:
    return [
        re_path(rf"^{prefix}2\.0/mlflow-artifacts/artifacts/?$", artifacts.ListArtifacts.as_view(),
                name="mlflow-artifacts-list"),
        re_path(rf"^{prefix}2\.0/mlflow-artifacts/artifacts/{ANY_PATH}$", artifacts.ArtifactFileView.as_view(),
                name="mlflow-artifacts-file"),
        re_path(rf"^{prefix}2\.0/mlflow-artifacts/mpu/(?:create|complete|abort)/[\s\S]*$",
                artifacts.MultipartUpload.as_view(), name="mlflow-artifacts-multipart"),
        re_path(rf"^{prefix}2\.0/mlflow-artifacts/presigned/[\s\S]*$", artifacts.PresignedDownload.as_view(),
                name="mlflow-artifacts-presigned"),
        re_path(rf"^{prefix}2\.0/mlflow-artifacts/", endpoint_not_found, name="mlflow-artifacts-endpoint-not-found"),
        path(f"{prefix}3.0/mlflow/server-info", artifacts.ServerInfo.as_view(), name="mlflow-server-info"),
    ]  # fmt: skip


urlpatterns = [*_artifact_routes("api/"), *_artifact_routes("ajax-api/")]
