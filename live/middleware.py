"""Which browser tab made the change a request commits (the ``X-Live-Tab`` header live.js sends)."""

from __future__ import annotations

import re
from contextvars import ContextVar

TAB_HEADER = "X-Live-Tab"
TAB_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}")

_current_tab: ContextVar[str | None] = ContextVar("live_tab", default=None)


def current_tab() -> str | None:
    """The tab of the request being served in this thread, or None (the API, a task, another page)."""
    return _current_tab.get()


class LiveTabMiddleware:
    """Remembers the tab while the request runs: the events it publishes after its commit carry it,
    and that tab skips them (its own htmx answer already shows the change, with its notice)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tab = request.headers.get(TAB_HEADER, "")
        token = _current_tab.set(tab if TAB_PATTERN.fullmatch(tab) else None)
        try:
            return self.get_response(request)
        finally:
            _current_tab.reset(token)
