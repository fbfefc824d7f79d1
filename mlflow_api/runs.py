"""MLflow's run endpoints over our runs (experiments/runs.py, experiments/selectors.py): create, get,
update, delete, restore, search, the log calls and a metric's history.

A run's message is MLflow's ``{info, data, inputs}``; metric values that are not finite go out as
protobuf's JSON spells them (``"NaN"``, ``"Infinity"``, ``"-Infinity"``), which MLflow's client
reads back as floats.
"""

from __future__ import annotations

import math

from experiments import runs as run_services
from experiments import selectors as experiment_selectors
from experiments.models import Run
from mlflow_api import search
from mlflow_api.errors import invalid, missing
from mlflow_api.tracking import experiment_by_id
from mlflow_api.views import MlflowView, text

VIEW_TYPES = {"ACTIVE_ONLY": "active", "DELETED_ONLY": "deleted", "ALL": "all"}


def metric_number(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def run_info(run: Run) -> dict:
    return {
        "run_id": run.run_id,
        "run_uuid": run.run_id,
        "experiment_id": str(run.experiment_id),
        "run_name": run.name,
        "user_id": run.user.get_username(),
        "status": run.status,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "artifact_uri": run.artifact_uri,
        "lifecycle_stage": run.lifecycle_stage,
    }


def run_shape(run: Run) -> dict:
    metrics = [
        {"key": m.key, "value": metric_number(m.metric_value), "timestamp": m.timestamp, "step": m.step}
        for m in run.latest_metrics.all()
    ]
    return {
        "info": run_info(run),
        "data": {
            "metrics": metrics,
            "params": [{"key": p.key, "value": p.value} for p in run.params.all()],
            "tags": [{"key": t.key, "value": t.value} for t in run.tags.all()],
        },
        "inputs": {},
    }


def run_of(request, fields: dict) -> Run:
    run_id = fields.get("run_id") or fields.get("run_uuid")
    if not run_id:
        raise invalid("Missing value for required parameter 'run_id'.")
    run = experiment_selectors.run_get(str(run_id), user=request.user)
    if run is None:
        raise missing(f"Run with id={run_id} not found")
    return run


def _number(fields: dict, name: str) -> int | None:
    value = fields.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': an integer is expected.") from None


def _with_data(run: Run) -> Run:
    return experiment_selectors.with_run_data(Run.objects.filter(pk=run.pk).select_related("user")).get()


class CreateRun(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        experiment = experiment_by_id(request, fields.get("experiment_id") or "0")
        run = run_services.run_create(
            experiment=experiment,
            actor=request.user,
            name=fields.get("run_name") or None,
            start_time=_number(fields, "start_time"),
            tags=fields.get("tags") or None,
        )
        return {"run": run_shape(_with_data(run))}


class GetRun(MlflowView):
    def handle(self, request, fields):
        return {"run": run_shape(_with_data(run_of(request, fields)))}


class UpdateRun(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        run = run_services.run_update(
            run=run_of(request, fields),
            actor=request.user,
            status=fields.get("status") or None,
            end_time=_number(fields, "end_time"),
            name=fields.get("run_name") or None,
        )
        return {"run_info": run_info(run)}


class DeleteRun(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        run_services.run_delete(run=run_of(request, fields), actor=request.user)
        return {}


class RestoreRun(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        run_services.run_restore(run=run_of(request, fields), actor=request.user)
        return {}


def _entries(fields: dict, name: str, keys: tuple[str, ...]) -> list:
    """The ``name`` list of a log call, each entry with MLflow's fields only: its client also sends a
    metric's ``run_id`` (and newer ones more), which the batch itself already names."""
    items = fields.get(name) or []
    if not isinstance(items, list):
        raise invalid(f"Invalid value for parameter '{name}': a list is expected.")
    return [{key: item[key] for key in keys if key in item} if isinstance(item, dict) else item for item in items]


class LogBatch(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        run_services.run_log_batch(
            run=run_of(request, fields),
            actor=request.user,
            metrics=_entries(fields, "metrics", ("key", "value", "timestamp", "step")),
            params=_entries(fields, "params", ("key", "value")),
            tags=_entries(fields, "tags", ("key", "value")),
        )
        return {}


class LogMetric(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        point = {key: fields[key] for key in ("key", "value", "timestamp", "step") if key in fields}
        run_services.run_log_batch(run=run_of(request, fields), actor=request.user, metrics=[point])
        return {}


class LogParam(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        param = {"key": fields.get("key"), "value": fields.get("value")}
        run_services.run_log_batch(run=run_of(request, fields), actor=request.user, params=[param])
        return {}


class SetTag(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        run_services.run_set_tag(
            run=run_of(request, fields),
            actor=request.user,
            key=text(fields, "key"),
            value=text(fields, "value", required=False),
        )
        return {}


class DeleteTag(MlflowView):
    method = "POST"

    def handle(self, request, fields):
        run_services.run_delete_tag(run=run_of(request, fields), actor=request.user, key=text(fields, "key"))
        return {}


class SearchRuns(MlflowView):
    """MLflow's run search: its filter grammar and order_by (mlflow_api/search.py) applied by
    ``experiments.selectors.run_search``, with MLflow's page tokens."""

    method = "POST"

    def handle(self, request, fields):
        ids = fields.get("experiment_ids") or []
        ids = ids if isinstance(ids, list) else [ids]
        experiments = [experiment_by_id(request, experiment_id) for experiment_id in ids]
        view = VIEW_TYPES.get(str(fields.get("run_view_type") or "ACTIVE_ONLY").upper())
        if view is None:
            raise invalid(f"Invalid run_view_type; one of {', '.join(VIEW_TYPES)}.")
        where = search.run_conditions(text(fields, "filter", required=False))
        order_by = search.run_orders(fields.get("order_by"))
        limit = search.max_results(fields.get("max_results"), default=1000, threshold=50_000)
        offset = search.offset_of(fields.get("page_token"))
        runs = experiment_selectors.run_search(
            user=request.user,
            experiment_ids=[e.pk for e in experiments],
            order_by=order_by,
            lifecycle=view,
            where=where,
        )
        rows = list(experiment_selectors.with_run_data(runs)[offset : offset + limit + 1])
        answer = {"runs": [run_shape(run) for run in rows[:limit]]}
        if len(rows) > limit:
            answer["next_page_token"] = search.page_token(offset + limit)
        return answer


class GetMetricHistory(MlflowView):
    def handle(self, request, fields):
        run = run_of(request, fields)
        key = text(fields, "metric_key")
        history = experiment_selectors.metric_history(run, key)
        return {
            "metrics": [
                {"key": m.key, "value": metric_number(m.metric_value), "timestamp": m.timestamp, "step": m.step}
                for m in history
            ]
        }
