"""The WebSocket routes (registry/asgi.py puts them behind the session and the origin check)."""

from django.urls import path

from live.consumers import EventsConsumer

websocket_urlpatterns = [
    path("ws/events/", EventsConsumer.as_asgi(), name="live-events"),
]
