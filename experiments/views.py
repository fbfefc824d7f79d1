"""Experiment pages: thin views over experiments.services and selectors."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from experiments import selectors, services
from experiments.filters import ExperimentFilterSet
from experiments.forms import ExperimentForm
from experiments.models import Experiment
from mlmodels.selectors import model_list
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
def experiment_detail(request, pk: int):
    experiment = _experiment_for(request, pk)
    models = model_list(user=request.user).filter(experiment=experiment).select_related("owner").order_by("name")
    return render(
        request,
        "experiments/detail.html",
        {"experiment": experiment, "models": models, "can_change": experiment.can_change(request.user)},
    )


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
