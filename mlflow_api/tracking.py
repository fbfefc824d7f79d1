"""MLflow's tracking endpoints over our experiments (and, as they land, runs): thin handlers calling
the experiments app's services and selectors.

An MLflow experiment is an Experiment; its id is ours as a string. Experiment names are unique per
owner here (globally in MLflow): a name resolves to the caller's own experiment first, then to the
oldest of that name. MLflow's default experiment, id "0", is the caller's own "Default" experiment,
made on first use, so a script that never calls ``set_experiment`` still has somewhere to log.
MLflow's experiment tags are key/value pairs; ours are strings, kept as ``key=value``, except
``mlflow.note.content``, which is the experiment's description.
"""

from __future__ import annotations

from experiments import selectors as experiment_selectors
from experiments import services as experiment_services
from experiments.models import Experiment
from mlflow_api import search
from mlflow_api.errors import MlflowError, invalid, missing
from mlflow_api.shapes import millis
from mlflow_api.views import MlflowView, text

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
NOTE_TAG = "mlflow.note.content"


def experiment_shape(experiment: Experiment) -> dict:
    tags = []
    for tag in experiment.tags or []:
        key, _, value = str(tag).partition("=")
        tags.append({"key": key, "value": value})
    if experiment.description:
        tags.append({"key": NOTE_TAG, "value": experiment.description})
    return {
        "experiment_id": str(experiment.pk),
        "name": experiment.name,
        "artifact_location": f"mlflow-artifacts:/{experiment.pk}",
        "lifecycle_stage": "active",
        "creation_time": millis(experiment.created_at),
        "last_update_time": millis(experiment.updated_at),
        "tags": tags,
    }


def default_experiment(request) -> Experiment:
    own = experiment_selectors.experiment_list(user=request.user).filter(
        owner=request.user, name=DEFAULT_EXPERIMENT_NAME
    )
    return own.first() or experiment_services.experiment_create(
        owner=request.user, actor=request.user, name=DEFAULT_EXPERIMENT_NAME, description="MLflow's default experiment."
    )


def experiment_by_id(request, experiment_id) -> Experiment:
    experiment_id = str(experiment_id)
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        return default_experiment(request)
    if not experiment_id.isdigit() or len(experiment_id) > 18:
        raise missing(f"No Experiment with id={experiment_id} exists")
    experiment = experiment_selectors.experiment_list(user=request.user).filter(pk=int(experiment_id)).first()
    if experiment is None:
        raise missing(f"No Experiment with id={experiment_id} exists")
    return experiment


def experiment_by_name(request, name: str) -> Experiment | None:
    experiments = experiment_selectors.experiment_list(user=request.user).filter(name=name)
    return experiments.filter(owner=request.user).first() or experiments.order_by("created_at", "id").first()


def _tag_pairs(fields: dict) -> list[tuple[str, str]]:
    tags = fields.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, dict) for tag in tags):
        raise invalid("Invalid value for parameter 'tags': a list of {key, value} objects is expected.")
    return [(text(tag, "key"), text(tag, "value", required=False)) for tag in tags]


def _with_tags(tags: list[str], description: str, pairs: list[tuple[str, str]]) -> tuple[list[str], str]:
    tags = list(tags)
    for key, value in pairs:
        if key == NOTE_TAG:
            description = value
            continue
        tags = [tag for tag in tags if str(tag).partition("=")[0] != key] + [f"{key}={value}"]
    return tags, description


class GetExperimentByName(MlflowView):
    def handle(self, request, fields):
        name = text(fields, "experiment_name")
        experiment = (
            default_experiment(request) if name == DEFAULT_EXPERIMENT_NAME else experiment_by_name(request, name)
        )
        if experiment is None:
            raise missing(f"Could not find experiment with name '{name}'")
        return {"experiment": experiment_shape(experiment)}


class GetExperiment(MlflowView):
    def handle(self, request, fields):
        return {"experiment": experiment_shape(experiment_by_id(request, text(fields, "experiment_id")))}


class CreateExperiment(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        name = text(fields, "name")
        if fields.get("artifact_location"):
            raise invalid("artifact_location is chosen by the registry (its own storage); leave it out.")
        own = experiment_selectors.experiment_list(user=request.user).filter(owner=request.user, name=name)
        if own.exists():
            raise MlflowError("RESOURCE_ALREADY_EXISTS", f"Experiment '{name}' already exists.")
        tags, description = _with_tags([], "", _tag_pairs(fields))
        experiment = experiment_services.experiment_create(
            owner=request.user, actor=request.user, name=name, description=description, tags=tags
        )
        return {"experiment_id": str(experiment.pk)}


class SearchExperiments(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        clauses = search.parse(text(fields, "filter", required=False), allowed={"name"})
        experiments = experiment_selectors.experiment_list(user=request.user)
        for clause in clauses:
            if clause.key != "name":
                raise invalid("Experiments are searched by name here.")
            if clause.comparator == "=":
                experiments = experiments.filter(name=clause.value)
            elif clause.comparator == "!=":
                experiments = experiments.exclude(name=clause.value)
            else:
                lookup = "regex" if clause.comparator == "LIKE" else "iregex"
                experiments = experiments.filter(
                    **{f"name__{lookup}": f"^{search.like_pattern(clause.value).pattern}$"}
                )
        view_type = str(fields.get("view_type") or "ACTIVE_ONLY").upper()
        if view_type == "DELETED_ONLY":
            experiments = experiments.none()  # a deleted experiment is gone here
        limit = search.max_results(fields.get("max_results"), default=1000, threshold=50_000)
        offset = search.offset_of(fields.get("page_token"))
        rows = list(experiments.order_by("-created_at", "-id")[offset : offset + limit + 1])
        answer = {"experiments": [experiment_shape(experiment) for experiment in rows[:limit]]}
        if len(rows) > limit:
            answer["next_page_token"] = search.page_token(offset + limit)
        return answer


class UpdateExperiment(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        experiment = experiment_by_id(request, text(fields, "experiment_id"))
        experiment_services.experiment_update(
            experiment=experiment, actor=request.user, data={"name": text(fields, "new_name")}
        )
        return {}


class DeleteExperiment(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        experiment = experiment_by_id(request, text(fields, "experiment_id"))
        experiment_services.experiment_delete(experiment=experiment, actor=request.user)
        return {}


class SetExperimentTag(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        experiment = experiment_by_id(request, text(fields, "experiment_id"))
        pair = (text(fields, "key"), text(fields, "value", required=False))
        tags, description = _with_tags(experiment.tags, experiment.description, [pair])
        experiment_services.experiment_update(
            experiment=experiment, actor=request.user, data={"tags": tags, "description": description}
        )
        return {}
