"""What the apps' htmx pages share: when to answer with a fragment, and who may change an object."""

from __future__ import annotations

from typing import Protocol, TypeVar

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest


class Changeable(Protocol):
    def can_change(self, user) -> bool: ...


T = TypeVar("T", bound=Changeable)


def is_fragment_request(request: HttpRequest) -> bool:
    """An htmx request that swaps part of a page in: answer it with the fragment. Any other request,
    and htmx restoring a page missing from its history cache, gets the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def editable_or_403(obj: T, user, message: str) -> T:
    """``obj`` when ``user`` may change it (``obj.can_change(user)``); PermissionDenied with ``message``
    otherwise (a 403 page, the reason in it)."""
    if not obj.can_change(user):
        raise PermissionDenied(message)
    return obj
