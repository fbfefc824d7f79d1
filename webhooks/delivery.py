"""One attempt at a delivery, and what comes after it: done, failed for good, or tried again later.

An attempt first claims the delivery (a conditional UPDATE), so two copies of its task never send at
once, and a copy that finds it claimed looks again when the claim lapses: that is how a delivery
whose worker died mid-attempt is sent again, with the same ``webhook-id``.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from webhooks import addresses, sending, signing
from webhooks.models import Delivery, DeliveryStatus

logger = logging.getLogger(__name__)

# How long past the HTTP timeout a claim outlives its attempt.
CLAIM_MARGIN_SECONDS = 5


def backoff_seconds(attempt: int) -> float:
    """The wait after failed attempt number ``attempt``: exponential from WEBHOOK_RETRY_BASE_SECONDS,
    half of it random ("equal jitter"), so receivers that went down together are not hit together."""
    ceiling = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 (spreading load, not a secret)


def attempt(delivery_id: int) -> float | None:
    """Try delivery ``delivery_id`` once if it is due and free; the seconds until it should be tried
    again, or None when nothing more is to be done now (delivered, failed, gone, or not yet due: the
    attempt scheduled for then will come)."""
    now = timezone.now()
    claim = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + CLAIM_MARGIN_SECONDS)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)
    pending = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING)
    if not pending.filter(due, free).update(claimed_until=claim, attempts=F("attempts") + 1, last_attempt_at=now):
        held = pending.values_list("claimed_until", flat=True).first()
        if held is not None and held > now:
            return (held - now).total_seconds()
        return None
    delivery = Delivery.objects.select_related("webhook").get(pk=delivery_id)
    webhook = delivery.webhook
    retry_allowed = delivery.attempts < settings.WEBHOOK_MAX_ATTEMPTS
    if not webhook.active and delivery.event_type != "webhook.test":
        outcome, retry_allowed = sending.Outcome(None, "The webhook was turned off."), False
    else:
        try:
            target = addresses.check(webhook.url)
        except addresses.Refused as error:
            outcome, retry_allowed = sending.Outcome(None, f"Refused: {error}"), False
        except LookupError as error:
            outcome = sending.Outcome(None, str(error))
        else:
            body = delivery.body.encode()
            signed = signing.headers(
                webhook.secret, message_id=str(delivery.event_id), timestamp=int(time.time()), body=body
            )
            outcome = sending.post(target, body=body, headers=signed)
    return _record(delivery, outcome, claim=claim, retry_allowed=retry_allowed)


def _record(delivery: Delivery, outcome: sending.Outcome, *, claim, retry_allowed: bool) -> float | None:
    now = timezone.now()
    ours = Delivery.objects.filter(pk=delivery.pk, claimed_until=claim)
    result = {"claimed_until": None, "last_status_code": outcome.status_code, "last_error": outcome.error[:500]}
    if outcome.delivered:
        ours.update(status=DeliveryStatus.DELIVERED, delivered_at=now, next_attempt_at=None, **result)
        return None
    if outcome.worth_retrying and retry_allowed:
        delay = backoff_seconds(delivery.attempts)
        ours.update(next_attempt_at=now + timedelta(seconds=delay), **result)
        return delay
    ours.update(status=DeliveryStatus.FAILED, next_attempt_at=None, **result)
    logger.info("Webhook %s gave up on event %s: %s", delivery.webhook_id, delivery.event_id, outcome.error)
    return None
