from functools import cache

from django.conf import settings

from accounts.roles import can_approve
from mlmodels import approvals


def approvals_nav(request) -> dict:
    """The navigation's Approvals link (when approvals are on) and, for approvers, how many requests
    wait; asked only when a page shows them."""
    if not (settings.PRODUCTION_NEEDS_APPROVAL and request.user.is_authenticated):
        return {"approvals_on": settings.PRODUCTION_NEEDS_APPROVAL}

    @cache
    def waiting() -> int | None:
        return approvals.pending_count(for_approver=request.user) if can_approve(request.user) else None

    return {"approvals_on": True, "approvals_waiting": waiting}
