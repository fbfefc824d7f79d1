"""The Approvals pages: the inbox (requests waiting for a decision, your own requests, recent
decisions) and the approve / reject / cancel buttons of the inbox and the model page. Thin views over
mlmodels.approvals."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.roles import can_approve
from mlmodels import approvals
from mlmodels.forms import DecisionForm
from mlmodels.models import ApprovalStatus
from registry.errors import Conflict

RECENT_DECISIONS = 20


@login_required
@require_GET
def approval_inbox(request):
    requests = approvals.approval_list(user=request.user)
    pending = list(requests.filter(status=ApprovalStatus.PENDING))
    context = {
        "can_decide": can_approve(request.user),
        "waiting": [item for item in pending if item.requested_by_id != request.user.pk],
        "mine": [item for item in pending if item.requested_by_id == request.user.pk],
        "decided": list(requests.exclude(status=ApprovalStatus.PENDING)[:RECENT_DECISIONS]),
        "next": request.path,
    }
    return render(request, "approvals/inbox.html", context)


def _back(request, approval):
    """Where the button was pressed (the inbox or the model page), else the model page."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect("model-detail", pk=approval.model_id)


def _decide(request, pk: int, decide, done: str):
    approval = get_object_or_404(approvals.approval_list(user=request.user), pk=pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["comment"]))
        return _back(request, approval)
    try:
        decide(approval=approval, actor=request.user, comment=form.cleaned_data["comment"])
    except ValidationError as refused:
        messages.error(request, " ".join(refused.messages))
    except Conflict as conflict:
        messages.error(request, str(conflict))
    else:
        messages.success(request, f"Request #{approval.pk} ({approval.model.name}: {approval.summary}) {done}.")
    return _back(request, approval)


@login_required
@require_POST
def approval_approve(request, pk: int):
    return _decide(request, pk, approvals.approval_approve, "approved and carried out")


@login_required
@require_POST
def approval_reject(request, pk: int):
    return _decide(request, pk, approvals.approval_reject, "rejected")


@login_required
@require_POST
def approval_cancel(request, pk: int):
    approval = get_object_or_404(approvals.approval_list(user=request.user), pk=pk)
    try:
        approvals.approval_cancel(approval=approval, actor=request.user)
    except Conflict as conflict:
        messages.error(request, str(conflict))
    else:
        messages.success(request, f"Request #{approval.pk} cancelled.")
    return _back(request, approval)
