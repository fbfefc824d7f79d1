"""Scan stored artifacts again (or for the first time: versions stored before scans existed)."""

from django.core.management.base import BaseCommand

from mlmodels.models import ModelVersion, ScanStatus
from mlmodels.tasks import scan_version


class Command(BaseCommand):
    help = "Queue a scan of every version's artifact that is pending (--all: every stored artifact)."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="rescan every stored artifact, not just pending ones")

    def handle(self, *args, **options):
        versions = ModelVersion.objects.filter(file__isnull=False)
        if not options["all"]:
            versions = versions.filter(scan_status=ScanStatus.PENDING)
        count = 0
        for model_id, number in versions.order_by("id").values_list("model_id", "version_number").iterator():
            scan_version.delay(model_id, number)
            count += 1
        self.stdout.write(f"Queued {count} scan(s).")
