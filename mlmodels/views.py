"""Dashboard pages for models: thin views over mlmodels.services, selectors and the API's FilterSet.

Every view that answers htmx requests with a fragment renders the whole page when opened directly
(or when htmx restores history), and varies on HX-Request so caches keep the two apart.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import push_url, trigger_client_event

from accounts.models import User
from accounts.roles import can_approve
from mlmodels import selectors, services
from mlmodels.charts import metric_charts
from mlmodels.comparison import version_deltas
from mlmodels.filters import ORDERING_FIELDS, MLModelFilterSet
from mlmodels.forms import AliasForm, LifecycleForm, MLModelForm, TagForm, TagKeyForm, UploadForm
from mlmodels.models import Framework, MLModel, Stage, TaskType
from mlmodels.storage import StorageUnavailable
from registry.forms import add_service_errors
from registry.pages import editable_or_403, is_fragment_request, with_toast

PAGE_SIZE = 20


def _model_for(request, pk: int) -> MLModel:
    return get_object_or_404(selectors.model_list(user=request.user).select_related("owner", "experiment"), pk=pk)


def _editable_model(request, pk: int) -> MLModel:
    return editable_or_403(
        _model_for(request, pk), request.user, "Only the model's owner or a superuser can change it."
    )


# The dashboard's regions that live updates refresh on their own (``?part=…``; without it, "live"),
# each with its template.
DASHBOARD_PARTS = {
    "live": "_dashboard.html",
    "activity": "_dashboard_activity.html",
    "approvals": "_dashboard_approvals.html",
}


def _dashboard_context(request, parts: frozenset[str]) -> dict:
    """What the dashboard's ``parts`` show ("live": its figures and lists, as _dashboard.html;
    "activity", "approvals": those panels). Each panel is one query at most (the counts are cached)."""
    context: dict = {"approvals_on": settings.PRODUCTION_NEEDS_APPROVAL}
    if "live" in parts:
        counts = selectors.dashboard_counts()
        context.update(
            counts=counts,
            framework_bars=selectors.scaled_bars(counts["framework"]),
            trend=selectors.weekly_trend(user=request.user),
            best_production=selectors.best_production_models(user=request.user),
            recent_models=selectors.recent_models(user=request.user),
        )
    if "activity" in parts:
        context["activity"] = selectors.recent_activity(user=request.user)
    if "approvals" in parts and context["approvals_on"]:
        context["pending_approvals"] = selectors.pending_approvals(user=request.user)
    return context


@login_required
@require_GET
@vary_on_headers("HX-Request")
def dashboard(request):
    """The dashboard; for htmx (live updates) its figures and lists alone (``#dashboard-live``), or
    with ``?part=activity`` / ``?part=approvals`` that panel alone."""
    if not is_fragment_request(request):
        return render(request, "dashboard.html", _dashboard_context(request, frozenset(DASHBOARD_PARTS)))
    part = request.GET.get("part")
    part = part if part in DASHBOARD_PARTS else "live"
    return render(request, DASHBOARD_PARTS[part], _dashboard_context(request, frozenset({part})))


@login_required
@require_GET
@vary_on_headers("HX-Request")
def model_list(request):
    params = request.GET.copy()
    if params.get("owner") == "mine":
        params["owner"] = str(request.user.pk)
    filterset = MLModelFilterSet(params, queryset=selectors.model_list_table(user=request.user))
    if filterset.is_valid():
        rows = filterset.qs
        if not params.get("ordering"):
            rows = rows.order_by("-updated_at", "-id")
    else:
        rows = MLModel.objects.none()
    page, correction = _page_or_correction(Paginator(rows, PAGE_SIZE), request.GET.get("page"))
    if correction and not is_fragment_request(request):
        # The address bar must name the page shown: send the browser there, and say why.
        messages.info(request, correction)
        return redirect(_list_url(request, page.number))
    context = {
        "page": page,
        "page_correction": correction,
        "filter_errors": filterset.errors,
        "query": request.GET,
        "ordering": request.GET.get("ordering", ""),
        "sortable": ORDERING_FIELDS,
        "frameworks": Framework.choices,
        "task_types": TaskType.choices,
        "stages": Stage.choices,
        "owners": User.objects.filter(is_active=True).order_by("username").only("id", "username"),
    }
    if not is_fragment_request(request):
        return render(request, "models/list.html", context)
    response = render(request, "models/_results.html", context)
    # htmx pushes this URL instead of the requested one, so history and reloads show this page.
    return push_url(response, _list_url(request, page.number)) if correction else response


def _row_context(request, model: MLModel) -> dict:
    """A model's row in the list (live updates refresh it alone): read again as the list reads it, with
    its versions count and current scan (one query)."""
    return {"model": get_object_or_404(selectors.model_list_table(user=request.user), pk=model.pk)}


def _page_or_correction(paginator: Paginator, number: str | None) -> tuple[Page, str | None]:
    """The page asked for; or, for a page that does not exist, the nearest one and a note saying so."""
    if not number:
        return paginator.page(1), None
    try:
        return paginator.page(number), None
    except PageNotAnInteger:
        return paginator.page(1), f"“{number}” is not a page number: showing the first page."
    except EmptyPage:
        if int(number) < 1:
            return paginator.page(1), f"There is no page {number}: showing the first page."
        last = paginator.page(paginator.num_pages)
        return last, f"There is no page {number}: showing page {last.number}, the last."


def _list_url(request, number: int) -> str:
    """The model list's URL with the current filters and page ``number`` (page 1 goes without)."""
    params = request.GET.copy()
    params.pop("page", None)
    if number > 1:
        params["page"] = str(number)
    return reverse("model-list") + (f"?{params.urlencode()}" if params else "")


def _versions_context(request, model: MLModel) -> dict:
    """What the parts of the model page that follow its versions show (see models/_refresh.html):
    one query for the versions with their authors and runs, one more for the files of folder versions."""
    versions = selectors.with_version_files(
        list(selectors.version_list(model=model).select_related("created_by", "run"))
    )
    # Each row's metrics with their change from the row below (models/_versions.html).
    for version, cells in zip(versions, version_deltas(versions), strict=True):
        version.metric_cells = cells
    return {
        "model": model,
        "can_change": model.can_change(request.user),
        "versions": versions,
        "charts": metric_charts(reversed(versions), aliases=model.aliases),
        # The compare form's choice until one is made: the newest version against the one before.
        "compare_selected": [version.version_number for version in versions[1::-1]],
    }


def _lifecycle_context(request, model: MLModel, *, can_change: bool) -> dict:
    """What the lifecycle panel shows: the stage and its moves, the requests waiting for approval
    (with the buttons the viewer may use), and the model's one history."""
    history = selectors.model_history(model=model)
    # The pending requests are among the history's (its newest 100 requests; a model has one pending per
    # change): no query of their own.
    pending = sorted(
        (entry.item for entry in history if entry.kind == "requested" and entry.item.is_pending),
        key=lambda item: (item.created_at, item.pk),
    )
    # Asked only when it decides a button: permissions cost two queries.
    others_asked = any(item.requested_by_id != request.user.pk for item in pending)
    approver = can_approve(request.user) if (others_asked or not can_change) else False
    return {
        "model": model,
        "can_change": can_change,
        "pending_requests": pending,
        "can_decide": approver,
        # Approvers may set protected aliases on models they do not own (and only those).
        "can_approve": approver and not can_change,
        "protected_aliases": selectors.protected_alias_names() if approver and not can_change else (),
        "asks_approval": can_change and settings.PRODUCTION_NEEDS_APPROVAL and not can_approve(request.user),
        "history": history,
    }


def _detail_context(request, model: MLModel, **extra) -> dict:
    context = _versions_context(request, model)
    return {
        **context,
        **_lifecycle_context(request, model, can_change=context["can_change"]),
        "upload_form": UploadForm(),
        **extra,
    }


@login_required
@require_GET
def model_detail(request, pk: int):
    model = _model_for(request, pk)
    return render(request, "models/detail.html", _detail_context(request, model))


@login_required
@require_GET
@vary_on_headers("HX-Request")
def model_versions(request, pk: int):
    """The versions table (``#versions``); the whole page when opened directly."""
    model = _model_for(request, pk)
    if is_fragment_request(request):
        return render(request, "models/_versions.html", _versions_context(request, model))
    return render(request, "models/detail.html", _detail_context(request, model))


def _head_context(request, model: MLModel) -> dict:
    return {"model": model, "can_change": model.can_change(request.user)}


def _lifecycle_part_context(request, model: MLModel) -> dict:
    return _lifecycle_context(request, model, can_change=model.can_change(request.user))


# The regions of the model page (and its row in the model list) that live updates refresh on their
# own, each with what it needs: (template, context).
MODEL_PARTS = {
    "head": ("models/_head.html", _head_context),
    "figures": ("models/_figures.html", _versions_context),
    "compare-form": ("models/_compare_form.html", _versions_context),
    "lifecycle": ("models/_lifecycle.html", _lifecycle_part_context),
    "aliases": ("models/_aliases.html", _lifecycle_part_context),
    "history": ("models/_timeline.html", _lifecycle_part_context),
    "row": ("models/_row.html", _row_context),
}


@login_required
@require_GET
@vary_on_headers("HX-Request")
def model_part(request, pk: int, part: str):
    """One region of the model page, as MODEL_PARTS says; the whole page when opened directly."""
    if part not in MODEL_PARTS:
        raise Http404(f"The model page has no part “{part}”.")
    model = _model_for(request, pk)
    if not is_fragment_request(request):
        return render(request, "models/detail.html", _detail_context(request, model))
    template, context = MODEL_PARTS[part]
    return render(request, template, context(request, model))


@login_required
@require_GET
@vary_on_headers("HX-Request")
def model_compare(request, pk: int):
    """Versions side by side: ``?v=1&v=3&v=4`` (the first the baseline), or ``?a=1&b=3`` as before."""
    model = _model_for(request, pk)
    requested = request.GET.getlist("v") or [request.GET.get("a", ""), request.GET.get("b", "")]
    compare = selectors.version_comparison(model=model, requested=requested)
    if is_fragment_request(request):
        return render(request, "models/_compare.html", {"model": model, "compare": compare})
    context = _detail_context(request, model, compare=compare)
    if compare.numbers:
        context["compare_selected"] = compare.numbers
    return render(request, "models/detail.html", context)


@login_required
@require_POST
def model_lifecycle(request, pk: int):
    """Move the stage; answers with the lifecycle panel (stage, the move control) in place and the
    history out of band. A refusal shows its reason inside the panel, with the stage chosen and the
    comment typed kept, for htmx and for a whole-page post alike."""
    model = _editable_model(request, pk)
    form = LifecycleForm(request.POST)
    error = pending = None
    if form.is_valid():
        try:
            pending = services.lifecycle_move(
                model=model,
                actor=request.user,
                to_stage=form.cleaned_data["lifecycle"],
                comment=form.cleaned_data["comment"],
            )
        except ValidationError as refused:
            error = " ".join(refused.messages)
    else:
        error = " ".join(form.errors.get("comment", [])) or "Choose a stage to move to."
    # What the form shows again after a refusal: the move chosen and the comment as typed.
    kept = {"chosen_stage": request.POST.get("lifecycle", ""), "typed_comment": request.POST.get("comment", "")}
    if not is_fragment_request(request):
        if error:
            return render(request, "models/detail.html", _detail_context(request, model, error=error, **kept))
        messages.success(request, _moved(model, pending))
        return redirect("model-detail", pk=model.pk)
    context = {**_lifecycle_context(request, model, can_change=True), "error": error, "oob": True}
    if error:
        context.update(kept)
        return render(request, "models/_lifecycle.html", context)
    return with_toast(render(request, "models/_lifecycle.html", context), _moved(model, pending))


def _moved(model: MLModel, pending) -> str:
    return _asked(pending) if pending else f"{model.name} moved to {model.get_lifecycle_display().lower()}."


def _asked(pending) -> str:
    return f"Asked for approval (request #{pending.pk}): an approver will {pending.summary} or say why not."


@login_required
@require_POST
def model_rollback(request, pk: int, number: int):
    """Record a new version equal to version ``number``; answers htmx with the versions table and the
    rest of the page the new version changes swapped in place, the outcome as a toast (a refusal
    above the table instead)."""
    model = _editable_model(request, pk)
    version = get_object_or_404(selectors.version_list(model=model), version_number=number)
    try:
        new_version = services.model_rollback(version=version, actor=request.user)
    except ValidationError as refused:
        notice, failed = " ".join(refused.messages), True
    else:
        notice, failed = f"Rolled back to version {number}: recorded as version {new_version.version_number}.", False
    if not is_fragment_request(request):
        (messages.error if failed else messages.success)(request, notice)
        return redirect("model-detail", pk=model.pk)
    if failed:
        context = {**_versions_context(request, model), "rollback_error": notice}
        return render(request, "models/_rollback_result.html", context)
    response = render(request, "models/_rollback_result.html", _versions_context(request, model))
    return with_toast(trigger_client_event(response, "versionsChanged"), notice)


@login_required
@require_POST
def model_upload(request, pk: int):
    """Store an uploaded artifact as a new version; answers htmx with a toast that says so (its size
    and sha256 are in the artifact panel), and swaps the parts of the page the new version changes in
    place (models/_refresh.html)."""
    model = _editable_model(request, pk)
    form = UploadForm(request.POST, request.FILES)
    version = None
    if form.is_valid():
        try:
            version = services.model_attach_file(
                model=model, actor=request.user, file=form.cleaned_data["file"], note=form.cleaned_data["note"]
            )
        except ValidationError as error:
            add_service_errors(form, error)
        except StorageUnavailable as error:
            form.add_error("file", f"{error} Try again shortly.")
    if not is_fragment_request(request):
        if version:
            messages.success(request, f"Uploaded as version {version.version_number}.")
        else:
            messages.error(request, "The upload failed: " + "; ".join(m for e in form.errors.values() for m in e))
        return redirect("model-detail", pk=model.pk)
    if not version:
        return render(request, "models/_upload_result.html", {"model": model, "form": form})
    context = {**_versions_context(request, model), "version": version, "form": form}
    response = render(request, "models/_upload_result.html", context)
    # The page itself needs no event (the fragments above came out of band); scripts may listen for it.
    trigger_client_event(response, "versionsChanged")
    name = version.file.rsplit("/", 1)[-1]
    return with_toast(
        response, f"Uploaded {name} as version {version.version_number} ({filesizeformat(version.file_size)})."
    )


@login_required
@require_http_methods(["GET", "POST"])
def model_create(request):
    form = MLModelForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            model = services.model_create(owner=request.user, **form.service_data())
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Model {model.name} registered as version 1.")
            return redirect("model-detail", pk=model.pk)
    return render(
        request, "form_page.html", {"form": form, "title": "Register a model", "cancel": reverse("model-list")}
    )


@login_required
@require_http_methods(["GET", "POST"])
def model_edit(request, pk: int):
    model = _editable_model(request, pk)
    form = MLModelForm.for_model(model, request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        changed = {name: form.cleaned_data[name] for name in form.changed_data}
        if "hyperparameters" in changed and changed["hyperparameters"] is None:
            changed["hyperparameters"] = {}
        try:
            services.model_update(model=model, actor=request.user, data=changed)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Model {model.name} saved.")
            return redirect("model-detail", pk=model.pk)
    return render(request, "form_page.html", {"form": form, "title": f"Edit {model.name}", "cancel": model_url(model)})


@login_required
@require_http_methods(["GET", "POST"])
def model_delete(request, pk: int):
    model = _editable_model(request, pk)
    if request.method == "POST":
        name = model.name
        services.model_delete(model=model, actor=request.user)
        messages.success(request, f"Model {name} deleted, with its versions and files.")
        return redirect("model-list")
    return render(request, "confirm_delete.html", {"object": model, "kind": "model", "cancel": model_url(model)})


def model_url(model: MLModel) -> str:
    return reverse("model-detail", args=[model.pk])


def _to_aliases_panel(model: MLModel):
    return redirect(f"{reverse('model-detail', args=[model.pk])}#aliases-panel")


@login_required
@require_POST
def model_alias_set(request, pk: int):
    """Point an alias at a version. The service decides who may (approvers set protected aliases on
    any model: a refusal is the 403 page with its reason); a bad alias or version comes back as a message."""
    model = get_object_or_404(selectors.model_list(user=request.user), pk=pk)
    form = AliasForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give an alias and a version number.")
        return _to_aliases_panel(model)
    alias, number = form.cleaned_data["alias"], form.cleaned_data["version"]
    try:
        pending = services.alias_set(
            model=model, actor=request.user, alias=alias, version_number=number, comment=form.cleaned_data["comment"]
        )
    except (ValidationError, LookupError) as refused:
        reason = " ".join(refused.messages) if isinstance(refused, ValidationError) else str(refused)
        messages.error(request, reason)
    else:
        messages.success(request, _asked(pending) if pending else f"@{alias} now points at version {number}.")
    return _to_aliases_panel(model)


@login_required
@require_POST
def model_alias_delete(request, pk: int, alias: str):
    model = get_object_or_404(selectors.model_list(user=request.user), pk=pk)
    try:
        pending = services.alias_delete(model=model, actor=request.user, alias=alias)
    except LookupError as missing:
        messages.error(request, str(missing))
    else:
        messages.success(request, _asked(pending) if pending else f"@{alias} was removed.")
    return _to_aliases_panel(model)


def _tags_answer(request, model: MLModel, form, *, error: str | None, done: str):
    """The tags in place (htmx, the outcome as a toast; a refusal beside the form), or the model page
    with the outcome as a message."""
    if not is_fragment_request(request):
        (messages.error if error else messages.success)(request, error or done)
        return redirect("model-detail", pk=model.pk)
    context = {"model": model, "can_change": True, "tag_error": error, "tag_form": form if error else None}
    response = render(request, "models/_tags.html", context)
    return response if error else with_toast(response, done)


@login_required
@require_POST
def model_tag_set(request, pk: int):
    model = _editable_model(request, pk)
    form = TagForm(request.POST)
    error = None
    if form.is_valid():
        key, value = form.cleaned_data["key"], form.cleaned_data["value"]
        try:
            services.tag_set(model=model, actor=request.user, key=key, value=value)
        except ValidationError as refused:
            error = " ".join(refused.messages)
    else:
        error = " ".join(message for messages_ in form.errors.values() for message in messages_)
    return _tags_answer(request, model, form, error=error, done=f"Tag “{request.POST.get('key', '')}” set.")


@login_required
@require_POST
def model_tag_delete(request, pk: int):
    model = _editable_model(request, pk)
    form = TagKeyForm(request.POST)
    error = None
    if form.is_valid():
        try:
            services.tag_delete(model=model, actor=request.user, key=form.cleaned_data["key"])
        except LookupError as missing:
            error = str(missing)
    else:
        error = "Say which tag to remove."
    return _tags_answer(request, model, None, error=error, done=f"Tag “{request.POST.get('key', '')}” removed.")
