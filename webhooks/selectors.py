"""What the webhooks' pages and API read."""

from django.db.models import QuerySet

from webhooks.models import Delivery, Webhook


def webhook_list(*, user) -> QuerySet[Webhook]:
    """The webhooks ``user`` manages: their own; every one for a superuser."""
    webhooks = Webhook.objects.select_related("owner", "model")
    return webhooks if user.is_superuser else webhooks.filter(owner=user)


def delivery_list(*, webhook: Webhook) -> QuerySet[Delivery]:
    return webhook.deliveries.defer("body")
