from rest_framework.permissions import SAFE_METHODS, BasePermission


class IsOwnerOrSuperuserToChange(BasePermission):
    """Everyone signed in reads; only the owner or a superuser changes (the object's ``can_change``)."""

    message = "Only the owner or a superuser can change this."

    def has_object_permission(self, request, view, obj) -> bool:
        return request.method in SAFE_METHODS or obj.can_change(request.user)
