"""``manage.py import_mlflow``: copy an MLflow server's registry into ours (mlflow_api/importer.py)."""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from mlflow_api.importer import KINDS, Importer, MlflowClient, MlflowUnavailable, TqdmProgress
from registry.errors import ServiceUnavailable

HELP = """Copy an MLflow tracking server's model registry into this registry, through its REST API and
artifact proxy: registered models (name, description, tags), every version with all the files of its
artifact folder (streamed), its description (our version's note) and tags, aliases, and with
--with-runs the active experiments and runs (params, metric histories, tags, status, times).

A model is created without versions, as MLflow makes one, so versions keep MLflow's numbers while
MLflow's have no gaps and none is skipped; the tag mlflow.import.source (<host>/<name>/<N>) on every
imported version names MLflow's, and its run is the tag mlflow.import.run_id. MLflow's
per-version stage is kept as the version's tag mlflow.import.stage; the stage of MLflow's newest
version also becomes the model's lifecycle while it is still in development here, through our own
moves (development -> staging -> production, or -> archived); a move our rules refuse is skipped.

Idempotent: a rerun (with the same --tracking-uri) copies only what is missing and resumes an
import that stopped; nothing here is overwritten or deleted. What cannot be copied (artifacts
outside MLflow's artifact proxy such as s3:// or file: URIs, names or tags our rules refuse, a name
taken here by another model) is listed as skipped with the reason."""


class Command(BaseCommand):
    help = HELP

    def add_arguments(self, parser):
        parser.add_argument("--tracking-uri", required=True, help="the MLflow server, e.g. http://mlflow:5000")
        parser.add_argument(
            "--token",
            default=os.environ.get("MLFLOW_TRACKING_TOKEN"),
            help="bearer token ($MLFLOW_TRACKING_TOKEN); sent rather than --username/--password when both are given",
        )
        parser.add_argument(
            "--username", default=os.environ.get("MLFLOW_TRACKING_USERNAME"), help="basic auth user name"
        )
        parser.add_argument(
            "--password", default=os.environ.get("MLFLOW_TRACKING_PASSWORD"), help="basic auth password"
        )
        parser.add_argument("--owner", help="username owning what is imported (default: the only superuser)")
        parser.add_argument("--with-runs", action="store_true", help="also copy experiments and their runs")
        parser.add_argument(
            "--limit",
            type=int,
            help="copy only the first N registered models (MLflow's name order), e.g. to try the import; a rerun "
            "without it copies the rest",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    def handle(self, *args, **options):
        owner = self._owner(options["owner"])
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        if options["username"] is not None and options["password"] is None:
            raise CommandError("--username needs --password (or $MLFLOW_TRACKING_PASSWORD).")
        try:
            client = MlflowClient(
                options["tracking_uri"],
                token=options["token"],
                username=options["username"],
                password=options["password"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        progress = TqdmProgress(self.stderr._out, disable=True if options["no_progress"] else None)
        importer = Importer(
            client, owner=owner, with_runs=options["with_runs"], limit=options["limit"], progress=progress
        )
        try:
            summary = importer.run()
        except KeyboardInterrupt:
            self._report(importer.summary, client, owner, options, stopped="interrupted")
            raise CommandError("Interrupted: what was copied stays; run the same command again to finish.") from None
        except MlflowUnavailable as error:
            if importer.summary.copied_anything:
                self._report(importer.summary, client, owner, options, stopped="stopped")
            raise CommandError(str(error)) from None
        except (ServiceUnavailable, DatabaseError) as error:
            self._report(importer.summary, client, owner, options, stopped="stopped")
            raise CommandError(
                f"The import stopped: {error}. What was copied stays (a version is stored whole or not at all); "
                "run the same command again to finish."
            ) from None
        self._report(summary, client, owner, options)

    def _report(self, summary, client, owner, options, *, stopped: str | None = None) -> None:
        kinds = KINDS if options["with_runs"] else tuple(k for k in KINDS if k not in ("experiments", "runs"))
        head = f"Import from {client.base_url} as {owner.username}"
        if stopped:
            self.stdout.write(f"{head}: {stopped}; so far:")
        else:
            self.stdout.write(f"{head}: done in {summary.seconds:.1f} s")
        for line in summary.lines(kinds=kinds):
            self.stdout.write(f"  {line}")

    def _owner(self, username: str | None):
        users = get_user_model().objects
        if username:
            owner = users.filter(username=username).first()
            if owner is None:
                raise CommandError(f"No user named {username!r}: --owner names an existing user.")
            if not owner.is_active:
                raise CommandError(f"The user {username!r} is inactive.")
            return owner
        superusers = list(users.filter(is_superuser=True, is_active=True)[:2])
        if len(superusers) != 1:
            found = "No superuser" if not superusers else "Several superusers"
            raise CommandError(f"{found} here: name the owner of the imported models with --owner USERNAME.")
        return superusers[0]
