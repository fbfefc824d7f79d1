"""Experiment and run pages: thin views over experiments.services and selectors."""

import math

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, prefetch_related_objects
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from experiments import artifacts, selectors, services
from experiments.filters import ExperimentFilterSet
from experiments.forms import ExperimentForm
from experiments.models import Experiment, LifecycleStage, Run
from mlmodels.charts import run_metric_chart
from mlmodels.comparison import EPSILON, MetricCell
from mlmodels.comparison import MAX_COMPARED as MAX_MODELS_COMPARED
from mlmodels.selectors import current_versions_comparison, model_list, model_list_table, model_table_order
from registry.forms import add_service_errors
from registry.pages import editable_or_403, is_fragment_request


def _experiment_for(request, pk: int) -> Experiment:
    return get_object_or_404(selectors.experiment_list(user=request.user).select_related("owner"), pk=pk)


def _editable(request, pk: int) -> Experiment:
    return editable_or_403(
        _experiment_for(request, pk), request.user, "Only the experiment's owner or a superuser can change it."
    )


@login_required
@require_GET
@vary_on_headers("HX-Request")
def experiment_list(request):
    filterset = ExperimentFilterSet(
        request.GET, queryset=Experiment.objects.visible_to(request.user).select_related("owner")
    )
    rows = filterset.qs if filterset.is_valid() else Experiment.objects.none()
    rows = rows.annotate(model_count=Count("models"))
    if not rows.ordered:
        rows = rows.order_by("-created_at", "-id")
    page = Paginator(rows, 20).get_page(request.GET.get("page"))
    context = {"page": page, "query": request.GET, "filter_errors": filterset.errors}
    template = "experiments/_results.html" if is_fragment_request(request) else "experiments/list.html"
    return render(request, template, context)


@login_required
@require_GET
@vary_on_headers("HX-Request", "HX-Target")
def experiment_detail(request, pk: int):
    """The experiment and its runs; for htmx (a sort or a page of the runs) the runs table alone."""
    experiment = _experiment_for(request, pk)
    if is_fragment_request(request) and request.headers.get("HX-Target") == "run-chart":
        # The runs chart switching metric: its keys and the chosen metric's values alone.
        _, keys, _ = selectors.run_columns(experiment, limit=MAX_COLUMNS, metric_limit=MAX_CHART_METRICS)
        context = {"experiment": experiment, "sort": request.GET.get("sort", "").strip()}
        return render(request, "experiments/_run_chart.html", {**context, **_run_chart(request, experiment, keys)})
    if is_fragment_request(request) and request.headers.get("HX-Target") == "experiment-models":
        context = {"experiment": experiment, **_models_table(request, experiment)}
        return render(request, "experiments/_models.html", context)
    context = {"experiment": experiment, **_runs_table(request, experiment)}
    if is_fragment_request(request):
        return render(request, "experiments/_runs.html", context)
    context.update(_models_table(request, experiment), can_change=experiment.can_change(request.user))
    context.update(_run_chart(request, experiment, context.pop("chart_metric_keys")))
    return render(request, "experiments/detail.html", context)


# --- the models it produced ---------------------------------------------------------------------------

# The models table shows this many at most; the models list, filtered on the experiment, shows them all.
MAX_MODELS_SHOWN = 100


def _models_table(request, experiment: Experiment) -> dict:
    """The models the experiment produced, sorted as ``?models_sort=`` says (by name when it does
    not): one query, with each model's versions count and current scan (``model_list_table``)."""
    sort = request.GET.get("models_sort", "").strip()
    sort_error = None
    try:
        order = model_table_order(sort)
    except ValidationError as error:
        sort_error, sort, order = " ".join(error.messages), "", model_table_order("")
    rows = list(
        model_list_table(user=request.user).filter(experiment=experiment).order_by(*order)[: MAX_MODELS_SHOWN + 1]
    )
    return {
        "models": rows[:MAX_MODELS_SHOWN],
        "models_truncated": len(rows) > MAX_MODELS_SHOWN,
        "models_sort": sort,
        "models_sort_error": sort_error,
        "max_models_shown": MAX_MODELS_SHOWN,
        "max_models_compared": MAX_MODELS_COMPARED,
    }


@login_required
@require_GET
def experiment_model_compare(request, pk: int):
    """The current versions of models the experiment produced (``?model=<id>``, the first the
    baseline) side by side: metrics with deltas, hyperparameters key by key, artifacts, provenance."""
    experiment = _experiment_for(request, pk)
    requested = request.GET.getlist("model")
    compare = current_versions_comparison(
        models=model_list(user=request.user).filter(experiment=experiment), requested=requested
    )
    ids = [version.model_id for version in compare.versions]
    # For each column, the query that compares the same models with that one as the baseline.
    baselines = ["&".join(f"model={i}" for i in [first, *(other for other in ids if other != first)]) for first in ids]
    context = {
        "experiment": experiment,
        "compare": compare,
        "columns": list(zip(compare.versions, baselines, strict=True)),
        "stages_differ": len({version.model.lifecycle for version in compare.versions}) > 1,
    }
    return render(request, "experiments/model_compare.html", context, status=400 if compare.error else 200)


# Metric keys the runs chart offers at most (in key order).
MAX_CHART_METRICS = 100


def _run_chart(request, experiment: Experiment, keys: list[str]) -> dict:
    """The runs chart: ``?metric=`` (or accuracy, or the first key) across the experiment's runs, in
    start order. One query, none when its runs logged no metric."""
    if not keys:
        return {"run_chart": None, "chart_keys": [], "chart_metric": None}
    asked = request.GET.get("metric", "").strip()
    metric = asked if asked in keys else ("accuracy" if "accuracy" in keys else keys[0])
    latest, truncated = selectors.metric_across_runs(experiment, metric, user=request.user)
    chart = run_metric_chart(latest, metric, href=lambda run: reverse("run-detail", args=[experiment.pk, run.run_id]))
    return {
        "run_chart": chart,
        "chart_keys": keys,
        "chart_metric": metric,
        "chart_truncated": truncated,
        "chart_max_runs": selectors.MAX_CHART_RUNS,
        "chart_unknown": asked if asked and asked != metric else "",
    }


# --- runs ---------------------------------------------------------------------------------------------

RUNS_PER_PAGE = 25
# Param and metric columns shown in the runs table (each kind): wider tables stop being readable; the
# run's page and the compare view show everything.
MAX_COLUMNS = 8
MAX_COMPARED = 10


def _runs_table(request, experiment: Experiment) -> dict:
    """The runs table of the experiment page: a page of its active runs sorted as ``?sort=`` says,
    with a cell for each param and latest-metric column."""
    sort = request.GET.get("sort", "").strip()
    sort_error = None
    order = []
    if sort:
        try:
            order = [selectors.RunOrder.parse(sort)]
        except ValidationError as error:
            sort_error, sort = " ".join(error.messages), ""
    found = selectors.with_run_data(selectors.runs_of(experiment, user=request.user, order_by=order), tags=False)
    page = Paginator(found, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    param_keys, chart_metric_keys, more_columns = selectors.run_columns(
        experiment, limit=MAX_COLUMNS, metric_limit=MAX_CHART_METRICS
    )
    metric_keys = chart_metric_keys[:MAX_COLUMNS]
    rows = []
    for run in page.object_list:
        params = {param.key: param.value for param in run.params.all()}
        metrics = {metric.key: metric for metric in run.latest_metrics.all()}
        rows.append(
            {
                "run": run,
                "params": [params.get(key) for key in param_keys],
                "metrics": [metrics.get(key) for key in metric_keys],
            }
        )
    return {
        "page": page,
        "rows": rows,
        "param_keys": param_keys,
        "metric_keys": metric_keys,
        "more_columns": more_columns,
        "sort": sort,
        "sort_error": sort_error,
        # Every metric key (up to MAX_CHART_METRICS), for the runs chart's choice.
        "chart_metric_keys": chart_metric_keys,
    }


# The artifact files a run's page lists (by path); the MLflow API lists every one.
MAX_ARTIFACT_FILES = 200


def _run_for(request, pk: int, run_id: str) -> Run:
    run = selectors.run_get(run_id, user=request.user)
    if run is None or run.experiment_id != pk:
        raise Http404("This experiment has no run with this id.")
    return run


@login_required
@require_GET
def run_detail(request, pk: int, run_id: str):
    run = _run_for(request, pk, run_id)
    prefetch_related_objects([run], "params", "latest_metrics", "tags")
    histories, truncated = selectors.metric_histories(run, limit=selectors.MAX_HISTORY_POINTS)
    files = list(artifacts.files_of(run).only("path", "size")[: MAX_ARTIFACT_FILES + 1])
    return render(
        request,
        "experiments/run_detail.html",
        {
            "experiment": run.experiment,
            "run": run,
            "histories": histories,
            "histories_truncated": truncated,
            "registered": selectors.run_versions(run),
            "logged_models": list(run.logged_models.filter(lifecycle_stage=LifecycleStage.ACTIVE)),
            "artifact_files": files[:MAX_ARTIFACT_FILES],
            "artifact_files_truncated": len(files) > MAX_ARTIFACT_FILES,
        },
    )


@login_required
@require_GET
def run_compare(request, pk: int):
    """Params, latest metrics and attributes of the selected runs side by side, differing rows marked."""
    experiment = _experiment_for(request, pk)
    wanted = list(dict.fromkeys(request.GET.getlist("run")))
    compared = selectors.runs_by_id(experiment, wanted[:MAX_COMPARED], user=request.user)
    context = {"experiment": experiment, "compared": compared}
    if len(wanted) > MAX_COMPARED:
        context["error"] = f"Select at most {MAX_COMPARED} runs to compare."
    elif len(compared) < 2:
        context["error"] = "Select at least two runs of this experiment to compare."
    else:
        context["rows"] = compare_rows(compared)
    return render(request, "experiments/run_compare.html", context, status=400 if "error" in context else 200)


def compare_rows(compared: list[Run]) -> list[tuple[str, str, list, bool]]:
    """(section, label, one cell per run, whether they differ) for each attribute, param and metric;
    a cell is (value, its change from the first run's value: a metric's, when both are numbers)."""
    rows = []

    def add(section: str, label: str, values: list, compared_as: list | None = None) -> None:
        differs = len(set(values if compared_as is None else compared_as)) > 1
        changes = metric_changes(values) if section == "metric" else [None] * len(values)
        rows.append((section, label, list(zip(values, changes, strict=True)), differs))

    add("attribute", "Status", [run.get_status_display() for run in compared])
    add("attribute", "User", [run.user.username for run in compared])
    params = [{param.key: param.value for param in run.params.all()} for run in compared]
    for key in sorted(set().union(*params)):
        add("param", key, [values.get(key) for values in params])
    metrics = [{metric.key: metric for metric in run.latest_metrics.all()} for run in compared]
    for key in sorted(set().union(*metrics)):
        values = [latest.get(key) for latest in metrics]
        add("metric", key, values, [None if value is None else (value.is_nan, value.value) for value in values])
    return rows


def metric_changes(points: list) -> list[MetricCell | None]:
    """Each latest point's change from the first run's (None for the first, or where either is not a
    finite number). Without a direction: a run's metric may be a loss, where lower is better."""

    def finite(point) -> bool:
        return point is not None and not point.is_nan and math.isfinite(point.value)

    base = points[0]
    changes: list[MetricCell | None] = [None]
    for point in points[1:]:
        if not (finite(base) and finite(point)):
            changes.append(None)
            continue
        delta = point.value - base.value
        changes.append(MetricCell(point.value, delta, "same" if abs(delta) < EPSILON else "changed"))
    return changes


@login_required
@require_http_methods(["GET", "POST"])
def experiment_create(request):
    form = ExperimentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            experiment = services.experiment_create(owner=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Experiment {experiment.name} created.")
            return redirect("experiment-detail", pk=experiment.pk)
    cancel = reverse("experiment-list")
    return render(request, "form_page.html", {"form": form, "title": "New experiment", "cancel": cancel})


@login_required
@require_http_methods(["GET", "POST"])
def experiment_edit(request, pk: int):
    experiment = _editable(request, pk)
    initial = {
        "name": experiment.name,
        "description": experiment.description,
        "parameters": experiment.parameters,
        "tags": ", ".join(experiment.tags),
    }
    form = ExperimentForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.experiment_update(experiment=experiment, actor=request.user, data=form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Experiment {experiment.name} saved.")
            return redirect("experiment-detail", pk=experiment.pk)
    cancel = reverse("experiment-detail", args=[experiment.pk])
    return render(request, "form_page.html", {"form": form, "title": f"Edit {experiment.name}", "cancel": cancel})


@login_required
@require_http_methods(["GET", "POST"])
def experiment_delete(request, pk: int):
    experiment = _editable(request, pk)
    if request.method == "POST":
        name = experiment.name
        services.experiment_delete(experiment=experiment, actor=request.user)
        messages.success(request, f"Experiment {name} deleted; its models are kept.")
        return redirect("experiment-list")
    cancel = reverse("experiment-detail", args=[experiment.pk])
    return render(request, "confirm_delete.html", {"object": experiment, "kind": "experiment", "cancel": cancel})
