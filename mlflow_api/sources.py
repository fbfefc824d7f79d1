"""Where a model version registered through the MLflow API comes from: its ``source`` (and
``run_id``/``model_id``) read as a folder of the registry's own storage, or refused.

MLflow's server lets a version's source name anything (a local path, ``file:``, another host), and
has had to patch that class of hole more than once (CVE-2023-1177, CVE-2023-2780…). Here a source
is one of the registry's own artifact folders, which the version then gets a copy of:

- ``models:/m-<id>``: a logged model (what ``log_model(..., registered_model_name=…)`` sends);
- ``mlflow-artifacts:/{experiment}/models/m-<id>/artifacts[/<path>]``: a logged model's folder;
- ``mlflow-artifacts:/{experiment}/{run_id}/artifacts[/<path>]`` and ``runs:/{run_id}[/<path>]``: a
  run's artifacts (MLflow 2's ``log_model``, ``register_model("runs:/…")``).

Anything else is INVALID_PARAMETER_VALUE, naming the accepted forms; the path inside a folder
follows the registry's file path rule (no ``..``, no encoded or control characters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from experiments import logged_models, selectors
from experiments.models import LoggedModel, LoggedModelStatus, Run
from mlflow_api.errors import invalid, missing
from mlmodels.folders import validate_file_path

_LOGGED_MODEL_URI = re.compile(r"models:/(?P<model_id>m-[0-9a-f]{32})/?")
_LOGGED_MODEL_FOLDER = re.compile(
    r"mlflow-artifacts:/(?P<experiment>[0-9]{1,18})/models/(?P<model_id>m-[0-9a-f]{32})/artifacts(?:/(?P<path>.*))?"
)
_RUN_FOLDER = re.compile(
    r"mlflow-artifacts:/(?P<experiment>[0-9]{1,18})/(?P<run_id>[0-9a-f]{32})/artifacts(?:/(?P<path>.*))?"
)
_RUN_URI = re.compile(r"runs:/(?P<run_id>[0-9a-f]{32})(?:/(?P<path>.*))?")
ACCEPTED = (
    "models:/m-<id> (a logged model), runs:/<run_id>/<path>, or mlflow-artifacts:/<experiment>/<run_id>/artifacts/"
    "<path> or mlflow-artifacts:/<experiment>/models/m-<id>/artifacts: a version is registered from the registry's "
    "own artifact storage"
)


@dataclass(frozen=True)
class Source:
    prefix: str  # the storage folder (users/{id}/…) the version's files are copied from
    run: Run | None
    logged_model: LoggedModel | None


def _subfolder(prefix: str, path: str | None, source: str) -> str:
    path = (path or "").removesuffix("/")
    if not path:
        return prefix
    try:
        validate_file_path(path)
    except ValidationError as error:
        raise invalid(f"Invalid model version source '{source[:200]}': {' '.join(error.messages)}") from None
    return f"{prefix}/{path}"


def _run(request, run_id: str) -> Run:
    run = selectors.run_get(run_id, user=request.user)
    if run is None:
        raise missing(f"Run with id={run_id} not found")
    return run


def _logged_model(request, model_id: str) -> LoggedModel:
    logged_model = logged_models.logged_model_get(model_id, user=request.user, allow_deleted=False)
    if logged_model is None:
        raise missing(f"Logged model with ID '{model_id}' not found.")
    if logged_model.status != LoggedModelStatus.READY:
        raise invalid(
            f"Logged model {model_id} is {logged_model.status}: a version is registered from a finalized "
            "(LOGGED_MODEL_READY) logged model, once its files are uploaded."
        )
    return logged_model


def resolve(request, *, source: object, run_id: object = None, model_id: object = None) -> Source:
    """The folder a version registered from ``source`` copies, with the run (and logged model) it
    came from; ``run_id``/``model_id``, when given, must agree with the source."""
    if not isinstance(source, str) or not source:
        raise invalid("Missing value for required parameter 'source'.")
    logged_model = run = None
    if match := _LOGGED_MODEL_URI.fullmatch(source):
        logged_model = _logged_model(request, match["model_id"])
        prefix = logged_model.artifact_prefix
    elif match := _LOGGED_MODEL_FOLDER.fullmatch(source):
        logged_model = _logged_model(request, match["model_id"])
        if str(logged_model.experiment_id) != match["experiment"]:
            raise missing(f"Logged model {logged_model.model_id} is not in experiment {match['experiment']}.")
        prefix = _subfolder(logged_model.artifact_prefix, match["path"], source)
    elif match := _RUN_FOLDER.fullmatch(source) or _RUN_URI.fullmatch(source):
        run = _run(request, match["run_id"])
        if "experiment" in match.groupdict() and str(run.experiment_id) != match["experiment"]:
            raise missing(f"Run {run.run_id} is not in experiment {match['experiment']}.")
        prefix = _subfolder(run.artifact_prefix, match["path"], source)
    else:
        raise invalid(f"Invalid model version source '{source[:200]}'. The source must be {ACCEPTED}.")

    if logged_model is not None:
        if model_id not in (None, "") and model_id != logged_model.model_id:
            raise invalid(f"The model_id {str(model_id)[:40]!r} is not the logged model of source '{source[:200]}'.")
        run = logged_model.source_run
    elif model_id not in (None, ""):
        logged_model = _logged_model(request, str(model_id))
    if run_id not in (None, ""):
        named = _run(request, str(run_id))
        if run is not None and named.pk != run.pk:
            raise invalid(f"The run_id {named.run_id} is not the run that source '{source[:200]}' belongs to.")
        run = named
    return Source(prefix=prefix, run=run, logged_model=logged_model)
