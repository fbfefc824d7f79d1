"""Who may do what beyond owning: the roles every rule asks about, in one place.

Everyone signed in reads; owners change their models; approvers (the "approvers" group, holding
``mlmodels.approve_production``, created by a migration and assigned in the admin) decide approval
requests and set protected aliases; superusers do everything.
"""

APPROVERS_GROUP = "approvers"
APPROVE_PERMISSION = "mlmodels.approve_production"


def can_approve(user) -> bool:
    """Whether ``user`` may approve a move to production or set a protected alias."""
    return bool(user.is_authenticated and user.is_active and user.has_perm(APPROVE_PERMISSION))


def roles_of(user) -> list[str]:
    """The roles ``user`` holds, as the API and the pages name them."""
    roles = []
    if user.is_superuser:
        roles.append("superuser")
    if can_approve(user):
        roles.append("approver")
    if getattr(user, "is_service_account", False):
        roles.append("service_account")
    return roles
