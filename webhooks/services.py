"""The webhooks' business rules: who may subscribe to what, and turning events into deliveries.

Called by the API, the pages and the admin alike; raises ``ValidationError`` (bad input, a URL the
address rules refuse) or ``PermissionDenied``. Owners subscribe to the events of their own models
(all of them, or one); superusers to every model's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q

from mlmodels import events as model_events
from mlmodels.models import MLModel
from registry.events import Event
from registry.validators import check_free_text
from webhooks import addresses, signing, tasks
from webhooks.models import Delivery, DeliveryStatus, Webhook

EVENT_TYPES = model_events.MODEL_EVENT_TYPES
TEST_EVENT = "webhook.test"
MAX_DESCRIPTION = 500


def _can_manage(webhook: Webhook, actor) -> bool:
    return actor.is_superuser or webhook.owner_id == actor.pk


def _ensure_can_manage(webhook: Webhook, actor) -> None:
    if not _can_manage(webhook, actor):
        raise PermissionDenied("Only the webhook's owner or a superuser can change it.")


def _checked_url(url) -> str:
    try:
        addresses.check(url)
    except (addresses.Refused, LookupError) as error:
        raise ValidationError({"url": [str(error)]}, code="refused_url") from None
    return url


def _checked_events(events) -> list[str]:
    if not isinstance(events, list | tuple) or not events:
        raise ValidationError({"events": ["Name at least one event type, as a list."]})
    unknown = [str(type)[:60] for type in events if type not in EVENT_TYPES]
    if unknown:
        raise ValidationError(
            {"events": [f"Unknown event type(s): {', '.join(unknown)}. Types: {', '.join(EVENT_TYPES)}."]}
        )
    return list(dict.fromkeys(events))  # each once, in the order given


def _checked_model(model: MLModel | None, actor) -> MLModel | None:
    if model is not None and not (actor.is_superuser or model.owner_id == actor.pk):
        raise ValidationError(
            {"model": [f"You can subscribe to the events of your own models only; {model.name} is not yours."]}
        )
    return model


def _checked_description(description) -> str:
    description = (description or "").strip()
    check_free_text(description=description)
    if len(description) > MAX_DESCRIPTION:
        raise ValidationError({"description": [f"At most {MAX_DESCRIPTION} characters."]})
    return description


def webhook_create(
    *, actor, url: str, events: Iterable[str], model: MLModel | None = None, description: str = "", active=True
) -> Webhook:
    """A new webhook of ``actor``'s; its ``secret`` is readable on the returned instance only (show
    it once)."""
    webhook = Webhook(
        owner=actor,
        url=_checked_url(url),
        events=_checked_events(events),
        model=_checked_model(model, actor),
        description=_checked_description(description),
        active=bool(active),
        secret=signing.new_secret(),
    )
    webhook.save()
    return webhook


UNCHANGED = object()


def webhook_update(
    *,
    webhook: Webhook,
    actor,
    url=UNCHANGED,
    events=UNCHANGED,
    model=UNCHANGED,
    description=UNCHANGED,
    active=UNCHANGED,
) -> Webhook:
    _ensure_can_manage(webhook, actor)
    changed = []
    if url is not UNCHANGED:
        webhook.url = _checked_url(url)
        changed.append("url")
    if events is not UNCHANGED:
        webhook.events = _checked_events(events)
        changed.append("events")
    if model is not UNCHANGED:
        # The webhook's owner must own the model, whoever makes the change.
        webhook.model = _checked_model(model, webhook.owner)
        changed.append("model")
    if description is not UNCHANGED:
        webhook.description = _checked_description(description)
        changed.append("description")
    if active is not UNCHANGED:
        webhook.active = bool(active)
        changed.append("active")
    if changed:
        webhook.save(update_fields=[*changed, "updated_at"])
    return webhook


def webhook_delete(*, webhook: Webhook, actor) -> None:
    _ensure_can_manage(webhook, actor)
    webhook.delete()


def _body(event: Event) -> str:
    return json.dumps(event.as_dict(), separators=(",", ":"), ensure_ascii=False)


def webhook_test(*, webhook: Webhook, actor) -> Delivery:
    """Send ``webhook`` a ``webhook.test`` event (even when it is turned off, to try it first)."""
    _ensure_can_manage(webhook, actor)
    event = Event.of(
        TEST_EVENT, actor=actor, data={"webhook": {"id": webhook.pk}, "message": "A test from the registry."}
    )
    with transaction.atomic():
        delivery = Delivery.objects.create(webhook=webhook, event_id=event.id, event_type=event.type, body=_body(event))
        tasks.send([delivery.pk])
    return delivery


def delivery_redeliver(*, delivery: Delivery, actor) -> Delivery:
    """Send a delivery's event again, the same body and ``webhook-id``, with a fresh round of
    attempts (one already under way is left to finish)."""
    _ensure_can_manage(delivery.webhook, actor)
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).exclude(status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=None, delivered_at=None
        )
        tasks.send([delivery.pk])
    delivery.refresh_from_db()
    return delivery


def _model_owner_id(event: Event) -> int | None:
    if "owner_id" in event.data:  # model.created and model.deleted carry it (the row may be gone)
        return event.data["owner_id"]
    return MLModel.objects.filter(pk=event.model["id"]).values_list("owner_id", flat=True).first()


def dispatch(event: Event) -> list[int]:
    """Record a delivery of ``event`` for every active webhook subscribed to it and enqueue them;
    their ids."""
    if event.model is None or event.type not in EVENT_TYPES:
        return []
    candidates = (
        Webhook.objects.filter(active=True, owner__is_active=True)
        .filter(Q(model__isnull=True) | Q(model_id=event.model["id"]))
        .select_related("owner")
        .only("id", "events", "owner__id", "owner__is_superuser")
    )
    subscribed = [webhook for webhook in candidates if event.type in webhook.events]
    if not subscribed:
        return []
    owner_id = _model_owner_id(event)
    allowed = [webhook for webhook in subscribed if webhook.owner.is_superuser or webhook.owner_id == owner_id]
    body = _body(event)
    deliveries = Delivery.objects.bulk_create(
        Delivery(webhook_id=webhook.pk, event_id=event.id, event_type=event.type, body=body) for webhook in allowed
    )
    ids = [delivery.pk for delivery in deliveries]
    tasks.send(ids)
    return ids
