"""The WebSocket that pages listen on for live updates (/ws/events/, static/js/live.js)."""

from __future__ import annotations

import json
import time

from channels.auth import get_user
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils.module_loading import import_string

from live import broadcast
from live.access import may_receive
from live.subscribers import EVENTS_GROUP, session_group

# Close codes the page acts on: signed out (or never signed in) means "do not reconnect".
SIGNED_OUT = 4401


class EventsConsumer(AsyncJsonWebsocketConsumer):
    """Sends each committed domain event the signed-in user may receive, as ``Event.as_dict()`` plus
    ``tab`` (the browser tab that made the change, or null).

    The page pings now and then; each ping keeps the socket's group memberships fresh (channel layers
    forget members after a day) and, every LIVE_SESSION_CHECK_SECONDS, re-reads the session: a
    session that was revoked, or a user deactivated since, closes the socket with 4401.
    """

    joined: tuple[str, ...] = ()

    async def connect(self):
        broadcast.serve_here()
        self.user = self.scope.get("user")
        session = self.scope.get("session")
        if self.user is None or not self.user.is_authenticated or session is None or not session.session_key:
            # Accepted, then closed, so the page sees the reason (a refused handshake is only "1006").
            await self.accept()
            await self.close(code=SIGNED_OUT)
            return
        self.session_key = session.session_key
        self.checked_at = time.monotonic()
        self.joined = (EVENTS_GROUP, session_group(self.session_key))
        await self._join()
        await self.accept()

    async def _join(self) -> None:
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)

    async def disconnect(self, code):
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    @classmethod
    async def decode_json(cls, text_data):
        try:
            content = json.loads(text_data)
        except ValueError:
            return {}
        return content if isinstance(content, dict) else {}

    async def receive_json(self, content, **kwargs):
        if content.get("type") != "ping" or not self.joined:
            return
        due = time.monotonic() - self.checked_at >= settings.LIVE_SESSION_CHECK_SECONDS
        if due and not await self._session_stands():
            await self.close(code=SIGNED_OUT)
            return
        await self._join()
        await self.send_json({"type": "pong"})

    async def _session_stands(self) -> bool:
        store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(self.session_key)
        # The same checks as a page's request: the session exists, its user is active, and it was
        # made under the user's current password.
        user = await get_user({"session": store})
        self.checked_at = time.monotonic()
        if not user.is_authenticated or user.pk != self.user.pk:
            return False
        self.user = user
        return True

    async def live_event(self, message):
        event = message["event"]
        if may_receive(self.user, event):
            await self.send_json({**event, "tab": message.get("tab")})

    async def live_signed_out(self, message):
        await self.close(code=SIGNED_OUT)
