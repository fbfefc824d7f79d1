"""The domain-event bus: what changed, told to whoever listens, once the change has committed.

Every service that changes state records what happened as an ``Event`` and publishes it here
(``record`` builds and publishes one). Delivery waits for the transaction to commit
(``transaction.on_commit``): a change that rolls back publishes nothing, and a call made outside a
transaction delivers at once. Subscribers (cache invalidation today; webhooks, live updates and an
audit feed later) register once, in their app's ``AppConfig.ready``, for every event or for the
types they name; they never hook model signals or re-read the write path.

A subscriber runs in the process and the request that made the change, after its commit: whatever
it raises is logged and goes no further, so one failing subscriber neither stops the others nor
fails a change that has already been made. Slow work (a webhook's HTTP call) belongs in a queue the
subscriber feeds, not in the subscriber itself.

The shared layer: it knows the shape of an event, not the feature apps' types (each app builds its
own, e.g. ``mlmodels.events``).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# "<noun>.<verb in the past>", e.g. model.created, lifecycle.changed.
TYPE_PATTERN = re.compile(r"[a-z][a-z_]*\.[a-z][a-z_]*")

Handler = Callable[["Event"], None]


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    # Every subscriber gets the same event: none may change what the next one reads.
    return None if mapping is None else MappingProxyType(dict(mapping))


@dataclass(frozen=True, kw_only=True)
class Event:
    """``{id, type, occurred_at, actor {id, username}, model {id, name}, data {…}}``.

    ``id`` is the idempotency key all the way out (a webhook's id, a live update's message id).
    ``actor`` is None for a change nobody signed in made; ``model`` is None for an event that is
    about no model. ``data`` holds what the type says, JSON-ready values only.
    """

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    type: str
    occurred_at: datetime = field(default_factory=timezone.now)
    actor: Mapping[str, Any] | None = None
    model: Mapping[str, Any] | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not TYPE_PATTERN.fullmatch(self.type):
            raise ValueError(f"An event type is '<noun>.<verb>' in lower case; got {self.type!r}.")
        for name in ("actor", "model", "data"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def __hash__(self) -> int:
        # The mappings are not hashable; the id alone tells events apart.
        return hash(self.id)

    @classmethod
    def of(cls, type: str, *, actor, model=None, data: Mapping[str, Any] | None = None) -> Event:
        """The event ``type`` by ``actor`` (a user, or None) about ``model`` (anything with ``pk``
        and ``name``, or None)."""
        return cls(type=type, actor=actor_ref(actor), model=model_ref(model), data=data or {})

    def as_dict(self) -> dict[str, Any]:
        """The event as plain JSON types: the id as a string, the time in ISO 8601."""
        return {
            "id": str(self.id),
            "type": self.type,
            "occurred_at": self.occurred_at.isoformat(),
            "actor": None if self.actor is None else dict(self.actor),
            "model": None if self.model is None else dict(self.model),
            # Through the encoder and back: nested values come out as plain lists, dicts and strings.
            "data": json.loads(json.dumps(dict(self.data), cls=DjangoJSONEncoder)),
        }


def actor_ref(actor) -> dict[str, Any] | None:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None
    return {"id": actor.pk, "username": actor.get_username()}


def model_ref(model) -> dict[str, Any] | None:
    return None if model is None else {"id": model.pk, "name": model.name}


# --- subscribers ----------------------------------------------------------------------------------

_subscribers: list[tuple[Handler, frozenset[str] | None]] = []
_lock = threading.Lock()


def subscribe(handler: Handler | None = None, *, types: Iterable[str] | None = None):
    """Deliver every committed event to ``handler``, or only those of ``types``.

    ``subscribe(handler, types=[...])``, or ``@subscribe(types=[...])`` on a function. Subscribing a
    handler twice changes its types rather than delivering twice (``ready`` may run more than once).
    """
    if handler is None:
        return lambda function: subscribe(function, types=types)
    if isinstance(types, str):
        types = (types,)
    wanted = None if types is None else frozenset(types)
    with _lock:
        _subscribers[:] = [(h, t) for h, t in _subscribers if h != handler]
        _subscribers.append((handler, wanted))
    return handler


def unsubscribe(handler: Handler) -> None:
    with _lock:
        _subscribers[:] = [(h, t) for h, t in _subscribers if h != handler]


def _deliver(event: Event) -> None:
    for handler, wanted in tuple(_subscribers):
        if wanted is not None and event.type not in wanted:
            continue
        try:
            handler(event)
        except Exception:
            logger.exception(
                "Subscriber %s failed on %s event %s",
                getattr(handler, "__qualname__", repr(handler)),
                event.type,
                event.id,
            )


# --- publishing -------------------------------------------------------------------------------------


def publish(event: Event, *, using: str | None = None) -> Event:
    """Deliver ``event`` once the current transaction on ``using`` commits (at once outside one).

    Inside nested blocks it waits for the outermost commit, and a rolled-back savepoint drops it.
    """

    def deliver() -> None:
        _deliver(event)

    # robust: an error escaping delivery is logged, and the other on_commit callbacks still run.
    transaction.on_commit(deliver, using=using, robust=True)
    return event


def record(type: str, *, actor, model=None, data: Mapping[str, Any] | None = None, using: str | None = None) -> Event:
    """Build the event ``type`` (see ``Event.of``) and publish it after the commit."""
    return publish(Event.of(type, actor=actor, model=model, data=data), using=using)
