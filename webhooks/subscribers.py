"""Every committed domain event becomes deliveries for the webhooks subscribed to it."""

from registry.events import subscribe
from webhooks import services


def connect() -> None:
    subscribe(services.dispatch, types=services.EVENT_TYPES)
