from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from experiments import artifacts
        from experiments.models import ArtifactFile
        from mlmodels.references import register_key_source

        # Artifact files' stored objects follow their rows out once a delete commits (any cascade).
        post_delete.connect(
            artifacts.remove_file_after_commit, sender=ArtifactFile, dispatch_uid="experiments.artifact-file-removal"
        )
        # The storage audit counts their keys as referenced (mlmodels cannot import this app).
        register_key_source(artifacts.referenced_keys)
