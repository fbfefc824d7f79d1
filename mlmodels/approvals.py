"""Approval requests (PRODUCTION_NEEDS_APPROVAL): filing one, deciding it, and reading them.

``mlmodels.services`` files a request when an owner without the approve permission asks for
production or for a protected alias. An approver's approval carries the change out through
``mlmodels.changes`` in the decision's transaction, so a change that no longer fits the model (it
moved meanwhile, the version is gone) is refused with ``Conflict`` and the request stays pending.
Nobody decides their own request; the requester may cancel it. One pending request per model and
change: a newer one cancels the older (superseded), and the database's partial unique index holds
that line under races. Events go out once the transaction commits, as everywhere.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.roles import can_approve
from mlmodels import changes
from mlmodels.events import alias_was_deleted, alias_was_set, approval_decided, approval_requested, lifecycle_changed
from mlmodels.models import ApprovalAction, ApprovalRequest, ApprovalStatus, MLModel
from registry.errors import Conflict
from registry.events import Event, publish
from registry.validators import check_free_text

SUPERSEDED_COMMENT = "Superseded by a newer request for the same change."


def file_request(
    locked: MLModel,
    *,
    actor,
    action: str,
    comment: str,
    to_stage: str = "",
    alias: str = "",
    version_number: int | None = None,
) -> tuple[ApprovalRequest, list[Event]]:
    """File a pending request on the locked model, cancelling the pending one for the same change;
    returns it with the events to publish once the caller's transaction commits."""
    older = list(
        # Only the requests' rows (of=self): PostgreSQL locks no row of an outer join's nullable side.
        ApprovalRequest.objects.select_for_update(of=("self",))
        .select_related("requested_by")
        .filter(model=locked, action=action, alias=alias, status=ApprovalStatus.PENDING)
    )
    now = timezone.now()
    for request in older:
        _decide(request, actor=actor, status=ApprovalStatus.CANCELLED, comment=SUPERSEDED_COMMENT, at=now)
    request = ApprovalRequest.objects.create(
        model=locked,
        action=action,
        to_stage=to_stage,
        alias=alias,
        version_number=version_number,
        requested_by=actor,
        comment=comment,
    )
    ApprovalRequest.objects.filter(pk__in=[old.pk for old in older]).update(superseded_by=request)
    events = [approval_decided(old, actor=actor, superseded_by=request.pk) for old in older]
    events.append(approval_requested(request, actor=actor))
    return request, events


def _decide(request: ApprovalRequest, *, actor, status: str, comment: str, at=None) -> None:
    request.status = status
    request.decided_by = actor
    request.decision_comment = comment
    request.decided_at = at or timezone.now()
    request.save(update_fields=["status", "decided_by", "decision_comment", "decided_at"])


def _pending_locked(approval: ApprovalRequest) -> ApprovalRequest:
    """The request's row, locked, if it is still pending: a request decided meanwhile (by another
    approver at the same moment, say) is a ``Conflict`` naming that decision."""
    request = ApprovalRequest.objects.select_for_update(of=("self",)).select_related("requested_by").get(pk=approval.pk)
    if not request.is_pending:
        who = f" by {request.decided_by.username}" if request.decided_by else ""
        raise Conflict(f"Approval request #{request.pk} is already {request.status}{who}; nothing was changed.")
    request.model = approval.model  # the caller's instance, which approving keeps up to date: no query for it
    return request


def _ensure_may_decide(approval: ApprovalRequest, actor) -> None:
    if not can_approve(actor):
        raise PermissionDenied("Only approvers and superusers decide approval requests.")
    if approval.requested_by_id == actor.pk:
        raise PermissionDenied("Nobody decides their own request: another approver must approve or reject it.")


def approval_approve(*, approval: ApprovalRequest, actor, comment: str = "") -> ApprovalRequest:
    """Approve ``approval`` and carry its change out, in one transaction; a change that no longer
    fits is a ``Conflict`` and the request stays pending."""
    _ensure_may_decide(approval, actor)
    check_free_text(comment=comment)
    with transaction.atomic():
        # The model first, then the request: the order filing takes them in, so the two never wait
        # on each other.
        locked = changes.lock(approval.model)
        request = _pending_locked(approval)
        try:
            change = _carry_out(request, locked, actor=actor)
        except (ValidationError, LookupError) as refused:
            reason = " ".join(refused.messages) if isinstance(refused, ValidationError) else str(refused)
            raise Conflict(
                f"Approval request #{request.pk} can no longer be carried out: {reason} "
                "It stays pending: reject it, or ask the requester for a new one."
            ) from None
        _decide(request, actor=actor, status=ApprovalStatus.APPROVED, comment=comment.strip())
    changes.refresh_from(approval.model, locked)
    _refresh_request(approval, request)
    if change is not None:
        publish(change)
    publish(approval_decided(request, actor=actor))
    return approval


def _carry_out(request: ApprovalRequest, locked: MLModel, *, actor) -> Event | None:
    """Make the requested change on the locked model; returns its event (None: nothing changed)."""
    if request.action == ApprovalAction.LIFECYCLE:
        from_stage = changes.move(
            locked, actor=actor, to_stage=request.to_stage, comment=request.comment, approval=request
        )
        return lifecycle_changed(
            locked, actor=actor, from_stage=from_stage, to_stage=request.to_stage, comment=request.comment
        )
    if request.version_number is None:
        previous = changes.drop_alias(locked, actor=actor, alias=request.alias, approval=request)
        return alias_was_deleted(locked, actor=actor, alias=request.alias, previous=previous)
    previous = changes.point_alias(
        locked,
        actor=actor,
        alias=request.alias,
        version_number=request.version_number,
        protected=True,
        approval=request,
    )
    if previous == request.version_number:
        return None
    return alias_was_set(locked, actor=actor, alias=request.alias, version=request.version_number, previous=previous)


def approval_reject(*, approval: ApprovalRequest, actor, comment: str) -> ApprovalRequest:
    """Reject ``approval`` with the reason (required); nothing else changes."""
    _ensure_may_decide(approval, actor)
    check_free_text(comment=comment)
    if not comment.strip():
        raise ValidationError({"comment": ["Say why the request is rejected: the requester reads it."]})
    with transaction.atomic():
        request = _pending_locked(approval)
        _decide(request, actor=actor, status=ApprovalStatus.REJECTED, comment=comment.strip())
    _refresh_request(approval, request)
    publish(approval_decided(request, actor=actor))
    return approval


def approval_cancel(*, approval: ApprovalRequest, actor) -> ApprovalRequest:
    """The requester withdraws ``approval``."""
    if not (actor.is_authenticated and approval.requested_by_id == actor.pk):
        raise PermissionDenied("Only the requester can cancel an approval request.")
    with transaction.atomic():
        request = _pending_locked(approval)
        _decide(request, actor=actor, status=ApprovalStatus.CANCELLED, comment="Cancelled by the requester.")
    _refresh_request(approval, request)
    publish(approval_decided(request, actor=actor))
    return approval


def _refresh_request(target: ApprovalRequest, source: ApprovalRequest) -> None:
    for field in ApprovalRequest._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target.decided_by = source.decided_by


# --- reads ---------------------------------------------------------------------------------------


def approval_list(*, user, status: str | None = None, model_id: int | None = None) -> QuerySet[ApprovalRequest]:
    """The requests ``user`` may read (every signed-in user reads them all, as models), newest first,
    with their model, requester and decider in one joined query."""
    if not user.is_authenticated:
        return ApprovalRequest.objects.none()
    requests = ApprovalRequest.objects.select_related("model", "requested_by", "decided_by")
    if status:
        requests = requests.filter(status=status)
    if model_id is not None:
        requests = requests.filter(model_id=model_id)
    return requests.order_by("-created_at", "-id")


def pending_count(*, for_approver) -> int:
    """How many requests wait for ``for_approver``'s decision (theirs wait for someone else): the
    approvers' count in the navigation. One indexed count."""
    return ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING).exclude(requested_by=for_approver).count()
