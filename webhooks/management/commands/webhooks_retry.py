from django.core.management.base import BaseCommand
from django.db.models import Q
from django.utils import timezone

from webhooks import tasks
from webhooks.models import Delivery, DeliveryStatus


class Command(BaseCommand):
    help = (
        "Send the webhook deliveries that are due: pending, with no attempt under way. Eager mode (no broker) "
        "keeps later retries on timers of the server process, which a restart drops; this picks them up."
    )

    def handle(self, *args, **options):
        now = timezone.now()
        due = Delivery.objects.filter(status=DeliveryStatus.PENDING).filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
            Q(claimed_until__isnull=True) | Q(claimed_until__lte=now),
        )
        ids = list(due.values_list("pk", flat=True))
        tasks.send(ids)
        self.stdout.write(f"Queued {len(ids)} delivery(ies).")
