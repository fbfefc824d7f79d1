"""Committed domain events, handed to the WebSocket consumers (connected in ``LiveConfig.ready``)."""

from __future__ import annotations

import hashlib

from live import broadcast
from live.middleware import current_tab
from mlmodels import events as model_events
from registry.events import Event, subscribe

# Every consumer of every server process listens here; each decides per user (live.access).
EVENTS_GROUP = "live.events"
# What the pages show: the events of models, their versions, stages, tags, aliases, approvals, scans.
LIVE_EVENT_TYPES = model_events.MODEL_EVENT_TYPES


def session_group(session_key: str) -> str:
    """The group of the sockets signed in with one session; named by a digest, never the key itself."""
    return "live.session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def broadcast_event(event: Event) -> None:
    # The event's own id is the message id pages dedupe by; "tab" names the tab that made it, if any.
    broadcast.send(EVENTS_GROUP, {"type": "live.event", "event": event.as_dict(), "tab": current_tab()})


def close_sockets_of_session(sender, request, user, **kwargs) -> None:
    """``user_logged_out``: the sockets of that session close now, not at their next session check."""
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        broadcast.send(session_group(session.session_key), {"type": "live.signed_out"})


def connect() -> None:
    from django.contrib.auth.signals import user_logged_out

    # After mlmodels' own subscribers (INSTALLED_APPS order): the dashboard's cached counts are gone
    # before a page asks for them again.
    subscribe(broadcast_event, types=LIVE_EVENT_TYPES)
    user_logged_out.connect(close_sockets_of_session, dispatch_uid="live.close_sockets_of_session")
