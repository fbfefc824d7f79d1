"""Webhooks: who is told about which events, where, and the log of each event's delivery."""

from django.conf import settings
from django.db import models


class Webhook(models.Model):
    """An owner's subscription: the events of ``events`` types about their models (one model when
    ``model`` is set; every model's for a superuser) are POSTed to ``url``, signed with ``secret``."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)
    model = models.ForeignKey(
        "mlmodels.MLModel", on_delete=models.CASCADE, null=True, blank=True, related_name="webhooks"
    )
    description = models.CharField(max_length=500, blank=True)
    active = models.BooleanField(default=True)
    # The receiver checks signatures with it, so it is kept as it was given (like GitHub's and
    # Stripe's): shown once, at creation, and never again by the API, the pages or the admin.
    secret = models.CharField(max_length=100, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["active", "model"], name="webhook_active_model")]

    def __str__(self) -> str:
        return f"{self.url} ({', '.join(self.events)})"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    """One event for one webhook: the body sent (the same on every attempt, with the event's id as
    ``webhook-id``) and how its attempts went."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=50)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # An attempt in flight holds the delivery until then: a second copy of its task waits, and a
    # worker that died mid-attempt frees it when the time passes.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["webhook", "event_id"], name="one_delivery_per_event")]
        indexes = [models.Index(fields=["webhook", "-created_at"], name="delivery_webhook_recent")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} → webhook {self.webhook_id}: {self.status}"
