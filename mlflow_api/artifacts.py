"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/…``, what ``mlflow-artifacts:/`` URIs
resolve to) over our storage, and the ``server-info`` probe its client makes first.

The paths after ``artifacts/`` (MLflow's "relative path from the root artifact directory"):

- ``{experiment_id}/{run_id}/artifacts[/<file>]``: a run's artifact files (its ``artifact_uri``);
- ``{experiment_id}/models/{model_id}/artifacts[/<file>]``: a logged model's;
- ``registry/models/{model pk}/versions/{n}[/<file>]``: a registered model version's files, read
  only (what ``model-versions/get-download-uri`` answers): a folder version's files, or a single-file
  version as one file named by its file name.

The experiment id must be the run's or logged model's own; anything else is RESOURCE_DOES_NOT_EXIST.
A path is checked whole (``mlmodels.folders.validate_file_path``: no ``..``, ``.``, absolute path,
backslash, control character, ``%`` left after the one decode, ``//``) before any lookup; writes and
reads go through ``experiments.artifacts``. Calls: GET ``artifacts?path=`` lists one level
(``{"files": [...]}``, ``{}`` for an empty folder, a file or nothing), GET downloads (streamed), PUT
uploads (the body is the file, streamed), DELETE removes a file or a folder. Multipart uploads and
presigned downloads are not offered: their endpoints answer MLflow's own NOT_IMPLEMENTED, which its
client takes as "use the proxy" when it was told to try them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import FileResponse
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments import artifacts as artifact_services
from experiments.models import LoggedModel, Run
from mlflow_api.errors import MlflowError, invalid, missing
from mlflow_api.views import MlflowView, text
from mlmodels import selectors as model_selectors
from mlmodels import services as model_services
from mlmodels.folders import validate_file_path
from mlmodels.models import ModelVersion
from mlmodels.storage import ARTIFACT_CONTENT_TYPE, artifact_open_stream

# An id in a path: a positive integer as we write it (no sign, no leading zero, fits a bigint).
NUMBER = re.compile(r"[1-9][0-9]{0,17}")
DOWNLOAD_CHUNK = 1024 * 1024

# What MLflow's client learns from /api/3.0/mlflow/server-info (mlflow/utils/server_info.py): the
# artifact repository reads the multipart flags (off: it uploads and downloads through the proxy
# above); the workspace flag decides whether a workspace may be named; store_type only labels the
# client's telemetry (we are neither of MLflow's stores). No presigned uploads, no AI gateway.
SERVER_INFO = {
    "store_type": None,
    "workspaces_enabled": False,
    "trace_archival_enabled": False,
    "multipart_uploads_enabled": False,
    "multipart_downloads_enabled": False,
    "presigned_upload_run_id_supported": False,
    "presigned_upload_model_id_supported": False,
    "features_enabled": {"gateway": False},
}
# MLflow's own messages (mlflow/exceptions.py): its client matches the upload one to fall back.
MULTIPART_UPLOAD_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"
MULTIPART_DOWNLOAD_UNSUPPORTED = "Multipart download is not supported for the current artifact repository"


class PayloadTooLarge(MlflowError):
    """413, not MLflow's RESOURCE_EXHAUSTED status (429), which its client would retry."""

    def __init__(self, message: str):
        super().__init__("RESOURCE_EXHAUSTED", message)

    @property
    def status(self) -> int:
        return 413


# --- where a path points --------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """What an artifact path names: the files of a run or logged model (``owner``) or of a
    registered model version (``version``), and the path inside them ("" for their root)."""

    path: str
    owner: Run | LoggedModel | None = None
    version: ModelVersion | None = None


def _segments(raw: object, *, folder: bool) -> list[str]:
    if not isinstance(raw, str) or not raw:
        raise missing("No artifact path was given.")
    if folder and raw.endswith("/"):
        raw = raw[:-1]  # a folder may be named with its trailing slash (MLflow's client does)
    try:
        validate_file_path(raw)
    except ValidationError as error:
        raise invalid(f"Invalid path: {' '.join(error.messages)}") from None
    return raw.split("/")


def locate(request, raw: object, *, folder: bool = False) -> Location:
    """The Location of the artifact path ``raw``, or MLflow's error: INVALID_PARAMETER_VALUE for a
    malformed path, RESOURCE_DOES_NOT_EXIST for one that names nothing of ours."""
    parts = _segments(raw, folder=folder)
    nowhere = missing(f"No such artifact: {raw!r}")
    if parts[0] == "registry":
        if len(parts) < 5 or parts[1] != "models" or parts[3] != "versions":
            raise nowhere
        if not (NUMBER.fullmatch(parts[2]) and NUMBER.fullmatch(parts[4])):
            raise nowhere
        version = model_selectors.version_get(user=request.user, model_id=int(parts[2]), number=int(parts[4]))
        if version is None:
            raise nowhere
        return Location(path="/".join(parts[5:]), version=version)
    if not NUMBER.fullmatch(parts[0]) or len(parts) < 3:
        raise nowhere
    experiment_id = int(parts[0])
    if parts[1] == "models":
        if len(parts) < 4 or parts[3] != "artifacts":
            raise nowhere
        owner = artifact_services.owner_get(user=request.user, experiment_id=experiment_id, model_id=parts[2])
        rest = parts[4:]
    else:
        if parts[2] != "artifacts":
            raise nowhere
        owner = artifact_services.owner_get(user=request.user, experiment_id=experiment_id, run_id=parts[1])
        rest = parts[3:]
    if owner is None:
        raise nowhere
    return Location(path="/".join(rest), owner=owner)


def _read_only(location: Location) -> None:
    if location.version is not None:
        raise MlflowError(
            "PERMISSION_DENIED",
            "A registered model version's files are read-only: record a new version to change them.",
        )


def _single_file(version: ModelVersion) -> tuple[str, str, int] | None:
    """A single-file version's (name, key, size), named as API v1's download names it."""
    if version.file_count or not version.file:
        return None
    return version.file.rsplit("/", 1)[-1], version.file, version.file_size or 0


# --- answers --------------------------------------------------------------------------------------


class ArtifactResponse(FileResponse):
    block_size = DOWNLOAD_CHUNK


def download(stream, *, name: str, size: int) -> FileResponse:
    """The stored bytes, streamed in chunks as they are sent, as opaque bytes to save."""
    response = ArtifactResponse(stream, as_attachment=True, filename=name, content_type=ARTIFACT_CONTENT_TYPE)
    response["Content-Length"] = str(size)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


def listing(entries: list[artifact_services.Entry]) -> dict:
    """MLflow's ListArtifacts answer: base names, a size for files only; ``{}`` when empty."""
    files = [
        {"path": entry.name, "is_dir": True}
        if entry.is_dir
        else {"path": entry.name, "is_dir": False, "file_size": entry.size}
        for entry in entries
    ]
    return {"files": files} if files else {}


def _content_length(request) -> int:
    value = request.META.get("CONTENT_LENGTH")
    if value in (None, "") or "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        raise MlflowError("BAD_REQUEST", "An artifact upload needs a Content-Length header (no chunked bodies).")
    try:
        length = int(value)
    except ValueError:
        raise MlflowError("BAD_REQUEST", f"Invalid Content-Length {value!r}.") from None
    if length < 0:
        raise MlflowError("BAD_REQUEST", f"Invalid Content-Length {value!r}.")
    return length


def _not_served(request, *args, **kwargs):
    raise MlflowError("ENDPOINT_NOT_FOUND", f"This endpoint does not take {request.method}.")


# --- views ----------------------------------------------------------------------------------------


class ListArtifacts(MlflowView):
    """GET ``artifacts?path=<folder>``: one level of the folder."""

    def handle(self, request, fields, **path):
        location = locate(request, text(fields, "path", required=False), folder=True)
        if location.owner is not None:
            files: QuerySet = artifact_services.files_of(location.owner)
        elif location.version.file_count:
            files = model_services.version_files(location.version)
        else:
            single = _single_file(location.version)
            entries = [artifact_services.Entry(single[0], False, single[2])] if single and not location.path else []
            return listing(entries)
        try:
            return listing(artifact_services.list_folder(files, location.path))
        except ValidationError as error:
            raise invalid(f"Invalid path: {' '.join(error.messages)}") from None


class ArtifactFileView(MlflowView):
    """``artifacts/<path>``: GET downloads a file, PUT uploads one (the body is the file), DELETE
    removes a file or a folder."""

    def get(self, request, artifact_path: str):
        location = locate(request, artifact_path)
        if location.version is not None:
            return self._version_file(location)
        if not location.path:
            raise invalid(f"Artifact path refers to a directory, not a file: {artifact_path!r}")
        try:
            row = artifact_services.file_get(owner=location.owner, path=location.path)
        except LookupError:
            files = artifact_services.files_of(location.owner)
            if artifact_services.is_folder(files, location.path):
                raise invalid(f"Artifact path refers to a directory, not a file: {artifact_path!r}") from None
            raise missing(f"No such artifact: {artifact_path!r}") from None
        name = row.path.rsplit("/", 1)[-1]
        return download(artifact_services.file_open(row), name=name, size=row.size)

    def _version_file(self, location: Location):
        version = location.version
        if version.file_count:
            try:
                file, stream = model_services.version_file_open(version, location.path)
            except (LookupError, ValidationError):
                raise missing(f"No such artifact: {location.path!r}") from None
            return download(stream, name=file.path.rsplit("/", 1)[-1], size=file.size)
        single = _single_file(version)
        if single is None or location.path != single[0]:
            raise missing(f"No such artifact: {location.path!r}")
        name, key, size = single
        return download(artifact_open_stream(key), name=name, size=size)

    def put(self, request, artifact_path: str):
        location = locate(request, artifact_path)
        _read_only(location)
        if not location.path:
            raise invalid("Artifact path must include a file name.")
        length = _content_length(request)
        try:
            artifact_services.file_store(
                owner=location.owner, actor=request.user, path=location.path, body=request._request, length=length
            )
        except artifact_services.ArtifactTooLarge as error:
            raise PayloadTooLarge(error.detail) from None
        except artifact_services.BodyIncomplete as error:
            raise MlflowError("BAD_REQUEST", str(error)) from None
        return Response({})

    def delete(self, request, artifact_path: str):
        location = locate(request, artifact_path, folder=True)
        _read_only(location)
        artifact_services.files_delete(owner=location.owner, actor=request.user, path=location.path)
        return Response({})

    post = patch = _not_served


class NotImplementedView(MlflowView):
    """An artifact call we do not offer, answered as MLflow's server answers it for a repository
    without it (signed-in callers only, as everything else here)."""

    message = ""

    def _dispatch(self, request, *args, **kwargs):
        raise MlflowError("NOT_IMPLEMENTED", self.message)

    get = post = patch = delete = put = _dispatch


class MultipartUpload(NotImplementedView):
    message = MULTIPART_UPLOAD_UNSUPPORTED


class PresignedDownload(NotImplementedView):
    message = MULTIPART_DOWNLOAD_UNSUPPORTED


class ServerInfo(APIView):
    """GET ``/api/3.0/mlflow/server-info``: what the server offers. Public, as MLflow's: a client
    asks before it signs in; it names no object, user or setting beyond these fixed flags."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]
    schema = None

    def get(self, request):
        return Response(SERVER_INFO)
