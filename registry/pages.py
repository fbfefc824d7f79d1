"""What the apps' htmx pages share: when to answer with a fragment, who may change an object, the
header of a sortable column, and the toast that tells an htmx action went through."""

from __future__ import annotations

from typing import Protocol, TypeVar

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django_htmx.http import trigger_client_event


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


def sort_header(*, url_for, term: str, label: str, current: str, target: str) -> SafeString:
    """The ``<th>`` of a column sorted by ``term``: a real link to ``url_for(order)`` that sorts by
    it (again: the other way round), enhanced by htmx to swap only ``#target`` and keep the address
    in step; ``aria-sort`` says how the table is sorted now (``current``)."""
    url = url_for(f"-{term}" if current == term else term)
    if current == term:
        state, arrow = "ascending", " ▲"
    elif current == f"-{term}":
        state, arrow = "descending", " ▼"
    else:
        state, arrow = "none", ""
    return format_html(
        '<th scope="col" aria-sort="{}"><a href="{}" hx-get="{}" hx-target="#{}" hx-push-url="true">{}{}</a></th>',
        state,
        url,
        url,
        target,
        label,
        arrow,
    )


def with_toast(response: HttpResponse, message: str, level: str = "success") -> HttpResponse:
    """``response`` with a ``toast`` event in its HX-Trigger header: static/js/app.js shows
    ``message`` in the page's one toast region (base.html, #toasts), then lets it go."""
    return trigger_client_event(response, "toast", {"message": message, "level": level})
