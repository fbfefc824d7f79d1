"""List stored artifact files that no row points to, and rows whose file is gone; --fix removes the former."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from mlmodels.services import storage_audit


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="Delete the orphaned objects.")
        parser.add_argument(
            "--min-age",
            type=int,
            default=60,
            metavar="MINUTES",
            help="Only objects older than this count as orphans (default 60): younger ones may be uploads "
            "whose rows are not committed yet.",
        )

    def handle(self, *args, fix: bool, min_age: int, **options):
        if min_age < 0:
            raise CommandError("--min-age must be 0 or more minutes.")
        audit = storage_audit(fix=fix, min_age=timedelta(minutes=min_age))
        for key in audit.orphans:
            self.stdout.write(f"orphan   {key}" + ("  (removed)" if key in audit.removed else ""))
        for key in audit.missing:
            self.stdout.write(f"missing  {key}")
        self.stdout.write(
            f"{len(audit.orphans)} orphaned object(s){' removed' if fix else ''}, "
            f"{len(audit.missing)} row(s) pointing at a missing object."
        )
        if audit.missing or (audit.orphans and not fix):
            # A non-zero exit lets a cron job or monitor notice.
            raise SystemExit(1)
